"""Disk space with a runway estimate: the cron side of keeping a lab server alive.

Spyglass's scripts checked free space per drive against a limit and predicted
the runway from a CSV history (FIELD.md section 3); this keeps the same CSV
idea (one row per drive per check: time, path, free, total) so the history
survives upgrades and can be opened in a spreadsheet.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

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
