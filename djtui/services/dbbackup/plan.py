"""Making a restore's plan (``domain.dbbackup.RestorePlan``): which dump file goes to which schema,
what each overwrites (tables and rows as they are now, read from the server), and what happens to
the foreign keys between schemas (read from the dumps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from djtui.domain.dbbackup import RestoreItem, RestorePlan, restore_targets
from djtui.services.database import Database
from djtui.services.dbbackup.formats import DumpFormat, check_same_backend, format_for
from djtui.services.dbbackup.manifest import read_manifest
from djtui.services.dbbackup.tools import table_counts


def plan_restore(db: Database, path: Path, *, schemas: list[str] | None = None, prefix: str | None = None,
                 renames: dict[str, str] | None = None) -> RestorePlan:
    """What a restore would do: which file goes to which schema, what it overwrites, the foreign keys."""
    path = Path(path)
    manifest = read_manifest(path)
    check_same_backend(manifest, db.backend, path)
    fmt = format_for(db.backend)
    pairs = restore_targets(manifest, schemas, prefix, renames, db.backend.system_schemas, fmt.name_rules)
    existing = set(db.schemas())
    items = []
    for s, target in pairs:
        current = table_counts(db, target) if target in existing else None
        items.append(RestoreItem(s["name"], target, s["file"], s["sha256"], dict(s["tables"]),
                                 s.get("checksums"), current))
    return RestorePlan(path, tuple(items), tuple(_foreign_lines(fmt, path, pairs, items, existing)),
                       tuple(fmt.plan_lines(db, items)))


def _foreign_lines(fmt: DumpFormat, path: Path, pairs: list[tuple[dict[str, Any], str]], items: list[RestoreItem],
                   existing: set[str]) -> list[str]:
    """What the restore does to the foreign keys that leave a restored schema."""
    rename = {i.source: i.target for i in items}
    foreign: list[str] = []
    for s, _t in pairs:
        for ref in fmt.foreign_refs(path / s["file"]):
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
