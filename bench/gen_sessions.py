"""Generate N sessions x F files: a source tree, a backup tree in chosen states, optionally DB rows.

The sessions benchmarks (status-range over 5,000 sessions x 8 files, verification of 100,000
files, sync) need big trees quickly and need to know the truth about them: this writes
``manifest.json`` (every session's state) and a ``djtui.yaml`` pointing at the trees (and at the
database, when ``--db-config`` gives one). Files are small or sparse so 100,000 of them take
seconds; content is deterministic and differs per file, so checksums mean something.

    python -m bench gen_sessions --out /tmp/s5k --sessions 5000 --files 8 --states full=0.7,partial=0.2,none=0.1
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

STATES = ("full", "partial", "none")


def parse_states(text: str) -> dict[str, float]:
    """``full=0.6,partial=0.3,none=0.1`` (or ``full,partial,none`` for equal shares) -> normalized shares."""
    shares: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.partition("=")
        if name not in STATES:
            raise argparse.ArgumentTypeError(f"unknown state {name!r}; use {', '.join(STATES)}")
        try:
            shares[name] = float(value) if value else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"share of {name!r} is not a number: {value!r}") from None
        if shares[name] < 0:
            raise argparse.ArgumentTypeError(f"share of {name!r} is negative")
    total = sum(shares.values())
    if total <= 0:
        raise argparse.ArgumentTypeError("give at least one state with a positive share")
    return {k: v / total for k, v in shares.items()}


def assign_states(n: int, shares: dict[str, float], rng: random.Random) -> list[str]:
    """Exactly round(share * n) of each state (largest remainder), shuffled."""
    exact = {k: v * n for k, v in shares.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    out = [k for k, c in counts.items() for _ in range(c)]
    rng.shuffle(out)
    return out


class _Content:
    """Per-file deterministic bytes: a unique 32-byte header, then a slice of one seeded buffer."""

    def __init__(self, seed: int, size: int = 1 << 20):
        self.buf = random.Random(seed).randbytes(size)

    def make(self, key: str, size: int) -> bytes:
        head = hashlib.sha256(key.encode()).digest()
        if size <= len(head):
            return head[:size]
        body = size - len(head)
        n = len(self.buf)
        if body <= n:
            off = int.from_bytes(head[:4], "big") % (n - body + 1)
            return head + self.buf[off:off + body]
        return head + (self.buf * (body // n + 1))[:body]


def _write(path: Path, data: bytes | None, size: int, mtime: float, key: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if data is None:  # sparse: a header unique to the file (the same on both sides), the rest a hole
            os.write(fd, hashlib.sha256(key.encode()).digest()[: min(32, size)])
            os.ftruncate(fd, size)
        else:
            os.write(fd, data)
    finally:
        os.close(fd)
    os.utime(path, (mtime, mtime))


def generate(out: Path, *, sessions: int, files: int, shares: dict[str, float], size: int, size_max: int,
             sparse: bool, seed: int, inverted: bool, end: dt.date, imported: float) -> list[dict]:
    rng = random.Random(seed)
    content = _Content(seed)
    participants = max(1, math.ceil(sessions / 50))
    states = assign_states(sessions, shares, rng)
    src_root, dst_root = out / "src", out / "dst"
    src_root.mkdir(parents=True, exist_ok=True)
    dst_root.mkdir(parents=True, exist_ok=True)
    manifest = []
    for i, state in enumerate(states):
        pid = f"p{i % participants + 1:04d}"
        date = end - dt.timedelta(days=i // participants)
        ymd = f"{date:%Y%m%d}"
        src = src_root / pid / ymd
        src.mkdir(parents=True, exist_ok=True)
        dst = dst_root / (f"{ymd}/{pid}" if inverted else f"{pid}/{ymd}")
        mtime = time.mktime(dt.datetime.combine(date, dt.time(12)).timetuple())
        victim, how = rng.randrange(files), rng.choice(("missing", "truncated"))
        if state != "none":
            dst.mkdir(parents=True, exist_ok=True)
        total = 0
        for f in range(files):
            name = f"{pid}_{ymd}_cam{f}.mp4"
            n = size if size_max <= size else rng.randint(size, size_max)
            key = f"{pid}/{ymd}/{name}"
            data = None if sparse else content.make(key, n)
            _write(src / name, data, n, mtime, key)
            total += n
            if state == "none" or (state == "partial" and f == victim and how == "missing"):
                continue
            if state == "partial" and f == victim:
                _write(dst / name, None if data is None else data[: n // 2], n // 2, mtime, key)
            else:
                _write(dst / name, data, n, mtime, key)
        manifest.append({"participant_id": pid, "session_date": ymd, "backup": state,
                         "partial": how if state == "partial" else None, "files": files, "bytes": total,
                         "imported": rng.random() < imported})
    return manifest


def _db_section(path: Path) -> dict:
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    return dict(data.get("database") or {})


def insert_rows(config_path: Path, manifest: list[dict], prefix: str, files: int) -> float:
    """The MultiCameraTracking rows of the imported sessions, on the server ``config_path`` points at."""
    from djtui import labschema
    from djtui.config import load_config
    from djtui.services.database import Database

    start = time.monotonic()
    db = Database.from_config(load_config(config_path))
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            names = {k: prefix + v for k, v in labschema.DEFAULT_SCHEMAS.items()}
            labschema.create_tables(cur, names["sessions"], names["multicamera"], names["pose"])
            plans = [(m["participant_id"][1:], dt.datetime.strptime(m["session_date"], "%Y%m%d")
                      .date(), labschema.ImportPlan(cameras=files)) for m in manifest if m["imported"]]
            labschema.insert_sessions_bulk(cur, plans, sessions_schema=names["sessions"],
                                           multicamera=names["multicamera"], pose=names["pose"])
    finally:
        conn.close()
        db.close()
    return time.monotonic() - start


def write_sqlite(path: Path, out: Path, manifest: list[dict]) -> None:
    """The acquisition GUI's ``recordings.db``: every session, an ``imported`` row for the imported ones."""
    import sqlite3

    from djtui import labschema

    conn = sqlite3.connect(path)
    try:
        for m in manifest:
            date = dt.datetime.strptime(m["session_date"], "%Y%m%d").date()
            labschema.sqlite_add_session(conn, m["participant_id"], date,
                                         str(out / "src" / m["participant_id"] / m["session_date"]),
                                         imported=m["imported"])
        conn.commit()
    finally:
        conn.close()


def write_config(out: Path, *, inverted: bool, database: dict, prefix: str, sqlite: Path | None = None) -> Path:
    import yaml

    cfg: dict = {
        "backup": {
            "source": {"base_path": str(out / "src"), "path_structure": "{participant_id}/{session_date}"},
            "destinations": [{"name": "bench", "base_path": str(out / "dst"), "verify_mount": False,
                              "path_structure": ("{session_date}/{participant_id}" if inverted
                                                 else "{participant_id}/{session_date}")}],
        },
        "sessions": {"sessions_schema": prefix + "mocap_sessions",
                     "multicamera_schema": prefix + "multicamera_tracking",
                     "participant_id": {"strip_prefixes": ["p"], "numeric_only": True}},
        "state_dir": str(out / "state"),
        "audit_log": str(out / "state" / "audit.jsonl"),
    }
    if database:
        cfg["database"] = database
    if sqlite is not None:
        cfg["sessions"]["sqlite"] = {"path": str(sqlite)}
    path = out / "djtui.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(cfg, fh, sort_keys=False)
    return path


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench gen_sessions", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="directory to fill (src/, dst/, manifest.json)")
    ap.add_argument("--sessions", type=int, default=5000)
    ap.add_argument("--files", type=int, default=8, help="files per session")
    ap.add_argument("--states", type=parse_states, default=parse_states("full=0.6,partial=0.2,none=0.2"),
                    help="shares of destination states, e.g. full=0.6,partial=0.2,none=0.2")
    ap.add_argument("--size", type=int, default=4096, help="bytes per file (minimum when --size-max is larger)")
    ap.add_argument("--size-max", type=int, default=0, help="largest file; sizes are uniform in [size, size-max]")
    ap.add_argument("--sparse", action="store_true", help="sparse files (a unique header, then a hole): fast, any size")
    ap.add_argument("--same-layout", action="store_true",
                    help="destination as {participant_id}/{session_date} (default: inverted, as in the field)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--end-date", default=None, help="newest session date YYYYMMDD (default: yesterday)")
    ap.add_argument("--db-config", type=Path, help="a djtui config whose database gets the sessions' rows")
    ap.add_argument("--schema-prefix", default="bench_", help="prefix of the MultiCameraTracking schema names")
    ap.add_argument("--sqlite", action="store_true", help="also write the acquisition GUI's recordings.db")
    ap.add_argument("--imported", type=float, default=0.9, help="share of sessions imported in the database")
    a = ap.parse_args(argv)
    if a.sessions < 1 or a.files < 1 or a.size < 0:
        ap.error("--sessions and --files must be at least 1, --size at least 0")
    if a.out.exists() and any(a.out.iterdir()):
        print(f"gen_sessions: {a.out} is not empty; give a new directory", file=sys.stderr)
        return 2
    end = (dt.datetime.strptime(a.end_date, "%Y%m%d").date() if a.end_date
           else dt.date.today() - dt.timedelta(days=1))
    start = time.monotonic()
    manifest = generate(a.out, sessions=a.sessions, files=a.files, shares=a.states, size=a.size,
                        size_max=a.size_max, sparse=a.sparse, seed=a.seed, inverted=not a.same_layout, end=end,
                        imported=a.imported)
    files_s = time.monotonic() - start
    db_s = insert_rows(a.db_config, manifest, a.schema_prefix, a.files) if a.db_config else 0.0
    (a.out / "manifest.json").write_text(json.dumps({"sessions": manifest, "schema_prefix": a.schema_prefix}))
    sqlite = a.out / "recordings.db" if a.sqlite else None
    if sqlite is not None:
        write_sqlite(sqlite, a.out, manifest)
    cfg = write_config(a.out, inverted=not a.same_layout, database=_db_section(a.db_config) if a.db_config else {},
                       prefix=a.schema_prefix, sqlite=sqlite)
    n_files = sum(1 for _ in a.out.joinpath("src").rglob("*.mp4"))
    print(f"gen_sessions: {a.sessions} sessions x {a.files} files ({n_files} source files) in {files_s:.1f} s"
          + (f", database rows in {db_s:.1f} s" if a.db_config else "") + f"; config {cfg}")
    return 0
