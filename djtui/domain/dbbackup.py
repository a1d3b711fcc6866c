"""Database backups as plans: what a backup folder holds, what a prune removes, what a restore loads.

Frozen and pure: the services build them (reading folders and the server), the Backups screen shows
them, the CLI prints them (``--json`` too), and the service executes each once, re-checking then.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from djtui.domain.retention import RetentionPolicy
from djtui.domain.units import human_bytes
from djtui.errors import UserError

SAFETY_FOLDER = "pre-restore"  # in out_dir: the schemas a restore overwrote, as they were


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    stamp: datetime
    bytes: int
    schemas: int
    verified: str | None  # when, or None

    @property
    def age_hours(self) -> float:
        return (datetime.now() - self.stamp).total_seconds() / 3600


@dataclass(frozen=True)
class PrunePlan:
    """What a prune removes and keeps, per series (the backups, then the pre-restore safety dumps)."""

    out_dir: Path
    policy: RetentionPolicy
    remove: tuple[BackupInfo, ...]
    keep: tuple[BackupInfo, ...]
    confirm_word: str = "PRUNE"

    def name(self, b: BackupInfo) -> str:
        """The folder relative to ``out_dir``: ``<stamp>`` or ``pre-restore/<stamp>``."""
        return b.path.relative_to(self.out_dir).as_posix()

    @property
    def names(self) -> list[str]:
        return [self.name(b) for b in self.remove]

    def lines(self) -> list[str]:
        pol = self.policy
        out = [f"policy: keep daily {pol.daily}, weekly {pol.weekly}, monthly {pol.monthly} "
               f"(the {SAFETY_FOLDER}/ safety dumps of restores count as a series of their own)",
               f"REMOVES {len(self.remove)}:"]
        out += [f"    {self.name(b)}  {human_bytes(b.bytes)}" for b in self.remove]
        out.append(f"keeps {len(self.keep)}:")
        out += [f"    {self.name(b)}  {human_bytes(b.bytes)}" for b in self.keep]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"out": str(self.out_dir), "confirm": self.confirm_word,
                "policy": {"daily": self.policy.daily, "weekly": self.policy.weekly, "monthly": self.policy.monthly},
                "remove": [str(b.path) for b in self.remove], "keep": [str(b.path) for b in self.keep]}


@dataclass(frozen=True)
class RestoreItem:
    """One dump file and where it goes."""

    source: str  # the schema name in the backup
    target: str  # the schema it is loaded into
    file: str
    sha256: str
    tables: dict[str, int]  # rows per table, from the manifest
    checksums: dict[str, int] | None
    current: dict[str, int] | None  # rows per table the target holds now; None: it does not exist

    @property
    def overwrites(self) -> bool:
        return self.current is not None

    @property
    def replaced(self) -> list[str]:
        """Tables of the target that the dump drops and recreates."""
        return sorted(set(self.current or {}) & set(self.tables))

    @property
    def left_alone(self) -> list[str]:
        """Tables of the target that are not in the backup: the dump does not touch them."""
        return sorted(set(self.current or {}) - set(self.tables))


@dataclass(frozen=True)
class RestorePlan:
    backup: Path
    items: tuple[RestoreItem, ...]
    foreign: tuple[str, ...]  # cross-schema foreign keys and what a rename does to them
    notes: tuple[str, ...] = ()  # how the server family loads it (PostgreSQL: one transaction, kept keys)
    plan_id: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False)  # executed once

    @property
    def renames(self) -> dict[str, str]:
        return {i.source: i.target for i in self.items if i.source != i.target}

    @property
    def overwritten(self) -> list[RestoreItem]:
        return [i for i in self.items if i.overwrites]

    @property
    def confirm_word(self) -> str:
        n = len(self.overwritten)
        return f"OVERWRITE {n} SCHEMA{'S' if n != 1 else ''}" if n else "RESTORE"

    def to_json(self) -> dict[str, Any]:
        return {"backup": str(self.backup), "confirm": self.confirm_word,
                "schemas": [{"source": i.source, "target": i.target, "file": i.file, "tables": i.tables,
                             "overwrites": i.overwrites, "current": i.current, "left_alone": i.left_alone}
                            for i in self.items],
                "foreign_keys": list(self.foreign), "notes": list(self.notes)}

    def safety_line(self, safety_dir: Path | None) -> str | None:
        """What happens to the schemas overwritten before the load (``restore_backup(safety_dir=...)``)."""
        if not self.overwritten:
            return None
        if safety_dir is None:
            return "the overwritten schemas are NOT dumped first (--no-safety-dump)"
        return f"first, the {len(self.overwritten)} schema(s) overwritten are dumped as they are now to {safety_dir}"

    def lines(self, safety_dir: Path | None = None) -> list[str]:
        """The plan as the CLI prints it and the Backups screen shows it (with the safety dump's line)."""
        out = [f"backup {self.backup}"]
        for i in self.items:
            rows = sum(i.tables.values())
            where = i.target if i.target == i.source else f"{i.target} (renamed from {i.source})"
            out.append(f"{i.file} -> {where}: {len(i.tables)} table(s), {rows} row(s) in the manifest")
            for t, n in sorted(i.tables.items()):
                now = "" if i.current is None else f" (now {i.current[t]})" if t in i.current else " (new)"
                out.append(f"    {t}: {n}{now}")
            if i.overwrites:
                held = sum((i.current or {}).values())
                out.append(f"    OVERWRITES {i.target}: it exists with {len(i.current or {})} table(s), "
                           f"{held} row(s); {len(i.replaced)} table(s) are dropped and loaded from the dump")
                if i.left_alone:
                    out.append(f"    not in the backup, left as they are: {', '.join(i.left_alone)}")
            else:
                out.append(f"    {i.target} does not exist: it is created")
            stores = sorted(t for t in i.tables if t.startswith("~external_"))
            if stores and i.target != i.source:
                out.append(f"    NOTE {', '.join(stores)}: store objects stay under {i.source}/ in the store; "
                           f"DataJoint 0.14 looks for {i.target}'s blobs under {i.target}/, so they are not found")
            if "~lineage" in i.tables and i.target != i.source:
                out.append(f"    NOTE ~lineage: DataJoint 2.x's lineage rows are data and keep naming {i.source} "
                           f"(e.g. {i.source}.table.attr); in {i.target} they still trace to {i.source}")
        out.extend(self.foreign)
        out.extend(self.notes)
        safety = self.safety_line(safety_dir)
        return [*out, safety] if safety else out


@dataclass(frozen=True)
class NameRules:
    """What a server family accepts as a schema name: MySQL 64 characters; PostgreSQL 63 bytes (a longer
    name is cut short with only a NOTICE, so a restore would write into a schema nobody named) and no
    ``pg_`` prefix."""

    max_len: int = 64
    in_bytes: bool = False
    reserved_prefixes: tuple[str, ...] = ()
    forbidden: str = "`/\\.\0"  # MySQL's folders; PostgreSQL takes any character but NUL in a quoted name

    def too_long(self, name: str) -> bool:
        return (len(name.encode()) if self.in_bytes else len(name)) > self.max_len


MYSQL_NAMES = NameRules()
POSTGRES_NAMES = NameRules(max_len=63, in_bytes=True, reserved_prefixes=("pg_",), forbidden="\0")


def restore_targets(manifest: dict[str, Any], schemas: list[str] | None, prefix: str | None,
                     renames: dict[str, str] | None, system: Collection[str],
                     rules: NameRules = MYSQL_NAMES) -> list[tuple[dict[str, Any], str]]:
    by_name = {s["name"]: s for s in manifest["schemas"]}
    chosen = list(schemas) if schemas else list(by_name)
    for name in chosen:
        if name not in by_name:
            raise UserError(f"schema {name!r} is not in this backup", where="--schema",
                            hint=f"the backup holds: {', '.join(sorted(by_name)) or 'nothing'}")
    if prefix and renames:
        raise UserError("give either --as PREFIX or --rename S=NEW, not both", where="--as/--rename")
    renames = dict(renames or {})
    for src in renames:
        if src not in chosen:
            raise UserError(f"--rename {src}=...: {src!r} is not among the schemas restored", where="--rename",
                            hint=f"restored: {', '.join(chosen)}")
    out = []
    for name in chosen:
        target = (prefix + name) if prefix else renames.get(name, name)
        check_schema_name(target, system, rules)
        out.append((by_name[name], target))
    targets = [t for _, t in out]
    if len(set(targets)) != len(targets):
        raise UserError("two schemas would be restored under the same name", where="--as/--rename")
    return out


def check_schema_name(name: str, system: Collection[str], rules: NameRules = MYSQL_NAMES) -> None:
    if not name or rules.too_long(name) or name.lower() in system or name != name.strip() \
            or any(c in name for c in rules.forbidden) or not name.isprintable() \
            or name.lower().startswith(rules.reserved_prefixes):
        unit = "bytes" if rules.in_bytes else "printable characters"
        reserved = "".join(f", not starting with {p}" for p in rules.reserved_prefixes)
        bad = " ".join(c for c in rules.forbidden if c.isprintable())
        without = f" without {bad}" if bad else ""
        raise UserError(f"{name!r} cannot be a schema name to restore into", where="--as/--rename",
                        hint=f"1-{rules.max_len} {unit}{without} and not a system schema{reserved}")
