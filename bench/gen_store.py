"""Generate a DataJoint 0.14 external store: N rows, N objects, ~1% orphans each way, a few empty objects.

Used by ``orphans_scan``; on its own: ``python -m bench gen_store --rows N --dir D``
starts a private server, builds the store, prints the config and waits (Ctrl-C stops).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from djtui.domain import stores as ds

STORE = "bench"


@dataclass(frozen=True)
class Generated:
    schema: str
    location: Path
    rows: int
    objects: int
    unused_rows: int
    untracked_objects: int
    missing_objects: int
    zero_objects: int = 0


def generate(conn, location: Path, schema: str, rows: int, *, orphan_share: float = 0.01,
             seed: int = 7) -> Generated:
    """Rows in ``~external_bench`` and a referencing table; objects laid out as 0.14 does."""
    import random
    rnd = random.Random(seed)
    n_orphan = max(1, int(rows * orphan_share))
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{schema}`")
    cur.execute(f"CREATE TABLE `{schema}`.`~external_{STORE}` (hash BINARY(16) NOT NULL "
                "COMMENT ':uuid:hash of contents', size BIGINT UNSIGNED NOT NULL, attachment_name VARCHAR(255) NULL, "
                "filepath VARCHAR(1000) NULL, contents_hash BINARY(16) NULL COMMENT ':uuid:used for filepath', "
                "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (hash)) ENGINE=InnoDB")
    cur.execute(f"CREATE TABLE `{schema}`.`rec` (id INT PRIMARY KEY, data BINARY(16) NOT NULL, "
                f"FOREIGN KEY (data) REFERENCES `{schema}`.`~external_{STORE}` (hash)) ENGINE=InnoDB")
    old = time.time() - 86400
    # every row as old as its object: a row younger than the grace age is no orphan yet (DataJoint inserts
    # the row just before the row that references it), so rows written now would never be unused
    old_ts = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(old))
    hashes = [uuid.UUID(int=rnd.getrandbits(128), version=4) for _ in range(rows)]
    unused = set(range(0, rows, max(1, rows // n_orphan)))
    missing = set(range(1, rows, max(1, rows // n_orphan)))
    # referenced rows whose object was written empty (a full disk, a killed copy): 0.01% of them
    zero = set(range(2, rows, max(1, rows // max(1, n_orphan // 100))))
    made_dirs: set[str] = set()
    batch = 10_000
    for start in range(0, rows, batch):
        chunk = range(start, min(rows, start + batch))
        cur.executemany(f"INSERT INTO `{schema}`.`~external_{STORE}` (hash, size, timestamp) VALUES (%s, %s, %s)",
                        [(hashes[i].bytes, 8, old_ts) for i in chunk])
        cur.executemany(f"INSERT INTO `{schema}`.rec VALUES (%s, %s)",
                        [(i, hashes[i].bytes) for i in chunk if i not in unused])
        conn.commit()
        for i in chunk:
            if i in missing:
                continue
            _write(location, ds.legacy_blob_path(schema, hashes[i]), made_dirs, old, b"" if i in zero else BLOB)
    untracked = 0
    for _ in range(n_orphan):
        _write(location, ds.legacy_blob_path(schema, uuid.UUID(int=rnd.getrandbits(128), version=4)), made_dirs, old)
        untracked += 1
    cur.close()
    n_zero = len(zero - missing)
    return Generated(schema, location, rows, rows - len(missing) + untracked, len(unused), untracked, len(missing),
                     n_zero)


BLOB = b"djblob\x00\x00"


def _write(root: Path, rel: str, made: set[str], mtime: float, data: bytes = BLOB) -> None:
    parent = rel.rsplit("/", 1)[0]
    if parent not in made:
        os.makedirs(root / parent, exist_ok=True)
        made.add(parent)
    fd = os.open(root / rel, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    if data:
        os.write(fd, data)
    os.close(fd)
    os.utime(root / rel, (mtime, mtime))


def main(argv: list[str]) -> int:
    from djtui.services.servers.mariadb import PrivateServer
    ap = argparse.ArgumentParser(prog="python -m bench gen_store")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, required=True)
    a = ap.parse_args(argv)
    a.dir.mkdir(parents=True, exist_ok=True)
    srv = PrivateServer(a.dir / "server")
    srv.start()
    try:
        conn = srv.connect()
        conn.autocommit(False)
        g = generate(conn, a.dir / "store", "benchlab", a.rows)
        print(g)
        print(f"server on 127.0.0.1:{srv.port}, user djadmin; Ctrl-C stops it")
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        srv.stop()


# --- many empty files fast (the 10M bench): directories first, then files from several niced processes ---

def make_dirs(root: str, parents: set[str]) -> None:
    """``parents`` as ``ab/cd`` under ``root``: one mkdir each, in order, before any file is written."""
    for top in sorted({p[:2] for p in parents}):
        os.makedirs(f"{root}/{top}", exist_ok=True)
    for p in sorted(parents):
        os.mkdir(f"{root}/{p}")


def _lower_priority() -> None:
    os.nice(10)  # a good neighbour: other work on the machine goes first (CPU and, with -c3, disk)
    import subprocess
    subprocess.run(["ionice", "-c3", "-p", str(os.getpid())], check=False, capture_output=True)


def _touch_chunk(job: tuple[str, str, int, int, int, float | None]) -> int:
    """Empty files named ``md5(f"{tag}:{i}")`` for i in [start, stop) except ``i % 100 == skip``, laid out
    ``ab/cd/<hex>``; only open+close (and futimens when ``mtime`` is given): no stat, no makedirs."""
    import hashlib
    root, tag, start, stop, skip, mtime = job
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
    md5, op, close, utime = hashlib.md5, os.open, os.close, os.utime
    n = 0
    for i in range(start, stop):
        if i % 100 == skip:
            continue
        h = md5(f"{tag}:{i}".encode()).hexdigest()
        fd = op(f"{root}/{h[:2]}/{h[2:4]}/{h}", flags, 0o644)
        if mtime is not None:
            utime(fd, (mtime, mtime))
        close(fd)
        n += 1
    return n


def touch_many(root: str, ranges: list[tuple[str, int, int, int, float | None]], jobs: int,
               chunk: int = 20_000) -> int:
    """Create the files of ``ranges`` ((tag, start, stop, skip, mtime)) with ``jobs`` processes; their
    directories must exist (``make_dirs``). Returns how many files were made."""
    import multiprocessing as mp
    work = [(root, tag, s, min(stop, s + chunk), skip, mtime)
            for tag, start, stop, skip, mtime in ranges for s in range(start, stop, chunk)]
    if jobs <= 1:
        return sum(_touch_chunk(w) for w in work)
    with mp.get_context("spawn").Pool(jobs, initializer=_lower_priority) as pool:
        return sum(pool.imap_unordered(_touch_chunk, work))

