"""A restore's plan: which dump file goes to which schema, what each overwrites (tables and rows
as they are now), and what happens to the foreign keys between schemas. Frozen: the Backups screen
shows it, the CLI prints it (``--json`` too), and ``restore_backup`` executes it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djtui.errors import UserError
from djtui.services.database import Database
from djtui.services.dbbackup.dumpfile import foreign_refs
from djtui.services.dbbackup.manifest import read_manifest
from djtui.services.dbbackup.tools import table_counts


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
        out.extend(self.foreign)
        safety = self.safety_line(safety_dir)
        return [*out, safety] if safety else out


def _restore_targets(manifest: dict[str, Any], schemas: list[str] | None, prefix: str | None,
                     renames: dict[str, str] | None, system: Collection[str]) -> list[tuple[dict[str, Any], str]]:
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
        _check_schema_name(target, system)
        out.append((by_name[name], target))
    targets = [t for _, t in out]
    if len(set(targets)) != len(targets):
        raise UserError("two schemas would be restored under the same name", where="--as/--rename")
    return out


def _check_schema_name(name: str, system: Collection[str]) -> None:
    if not name or len(name) > 64 or name.lower() in system or name != name.strip() \
            or any(c in name for c in "`/\\.\0") or not name.isprintable():
        raise UserError(f"{name!r} cannot be a schema name to restore into", where="--as/--rename",
                        hint="1-64 printable characters without ` / \\ . and not a system schema")


def plan_restore(db: Database, path: Path, *, schemas: list[str] | None = None, prefix: str | None = None,
                 renames: dict[str, str] | None = None) -> RestorePlan:
    """What a restore would do: which file goes to which schema, what it overwrites, the foreign keys."""
    path = Path(path)
    manifest = read_manifest(path)
    pairs = _restore_targets(manifest, schemas, prefix, renames, db.backend.system_schemas)
    existing = set(db.schemas())
    items = []
    for s, target in pairs:
        current = table_counts(db, target) if target in existing else None
        items.append(RestoreItem(s["name"], target, s["file"], s["sha256"], dict(s["tables"]),
                                 s.get("checksums"), current))
    return RestorePlan(path, tuple(items), tuple(_foreign_lines(path, pairs, items, existing)))


def _foreign_lines(path: Path, pairs: list[tuple[dict[str, Any], str]], items: list[RestoreItem],
                   existing: set[str]) -> list[str]:
    """What the restore does to the foreign keys that leave a restored schema."""
    rename = {i.source: i.target for i in items}
    foreign: list[str] = []
    for s, _t in pairs:
        for ref in foreign_refs(path / s["file"]):
            if ref == s["name"]:
                continue
            src_target = rename[s["name"]]
            if ref in rename:
                if rename[ref] != ref or src_target != s["name"]:
                    foreign.append(f"foreign keys {s['name']} -> {ref}: restored as {src_target} -> {rename[ref]}")
            else:
                state = "exists" if ref in existing else "DOES NOT EXIST on this server"
                foreign.append(f"foreign keys {src_target} -> {ref}: {ref} is not restored, they point at the "
                               f"live {ref} ({state})")
    return foreign
