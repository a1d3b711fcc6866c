"""What the demo lab is made of: its names, its sessions' states, what was built, and seeded bytes."""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MARKER = ".djtui-demo"
CONFIG_NAME = "djtui.yaml"
SERVER_DIR = "server"
LEGACY_STORE = "analysis"
DJ2_STORE = "dj2"
DAY = 86400.0

Progress = Callable[[str], None]

# disk ids; the GUI strips p/t from numeric ids, so p101 is 101 in Subject, mTR3 stays mTR3
PARTICIPANTS = (*(f"p{n}" for n in range(101, 113)), "t201", "t202", "t203", "mTR3", "mTF7")

DB_STATES = ("full", "no_recording", "no_videos", "absent")
BACKUP_STATES = ("full", "missing_file", "truncated_file", "absent")


def db_participant(disk_id: str) -> str:
    """The id the acquisition GUI writes to DataJoint for a participant folder name."""
    if disk_id[:1] in ("p", "t") and disk_id[1:].isdigit():
        return disk_id[1:]
    return disk_id



@dataclass(frozen=True)
class DemoSession:
    participant: str  # as on disk
    date: dt.date
    db_state: str  # one of DB_STATES
    sqlite_imported: bool
    backup_state: str  # one of BACKUP_STATES
    on_source: bool  # False: already deleted locally after a verified backup
    videos: int

    @property
    def safe(self) -> bool:
        return (self.db_state == "full" and self.sqlite_imported and self.backup_state == "full"
                and self.on_source)


@dataclass(frozen=True)
class DemoSummary:
    """What the builder made, for the CLI's message and for tests to check against the truth."""

    base_dir: Path
    config_path: Path
    schema_prefix: str
    sessions: tuple[DemoSession, ...]
    interval_orphans: int
    legacy_orphans: dict[str, dict[str, int]]  # schema -> reason -> count
    dj2_orphans: int
    dj2_backend: str  # "datajoint" or "direct"
    analysis_untracked: int
    analysis_zero_byte: int
    temp_stale: int
    export_tables: tuple[str, ...]
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def count(self, **where: object) -> int:
        return sum(1 for s in self.sessions if all(getattr(s, k) == v for k, v in where.items()))


@dataclass(frozen=True)
class Schemas:
    """Every schema name of the lab, with an optional prefix so tests can share one server."""

    prefix: str = ""

    def __getattr__(self, name: str) -> str:  # e.g. .common_interval -> "<prefix>common_interval"
        if name.startswith("_"):
            raise AttributeError(name)
        return self.prefix + name



class Noise:
    """Deterministic pseudo-random bytes: one seeded buffer, sliced at seeded offsets (fast)."""

    SIZE = 1 << 21

    def __init__(self, seed: int):
        self.rng = random.Random(seed ^ 0x5EED)
        self.buf = self.rng.randbytes(self.SIZE)

    def take(self, n: int) -> bytes:
        if n <= 0:
            return b""
        n = min(n, self.SIZE // 2)
        off = self.rng.randrange(0, self.SIZE - n)
        return self.buf[off:off + n]


def video_sizes(rng: random.Random, n: int) -> list[int]:
    return [int(4096 * (256 ** rng.random())) for _ in range(n)]  # log-uniform, 4 KiB .. 1 MiB


def write_file(path: Path, data: bytes, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    os.utime(path, (mtime, mtime))
