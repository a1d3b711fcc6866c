"""Dump the server: every user schema in parallel, plus the whole-server file, into a dated folder.

Why this shape: the seed script put the password on the dump tool's command line (visible in
``ps``) and wrote straight into the final folder, so a failed night left a folder that looked
like a backup. Here credentials only travel through the backend's 0600 options file, the dump is
built under a hidden temp name and renamed into place only once the manifest is written. What the
files are (SQL text through zstd on MySQL, pg_dump's custom format on PostgreSQL) is the server
family's ``DumpFormat`` (``formats.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from djtui.errors import UserError
from djtui.services.database import Database
from djtui.services.dbbackup.formats import (
    DumpFormat,
    DumpSession,
    dump_options,
    format_for,
    server_file_options,
)
from djtui.services.dbbackup.manifest import MANIFEST, PARTIAL_PREFIX, STAMP_FORMAT, safe_file
from djtui.services.dbbackup.tools import Progress, fsync_dir, quiet, sha256_file, write_json_atomic

__all__ = ["BackupResult", "SchemaDump", "dump_options", "run_backup", "server_file_options"]


@dataclass(frozen=True)
class SchemaDump:
    name: str
    file: str
    bytes: int
    sha256: str
    tables: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    seconds: float

    def counts(self) -> str:
        """What was dumped, counted as the progress counts it: "15 schemas + the whole server (16 dumps)".

        The progress steps ``[6/16]`` count dump files, the schemas and the whole-server file."""
        n = len(self.manifest["schemas"])
        if self.manifest.get("server_dump"):
            what = self.manifest["server_dump"].get("what", "the whole server")
            return f"{n} schema(s) + {what} ({n + 1} dumps)"
        return f"{n} schema(s)"


class _Dumper:
    """The dumps of one backup: written into ``work``, progress counted over ``total`` steps."""

    def __init__(self, db: Database, fmt: DumpFormat, cred: Path, work: Path, total: int, progress: Progress):
        self.db, self.fmt, self.cred, self.work = db, fmt, cred, work
        self.total, self.progress = total, progress
        self._lock = threading.Lock()
        self._done = 0
        self.session: DumpSession | None = None

    def _step(self, text: str) -> None:
        with self._lock:
            self._done += 1
            self.progress(f"[{self._done}/{self.total}] {text}")

    def schema(self, schema: str) -> SchemaDump:
        s0 = time.monotonic()
        assert self.session is not None
        counts = self.session.counts(schema)
        fname = safe_file(schema) + self.fmt.suffix
        target = self.work / fname
        self.fmt.dump_schema(self.cred, schema, target, self.session)
        result = SchemaDump(schema, fname, target.stat().st_size, sha256_file(target), counts,
                            round(time.monotonic() - s0, 3))
        self._step(f"{schema}: {len(counts)} tables, {result.bytes} bytes")
        return result

    def whole(self) -> dict[str, Any]:
        fname = self.fmt.server_file
        target = self.work / fname
        self.fmt.dump_server(self.db, self.cred, target)
        self._step(f"{self.fmt.server_label}: {target.stat().st_size} bytes")
        return {"file": fname, "bytes": target.stat().st_size, "sha256": sha256_file(target),
                "what": self.fmt.server_label}


def _manifest(db: Database, fmt: DumpFormat, stamp: str, created: datetime, dumps: list[SchemaDump],
              server_dump: dict[str, Any] | None) -> dict[str, Any]:
    info = db.server_info()
    return {
        "format": 1,
        "created": created.isoformat(timespec="seconds"),
        "stamp": stamp,
        "backend": db.backend.name,
        "server": {"flavor": info.flavor, "version": info.version, "address": db.settings.address},
        **fmt.describe(),
        "schemas": [{"name": d.name, "file": d.file, "bytes": d.bytes, "sha256": d.sha256,
                     "tables": d.tables, "seconds": d.seconds} for d in dumps],
        "server_dump": server_dump,
        "counts_note": fmt.counts_note,
    }


def run_backup(db: Database, out_dir: Path, *, parallel: int = 2, full_server: bool = True,
               schemas: list[str] | None = None, progress: Progress = quiet,
               now: datetime | None = None) -> BackupResult:
    """Dump every user schema (in parallel) and the whole server into ``out_dir/<stamp>``."""
    t0 = time.monotonic()
    backend = db.backend
    fmt = format_for(backend)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = schemas if schemas is not None else db.schemas()
    created = now or datetime.now()
    stamp = created.strftime(STAMP_FORMAT)
    final = out_dir / stamp
    if final.exists():
        raise UserError(f"a backup named {stamp} already exists in {out_dir}", hint="wait a second and run again")
    work = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{stamp}-", dir=out_dir))
    try:
        with backend.credentials_file(db.settings) as cred:
            total = len(names) + (1 if full_server else 0)
            progress(f"{total} dump(s): {len(names)} schema(s)" + (f" + {fmt.server_label}" if full_server else ""))
            dumper = _Dumper(db, fmt, cred, work, total, progress)
            # the session outlives the pool: every dump has ended before a PostgreSQL snapshot is released
            with fmt.session(db) as dumper.session, ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
                server_future = pool.submit(dumper.whole) if full_server else None
                futures = [pool.submit(dumper.schema, s) for s in names]
                dumps = [f.result() for f in futures]
                server_dump = server_future.result() if server_future else None
        manifest = _manifest(db, fmt, stamp, created, dumps, server_dump)
        write_json_atomic(work / MANIFEST, manifest)
        os.chmod(work, 0o750)
        os.rename(work, final)
        fsync_dir(out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupResult(final, manifest, time.monotonic() - t0)
