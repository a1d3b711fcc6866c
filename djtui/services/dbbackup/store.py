"""The backup folder: list the complete backups, and prune those outside the retention policy.

A prune is a plan (``plan_prune``) shown to the user, then executed once (``prune_backups``)
under the folder's lock, with the set computed again at that moment: if it changed, nothing goes.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from djtui.domain.retention import RetentionPolicy, prune_set
from djtui.errors import OperationFailed
from djtui.services.dbbackup.manifest import MANIFEST, STAMP_FORMAT, VERIFIED
from djtui.services.dbbackup.tools import sha256_file
from djtui.services.locks import exclusive


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


def lock_name(out_dir: Path) -> str:
    return f"dbbackup:{Path(out_dir).resolve()}"


def _verified(d: Path) -> str | None:
    vf = d / VERIFIED
    if not vf.is_file():
        return None
    try:
        v = json.loads(vf.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return v.get("verified") if v.get("manifest_sha256") == sha256_file(d / MANIFEST) else None


def _info(d: Path) -> BackupInfo | None:
    if d.name.startswith(".") or not d.is_dir() or not (d / MANIFEST).is_file():
        return None
    try:
        stamp = datetime.strptime(d.name, STAMP_FORMAT)
    except ValueError:
        return None
    try:
        nschemas = len(json.loads((d / MANIFEST).read_text(encoding="utf-8")).get("schemas", []))
    except ValueError:
        nschemas = 0
    size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
    return BackupInfo(d, stamp, size, nschemas, _verified(d))


def list_backups(out_dir: Path) -> list[BackupInfo]:
    """Complete backups (with a manifest) in ``out_dir``, newest first; partial temp dirs are skipped."""
    if not Path(out_dir).is_dir():
        return []
    found = [info for d in Path(out_dir).iterdir() if (info := _info(d)) is not None]
    return sorted(found, key=lambda b: b.stamp, reverse=True)


def plan_prune(out_dir: Path, policy: RetentionPolicy) -> list[BackupInfo]:
    backups = list_backups(out_dir)
    doomed = set(prune_set([b.stamp for b in backups], policy))
    return [b for b in backups if b.stamp in doomed]


def remove_backup(info: BackupInfo) -> None:
    """Rename out of sight first (so no half-deleted folder looks complete), then delete."""
    trash = info.path.with_name(f".deleting-{info.path.name}")
    os.rename(info.path, trash)
    shutil.rmtree(trash)


def prune_backups(out_dir: Path, policy: RetentionPolicy, state_dir: Path, audit: Any, *,
                  expected: list[str] | None = None, db_user: str | None = None) -> list[Path]:
    """Remove the backups outside ``policy``, under the folder's lock, audited.

    ``expected`` is the plan the user confirmed (folder names): the set is computed again at the
    moment of action and, when it differs, nothing is removed (OperationFailed).
    """
    removed: list[Path] = []
    with exclusive(state_dir, lock_name(out_dir), purpose="dbbackup prune"):
        doomed = plan_prune(out_dir, policy)
        names = [b.path.name for b in doomed]
        if expected is not None and sorted(names) != sorted(expected):
            raise OperationFailed("the backups outside the policy changed since the plan was shown "
                                  f"(now: {', '.join(names) or 'none'}); nothing was removed, look again")
        if not doomed:
            return removed
        with audit.action("dbbackup-prune", target=str(out_dir), db_user=db_user, out=str(out_dir),
                          backups=names) as rec:
            for b in doomed:
                remove_backup(b)
                removed.append(b.path)
            rec.outcome("ok", removed=len(removed))
    return removed
