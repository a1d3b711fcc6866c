"""The backup folder: list the complete backups, and prune those outside the retention policy.

A prune is a frozen plan (``plan_prune`` -> :class:`PrunePlan`) that the CLI prints and the
Backups screen shows, then executed once (``execute_prune``) under the folder's lock, with the set
computed again at that moment: if it changed, nothing goes. The safety dumps a restore leaves in
``<out_dir>/pre-restore/`` are a second series under the same policy, pruned with the first.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from djtui.domain.dbbackup import SAFETY_FOLDER, BackupInfo, PrunePlan
from djtui.domain.retention import RetentionPolicy, prune_set
from djtui.errors import OperationFailed
from djtui.services.dbbackup.manifest import MANIFEST, STAMP_FORMAT, VERIFIED
from djtui.services.dbbackup.tools import sha256_file
from djtui.services.locks import exclusive


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


def plan_prune(out_dir: Path, policy: RetentionPolicy) -> PrunePlan:
    """The backups outside ``policy``, and the pre-restore safety dumps outside it (each series alone)."""
    out_dir = Path(out_dir)
    remove: list[BackupInfo] = []
    keep: list[BackupInfo] = []
    for series in (out_dir, out_dir / SAFETY_FOLDER):
        backups = list_backups(series)
        doomed = set(prune_set([b.stamp for b in backups], policy))
        remove += [b for b in backups if b.stamp in doomed]
        keep += [b for b in backups if b.stamp not in doomed]
    return PrunePlan(out_dir, policy, tuple(remove), tuple(keep))


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
        now = plan_prune(out_dir, policy)
        names = now.names
        if expected is not None and sorted(names) != sorted(expected):
            raise OperationFailed("the backups outside the policy changed since the plan was shown "
                                  f"(now: {', '.join(names) or 'none'}); nothing was removed, look again")
        if not now.remove:
            return removed
        with audit.action("dbbackup-prune", target=str(out_dir), db_user=db_user, out=str(out_dir),
                          backups=names) as rec:
            for b in now.remove:
                remove_backup(b)
                removed.append(b.path)
            rec.outcome("ok", removed=len(removed))
    return removed


def execute_prune(plan: PrunePlan, state_dir: Path, audit: Any, *, db_user: str | None = None) -> list[Path]:
    """Run a confirmed plan once: re-checked under the lock, nothing removed if the set changed."""
    return prune_backups(plan.out_dir, plan.policy, state_dir, audit, expected=plan.names, db_user=db_user)
