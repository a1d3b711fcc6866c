"""Restore-verify a backup: hashes first, then every schema loaded into a fresh private server
and its exact row counts compared with the manifest (FIELD.md section 6, tier 3).

A backup is "verified" only after that, and ``verified.json`` records the manifest's hash, so a
folder edited afterwards is no longer shown as verified.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from djtui.errors import OperationFailed
from djtui.services.database import Database
from djtui.services.dbbackup.formats import format_class, format_for, manifest_backend
from djtui.services.dbbackup.manifest import MANIFEST, VERIFIED, manifest_files, read_manifest, unmark
from djtui.services.dbbackup.store import lock_name
from djtui.services.dbbackup.tools import Progress, quiet, sha256_file, table_counts, write_json_atomic
from djtui.services.locks import exclusive


@dataclass
class VerifyResult:
    path: Path
    ok: bool
    problems: list[str] = field(default_factory=list)
    tables_checked: int = 0
    seconds: float = 0.0


def _hash_problems(path: Path, manifest: dict[str, Any]) -> tuple[int, list[str]]:
    files = manifest_files(manifest)
    problems = []
    for fname, digest in files:
        f = path / fname
        if not f.is_file():
            problems.append(f"{fname}: missing")
        elif sha256_file(f) != digest:
            problems.append(f"{fname}: sha256 differs from the manifest")
    return len(files), problems


def _compare_counts(scratch: Database, schema: dict[str, Any], result: VerifyResult) -> None:
    name = schema["name"]
    restored = table_counts(scratch, name)
    for table, expected in schema["tables"].items():
        if table not in restored:
            result.problems.append(f"{name}.{table}: missing after restore")
            continue
        result.tables_checked += 1
        if restored[table] != int(expected):
            result.problems.append(f"{name}.{table}: {restored[table]} rows restored, manifest says {expected}")
    for extra in sorted(set(restored) - set(schema["tables"])):
        result.problems.append(f"{name}.{extra}: restored but not in the manifest")


def _restore_into_scratch(path: Path, manifest: dict[str, Any], result: VerifyResult, progress: Progress,
                          scratch_dir: Path | None) -> None:
    progress("starting a scratch server")
    with format_class(manifest_backend(manifest)).scratch_server(scratch_dir) as srv:
        scratch = Database(srv.settings)
        backend = scratch.backend
        fmt = format_for(backend)
        try:
            with backend.credentials_file(srv.settings) as cred:
                try:
                    fmt.prepare_scratch(srv.settings, cred, path, manifest)
                except OperationFailed as exc:
                    result.problems.append(f"{manifest['server_dump']['file']}: restore failed: {exc}")
                failed = fmt.load_scratch(cred, {s["name"]: path / s["file"] for s in manifest["schemas"]}, progress)
                for s in manifest["schemas"]:
                    if path / s["file"] in failed:
                        result.problems.append(f"{s['name']}: restore failed: {failed[path / s['file']]}")
                    else:
                        _compare_counts(scratch, s, result)
        finally:
            scratch.close()


def verify_backup(path: Path, *, progress: Progress = quiet, scratch_dir: Path | None = None) -> VerifyResult:
    """Hashes first, then restore every schema into a fresh private server and compare row counts."""
    t0 = time.monotonic()
    path = Path(path)
    manifest = read_manifest(path)
    result = VerifyResult(path, ok=False)
    nfiles, result.problems = _hash_problems(path, manifest)
    progress(f"hashes: {nfiles - len(result.problems)}/{nfiles} match")
    if not result.problems:
        _restore_into_scratch(path, manifest, result, progress, scratch_dir)
    result.ok = not result.problems
    result.seconds = time.monotonic() - t0
    if result.ok:
        write_json_atomic(path / VERIFIED, {
            "verified": datetime.now().isoformat(timespec="seconds"), "method": "restore+rowcount",
            "tables": result.tables_checked, "seconds": round(result.seconds, 2),
            "manifest_sha256": sha256_file(path / MANIFEST)})
    else:
        unmark(path)
    return result


def verify_backup_locked(path: Path, state_dir: Path, **kw: Any) -> VerifyResult:
    """``verify_backup`` under the backup folder's lock, so run, verify and prune never overlap."""
    with exclusive(state_dir, lock_name(Path(path).parent), purpose="dbbackup verify"):
        return verify_backup(path, **kw)
