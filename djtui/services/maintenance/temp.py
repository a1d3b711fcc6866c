"""Temp-directory cleaning, through the orphans service's stale-temp workflow (one cleaner).

A stale file (older than the age limit) of a temp directory is an orphan with the reason
``stale-temp``: the orphans service plans it from a fresh scan under its lock, re-checks each file
at its move and moves it into the quarantine (``djtui orphans restore`` puts a batch back, the
quarantine's own purge deletes it later). Nothing here unlinks a file. The temp directories are
``maintenance.temp_dirs`` and ``orphans.temp_directories`` together; the age limit is the caller's.

After the move, directories that were already old before it and are now empty are removed
(``rmdir``: it cannot remove anything that holds a file). Symlinks are never followed nor
removed, and a temp directory that is itself a symlink is refused.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djtui.config import Config
from djtui.domain.stores import STALE_TEMP
from djtui.errors import UserError
from djtui.services.orphans import OrphanService


@dataclass
class CleanResult:
    files: list[Path] = field(default_factory=list)  # moved into the quarantine (dry run: would be)
    dirs: list[Path] = field(default_factory=list)  # old directories left empty, removed
    bytes: int = 0
    skipped_links: int = 0
    skipped: int = 0  # planned files the re-check at the move kept (changed or gone since)
    batches: list[str] = field(default_factory=list)  # quarantine batches (`djtui orphans restore BATCH`)
    errors: list[str] = field(default_factory=list)


def temp_config(config: Config, dirs: Sequence[Path], max_age_days: float) -> Config:
    """The config the orphans service sees: every temp directory named, and this run's age limit."""
    known = list(config.orphans.temp_directories)
    extra = tuple(Path(d) for d in dirs if Path(d) not in known)
    orphans = dataclasses.replace(config.orphans, temp_directories=(*known, *extra),
                                  temp_max_age_days=max_age_days)
    return dataclasses.replace(config, orphans=orphans)


def _old_dirs(root: Path, cutoff: float, res: CleanResult) -> set[str]:
    """Directories under ``root`` older than ``cutoff`` (never through a symlink); counts the symlinks."""
    old: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, topdown=True, followlinks=False):
        for name in (*dirnames, *filenames):
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                res.skipped_links += 1
            elif stat.S_ISDIR(st.st_mode) and st.st_mtime < cutoff:
                old.add(p)
    return old


def _remove_empty(old_dirs: set[str], gone: set[str], dry_run: bool, res: CleanResult) -> None:
    """Old directories holding nothing but what went (deepest first, so an emptied parent goes too)."""
    for p in sorted(old_dirs, key=lambda s: s.count(os.sep), reverse=True):
        try:
            left = [os.path.join(p, e) for e in os.listdir(p)]
        except OSError:
            continue
        if any(e not in gone for e in left):
            continue
        if not dry_run:
            try:
                os.rmdir(p)
            except OSError:
                continue
        res.dirs.append(Path(p))
        gone.add(p)


def _clean_one(svc: OrphanService, root: Path, cutoff: float, dry_run: bool, res: CleanResult) -> None:
    old_dirs = _old_dirs(root, cutoff, res)
    # the job means every stale file of the directory: the share guard has nothing to protect here
    plan = svc.plan(f"dir:{root}", reasons=[STALE_TEMP], max_share=1.0)
    files = [root / i.path for i in plan.items if i.path is not None]
    if dry_run:
        res.files.extend(files)
        res.bytes += plan.bytes
    elif plan.items:
        done = svc.execute(plan, max_share=1.0)
        moved = [f for f in files if not os.path.lexists(f)]
        res.files.extend(moved)
        res.bytes += done.bytes
        res.skipped += done.skipped
        if done.batch_id:
            res.batches.append(done.batch_id)
    _remove_empty(old_dirs, {str(f) for f in res.files}, dry_run, res)


def clean_temp(config: Config, db: Any, dirs: Sequence[Path], *, max_age_days: float = 7.0,
               dry_run: bool = False, now: float) -> CleanResult:
    """Quarantine the stale files of each temp directory, then remove old directories left empty."""
    svc = OrphanService(temp_config(config, dirs, max_age_days), db, now=lambda: now)
    cutoff = now - max_age_days * 86400
    res = CleanResult()
    for root in map(Path, dirs):
        try:
            st = os.lstat(root)
        except FileNotFoundError:
            continue  # nothing to clean
        if not stat.S_ISDIR(st.st_mode):
            res.errors.append(f"{root}: not a directory (symlinks are not followed)")
            continue
        try:
            _clean_one(svc, root, cutoff, dry_run, res)
        except (UserError, OSError) as exc:
            res.errors.append(f"{root}: {exc}")
    return res
