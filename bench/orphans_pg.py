"""Orphan scans on PostgreSQL (issue 15): djtui vs the floor, side by side, interleaved.

``python -m bench orphans_pg [--rows N] [--repeat R]``. A private PostgreSQL holds a DataJoint 2.x-like
schema: ``rec`` with a ``jsonb`` column naming one hash-addressed object each (as DataJoint 2.3 writes
them: ``{"hash", "path", "store", "size", ...}``) and a ``jsonb`` column of parameters that names
none; the file store holds those objects (subfolded) and 1% more that no row names.

* store scan: the floor is ``find`` over the store (names, sizes and ages: ``-printf '%P %s %T@'``,
  what a scan with a grace age must know) plus one ``SELECT`` of the jsonb column's text; djtui is
  ``OrphanService.scan("store:main")``.
* table scan: orphan rows of ``subject`` (parent of ``rec`` by a foreign key); the floor is one
  ``SELECT`` of the parent's keys and one of the child's foreign-key columns; djtui is the
  ``NOT EXISTS`` scan.

Both must find exactly the orphans made; the ratios are medians of per-run ratios.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from djtui.domain import stores as ds

FOLDS = (2, 2)


def generate(srv, root: Path, rows: int) -> tuple[Path, int, int]:
    """The schema, the rows and the store; returns (store location, untracked objects, orphan subjects)."""
    loc = root / "store"
    old = time.time() - 3 * 3600
    subjects = max(10, rows // 50)
    with_rows = subjects * 9 // 10  # the last tenth of the subjects have no rec row: orphan rows
    buf = io.StringIO()
    for i in range(rows):
        h = ds.content_hash(i.to_bytes(8, "big"))
        path = ds.hash_path("benchlab", h, folds=FOLDS)
        p = loc / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
        os.utime(p, (old, old))
        ref = {"hash": h, "path": path, "store": "main", "size": 1, "schema": "benchlab"}
        buf.write(f"{i}\t{i % with_rows}\t{json.dumps({'gain': i % 7})}\t{json.dumps(ref)}\n")
    untracked = max(1, rows // 100)
    for i in range(untracked):
        h = ds.content_hash(b"u" + i.to_bytes(8, "big"))
        p = loc / ds.hash_path("benchlab", h, folds=FOLDS)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"u")
        os.utime(p, (old, old))
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute('CREATE SCHEMA "benchlab"')
            cur.execute('CREATE TABLE "benchlab".subject (subject_id int PRIMARY KEY)')
            cur.execute('CREATE TABLE "benchlab".rec (rec_id bigint PRIMARY KEY, subject_id int NOT NULL '
                        'REFERENCES "benchlab".subject, params jsonb, payload jsonb)')
            cur.execute('CREATE INDEX ON "benchlab".rec (subject_id)')  # DataJoint keys foreign keys the same way
            cur.execute('INSERT INTO "benchlab".subject SELECT generate_series(0, %s)', (subjects - 1,))
            buf.seek(0)
            cur.copy_expert('COPY "benchlab".rec FROM STDIN', buf)
            cur.execute('VACUUM ANALYZE "benchlab".rec')
            cur.execute('VACUUM ANALYZE "benchlab".subject')
    finally:
        conn.close()
    return loc, untracked, subjects - with_rows


def floor_store(srv, loc: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["find", str(loc), "-type", "f", "-printf", "%P %s %T@\n"], capture_output=True, check=True)
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT payload::text FROM "benchlab".rec')
            cur.fetchall()
    finally:
        conn.close()
    return time.perf_counter() - t0


def floor_table(srv) -> float:
    t0 = time.perf_counter()
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT subject_id FROM "benchlab".subject')
            cur.fetchall()
            cur.execute('SELECT subject_id FROM "benchlab".rec')
            cur.fetchall()
    finally:
        conn.close()
    return time.perf_counter() - t0


def djtui_scan(srv, tmp: Path, loc: Path, source: str) -> tuple[float, int]:
    from djtui.config import parse_config
    from djtui.services.database import Database
    from djtui.services.orphans import OrphanService
    cfg = parse_config(f"state_dir: {tmp}/state\nstores:\n  main:\n    protocol: file\n    location: {loc}\n"
                       f"    subfolding: [{', '.join(map(str, FOLDS))}]\n"
                       "orphans:\n  tables: [benchlab.subject]\n")
    t0 = time.perf_counter()
    db = Database(srv.settings)
    try:
        svc = OrphanService(cfg, db)
        result = svc.scan(svc.resolve(source))
    finally:
        db.close()
    return time.perf_counter() - t0, len(result.items)


def main(argv: list[str]) -> int:
    from djtui.services.servers.postgres import PrivatePostgres
    ap = argparse.ArgumentParser(prog="python -m bench orphans_pg")
    ap.add_argument("--rows", type=int, default=100_000, help="rows naming an object each (default 100000)")
    ap.add_argument("--repeat", type=int, default=3, help="floor/djtui pairs, interleaved (default 3)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="djtui-bench-") as d:
        tmp = Path(d)
        srv = PrivatePostgres(tmp / "pg")
        srv.start()
        try:
            t0 = time.perf_counter()
            loc, untracked, orphan_subjects = generate(srv, tmp, a.rows)
            print(f"PostgreSQL {srv.version}: {a.rows} rows and objects, {untracked} untracked objects, "
                  f"{orphan_subjects} orphan subjects; generated in {time.perf_counter() - t0:.1f}s")
            print(f"load average before: {os.getloadavg()[0]:.1f} (the machine may be shared: compare ratios)")
            runs: dict[str, list[tuple[float, float]]] = {"store": [], "table": []}
            for n in range(a.repeat):
                f_s = floor_store(srv, loc)
                j_s, found = djtui_scan(srv, tmp, loc, "store:main")
                assert found == untracked, (found, untracked)
                f_t = floor_table(srv)
                j_t, rows = djtui_scan(srv, tmp, loc, "table:benchlab.subject")
                assert rows == orphan_subjects, (rows, orphan_subjects)
                runs["store"].append((f_s, j_s))
                runs["table"].append((f_t, j_t))
                print(f"  run {n + 1}: store floor {f_s:.2f}s djtui {j_s:.2f}s ({j_s / f_s:.2f}x); "
                      f"table floor {f_t:.3f}s djtui {j_t:.3f}s ({j_t / f_t:.2f}x)", flush=True)
            print(f"\nmedians of {a.repeat} interleaved runs")
            print(f"{'scan':<44}{'floor s':>10}{'djtui s':>10}{'ratio':>8}")
            for name, label in (("store", "2.x file store (find -printf + SELECT jsonb)"),
                                ("table", "orphan rows (SELECT parent + child keys)")):
                fl = statistics.median(f for f, _ in runs[name])
                us = statistics.median(j for _, j in runs[name])
                ratio = statistics.median(j / f for f, j in runs[name])
                print(f"{label:<44}{fl:>10.3f}{us:>10.3f}{ratio:>8.2f}")
        finally:
            srv.stop()
    return 0
