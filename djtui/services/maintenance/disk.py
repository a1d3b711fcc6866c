"""Disk space with a runway estimate, and temp-dir cleaning: the cron side of keeping a lab server alive.

Spyglass's scripts checked free space per drive against a limit and predicted
the runway from a CSV history (FIELD.md section 3); this keeps the same CSV
idea (one row per drive per check: time, path, free, total) so the history
survives upgrades and can be opened in a spreadsheet.

Temp cleaning removes regular files older than the age limit, then
directories that were already old and are now empty. It never follows a
symlink (a link to /data in a temp dir must not empty /data), never removes
the configured dir itself, and re-checks each file's age and type at the
moment of deletion.
"""

from __future__ import annotations

import csv
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from djtui.config import Drive

GB = 1024**3
HISTORY_FIELDS = ["time", "path", "free_bytes", "total_bytes"]


@dataclass(frozen=True)
class DriveStatus:
    path: Path
    free_bytes: int
    total_bytes: int
    min_free_gb: float
    runway_days: float | None  # None: not shrinking, or too little history
    error: str | None = None

    @property
    def free_gb(self) -> float:
        return self.free_bytes / GB

    @property
    def low(self) -> bool:
        return self.error is None and self.free_gb < self.min_free_gb


def runway_days(points: Sequence[tuple[float, int]], free_now: int) -> float | None:
    """Days until free space hits zero at the least-squares rate of ``points`` (epoch s, free bytes)."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(f for _, f in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx <= 0:
        return None
    slope = sum((t - mx) * (f - my) for t, f in points) / sxx  # bytes per second
    if slope >= 0:
        return None
    return free_now / (-slope * 86400)


def read_history(path: Path) -> list[tuple[datetime, str, int, int]]:
    rows: list[tuple[datetime, str, int, int]] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                try:
                    rows.append((datetime.fromisoformat(r["time"]), r["path"], int(r["free_bytes"]),
                                 int(r["total_bytes"])))
                except (KeyError, TypeError, ValueError):
                    continue  # a hand-edited or torn line
    except FileNotFoundError:
        pass
    return rows


def append_history(path: Path, rows: Sequence[tuple[datetime, str, int, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if new:
            w.writerow(HISTORY_FIELDS)
        for t, p, free, total in rows:
            w.writerow([t.isoformat(timespec="seconds"), p, free, total])


def check_disks(drives: Sequence[Drive], history_csv: Path | None, *, now: datetime | None = None,
                window_days: float = 30, record: bool = True) -> list[DriveStatus]:
    """Free space per drive vs its limit; appends to the history and estimates the runway from it."""
    now = now or datetime.now()
    history = read_history(history_csv) if history_csv else []
    out: list[DriveStatus] = []
    new_rows = []
    for d in drives:
        try:
            u = psutil.disk_usage(str(d.path))
        except OSError as exc:
            out.append(DriveStatus(d.path, 0, 0, d.min_free_gb, None, error=f"cannot read {d.path}: {exc.strerror}"))
            continue
        since = now - timedelta(days=window_days)
        pts = [(t.timestamp(), free) for t, p, free, _ in history if p == str(d.path) and t >= since]
        pts.append((now.timestamp(), u.free))
        out.append(DriveStatus(d.path, u.free, u.total, d.min_free_gb, runway_days(pts, u.free)))
        new_rows.append((now, str(d.path), u.free, u.total))
    if history_csv and record and new_rows:
        append_history(history_csv, new_rows)
    return out


@dataclass
class CleanResult:
    files: list[Path] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)
    bytes: int = 0
    skipped_links: int = 0
    errors: list[str] = field(default_factory=list)


def clean_temp(roots: Sequence[Path], *, max_age_days: float = 7.0, dry_run: bool = False,
               now: float | None = None) -> CleanResult:
    """Remove files older than ``max_age_days`` under each root, then old dirs left empty."""
    cutoff = (now if now is not None else time.time()) - max_age_days * 86400
    res = CleanResult()
    for root in roots:
        root = Path(root)
        try:
            st = os.lstat(root)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            res.errors.append(f"{root}: not a directory (symlinks are not followed)")
            continue
        old_dirs: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(root, topdown=True, followlinks=False):
            for name in list(dirnames):
                p = os.path.join(dirpath, name)
                try:
                    dst = os.lstat(p)
                except FileNotFoundError:
                    continue
                if stat.S_ISLNK(dst.st_mode):
                    res.skipped_links += 1  # os.walk does not descend into it; we do not remove it
                elif dst.st_mtime < cutoff:
                    old_dirs.add(p)
            for name in filenames:
                p = os.path.join(dirpath, name)
                try:
                    fst = os.lstat(p)
                except FileNotFoundError:
                    continue
                if stat.S_ISLNK(fst.st_mode):
                    res.skipped_links += 1
                    continue
                if not stat.S_ISREG(fst.st_mode) or fst.st_mtime >= cutoff:
                    continue
                if not dry_run:
                    try:
                        again = os.lstat(p)  # re-check at the moment of action
                        if not stat.S_ISREG(again.st_mode) or again.st_mtime >= cutoff:
                            continue
                        os.unlink(p)
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        res.errors.append(f"{p}: {exc.strerror}")
                        continue
                res.files.append(Path(p))
                res.bytes += fst.st_size
        removed = {str(f) for f in res.files}
        # deepest first, so a parent emptied by its children's removal goes too
        for p in sorted(old_dirs, key=lambda s: s.count(os.sep), reverse=True):
            try:
                left = [os.path.join(p, e) for e in os.listdir(p)]
            except OSError:
                continue
            if any(e not in removed for e in left):
                continue
            if not dry_run:
                try:
                    os.rmdir(p)
                except OSError:
                    continue
            res.dirs.append(Path(p))
            removed.add(p)
    return res


def orphan_summary(config: Any, db: Any) -> str | None:
    """One line per orphan source if the orphans service is present; None when it is not."""
    try:
        from djtui.services.orphans import OrphanService
    except ImportError:
        return None
    svc = OrphanService(config, db)
    lines = []
    for src in svc.sources():
        try:
            r = svc.scan(src)
        except Exception as exc:  # one broken source must not hide the others in a cron mail
            lines.append(f"{src.name}: scan failed: {exc}")
            continue
        lines.append(f"{src.name}: {r.orphans} orphans, {getattr(r, 'bytes', 0)} bytes")
    return "\n".join(lines) if lines else "no orphan sources configured"
