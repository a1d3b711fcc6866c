"""The one backup workflow of the CLI (`dbbackup run`, `maintenance run`) and the Backups screen:
dump under the folder's lock, then copy the new folder to ``dbbackup.remote`` with rsync."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog
from djtui.services.database import Database
from djtui.services.dbbackup.dump import BackupResult, run_backup
from djtui.services.dbbackup.store import lock_name
from djtui.services.dbbackup.tools import Progress, quiet
from djtui.services.locks import exclusive


class CopyFailed(OperationFailed):
    """The dump was written, its copy to ``dbbackup.remote`` failed; ``path`` is the written backup."""

    def __init__(self, path: Path, message: str):
        self.path = path
        super().__init__(f"backup {path} was written, but {message}")


def rsync_copy(path: Path, remote: str) -> None:
    """Copy one backup folder to ``remote`` (an rsync destination), argument list, no shell."""
    exe = shutil.which("rsync")
    if not exe:
        raise UserError("rsync is not installed", hint="apt-get install rsync")
    argv = [exe, "-a", "--partial", "--", str(path), remote.rstrip("/") + "/"]
    commandlog.record("exec", argv)
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        raise OperationFailed(f"rsync to {remote} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")


def run_backup_locked(db: Database, out_dir: Path, state_dir: Path, **kw: Any) -> BackupResult:
    """``run_backup`` under the backup folder's lock, so run, verify and prune never overlap."""
    with exclusive(state_dir, lock_name(out_dir), purpose="dbbackup run"):
        return run_backup(db, out_dir, **kw)


def run_backup_and_copy(db: Database, out_dir: Path, state_dir: Path, *, remote: str | None,
                        progress: Progress = quiet, **kw: Any) -> BackupResult:
    """Dump, then copy: the copy runs under the same lock as the dump, so a prune cannot remove the
    folder while rsync reads it. A failed copy raises CopyFailed, which names the folder written."""
    with exclusive(state_dir, lock_name(out_dir), purpose="dbbackup run"):
        res = run_backup(db, out_dir, progress=progress, **kw)
        if remote:
            progress(f"copying {res.path.name} to {remote}")
            try:
                rsync_copy(res.path, remote)
            except (OperationFailed, UserError) as exc:
                raise CopyFailed(res.path, str(exc)) from None
            progress(f"copied to {remote}")
    return res
