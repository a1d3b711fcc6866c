"""Scan a 0.14 external store both ways: djtui vs the floor vs DataJoint 0.14's own way.

``python -m bench orphans_scan [--rows N] [--dj014-python PATH]``. The floor is
``find`` over the store plus one ``SELECT hash`` of the external table; DataJoint
0.14's way is ``ExternalTable.unused()`` plus ``fetch_external_paths()`` (its
per-object path resolution) compared with a listing, run from a separate
virtualenv that holds datajoint 0.14. All three must agree on the orphan counts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench.gen_store import STORE, generate

DJ014_SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    import datajoint as dj
    host, port, user, pw, schema, store, location = sys.argv[1:8]
    dj.config['database.host'] = f'{host}:{port}'
    dj.config['database.user'] = user
    dj.config['database.password'] = pw
    dj.config['stores'] = {store: {'protocol': 'file', 'location': location}}
    dj.config['display.limit'] = 10
    dj.config['database.use_tls'] = False
    t0 = time.perf_counter()
    s = dj.Schema(schema, create_schema=False, create_tables=False)
    ext = s.external[store]
    unused = ext.unused().fetch('hash')
    expected = {str(p) for _, p in ext.fetch_external_paths()}
    listed = set()
    for d, _, files in os.walk(os.path.join(location, schema)):
        for f in files:
            listed.add(os.path.join(d, f))
    out = {'seconds': time.perf_counter() - t0, 'unused': len(unused),
           'untracked': len(listed - expected), 'missing': len(expected - listed)}
    print(json.dumps(out))
""")


def floor(srv, location: Path, schema: str) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    out = subprocess.run(["find", str(location / schema), "-type", "f"], capture_output=True, check=True)
    n_files = out.stdout.count(b"\n")
    conn = srv.connect()
    with conn.cursor() as cur:
        cur.execute(f"SELECT hash FROM `{schema}`.`~external_{STORE}`")
        n_rows = len(cur.fetchall())
    conn.close()
    return time.perf_counter() - t0, n_files, n_rows


def djtui_scan(srv, tmp: Path, location: Path, schema: str, empty_check: bool = True) -> tuple[float, dict[str, int]]:
    from djtui.config import parse_config
    from djtui.services.database import Database
    from djtui.services.orphans import OrphanService
    cfg = parse_config(f"state_dir: {tmp}/state\nstores:\n  {STORE}:\n    protocol: file\n    location: {location}\n")
    db = Database(srv.settings)
    try:
        svc = OrphanService(cfg, db)
        t0 = time.perf_counter()
        result = svc.scan(svc.resolve(f"external:{schema}:{STORE}"), empty_check=empty_check)
        dt = time.perf_counter() - t0
    finally:
        db.close()
    counts: dict[str, int] = {}
    for i in result.items:
        counts[i.reason] = counts.get(i.reason, 0) + 1
    return dt, counts


def dj014(python: str, srv, location: Path, schema: str) -> dict | None:
    out = subprocess.run([python, "-c", DJ014_SCRIPT, "127.0.0.1", str(srv.port), "djadmin",
                          srv.password.reveal(), schema, STORE, str(location)],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        print("datajoint 0.14 run failed:", out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    import os
    import statistics

    from djtui.services.servers.mariadb import PrivateServer
    ap = argparse.ArgumentParser(prog="python -m bench orphans_scan")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dj014-python", help="python of a virtualenv holding datajoint 0.14 (skipped without it); "
                    "build one with `python3 -m venv /tmp/dj014venv && /tmp/dj014venv/bin/pip install "
                    "'datajoint==0.14.*'`")
    ap.add_argument("--repeat", type=int, default=3, help="floor/djtui pairs to run, interleaved (default 3)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="djtui-bench-") as d:
        tmp = Path(d)
        srv = PrivateServer(tmp / "server", buffer_pool_mb=512)
        srv.start()
        try:
            conn = srv.connect()
            conn.autocommit(False)
            t0 = time.perf_counter()
            g = generate(conn, tmp / "store", "benchlab", a.rows)
            conn.close()
            print(f"generated {g.rows} rows, {g.objects} objects ({g.unused_rows} unused rows, "
                  f"{g.untracked_objects} untracked, {g.missing_objects} missing, {g.zero_objects} empty) "
                  f"in {time.perf_counter() - t0:.1f}s")
            subprocess.run(["sync"], check=False)
            print(f"load average before: {os.getloadavg()[0]:.1f} (the machine may be shared: compare ratios)")
            # the full scan reads every object's size (zero-byte objects: one stat per object, which
            # the floor does not do); --skip-empty-check is the scan "both ways" the floor compares with
            floors, ours, quick = [], [], []
            for n in range(a.repeat):
                f_s, n_files, n_rows = floor(srv, g.location, g.schema)
                j_s, counts = djtui_scan(srv, tmp, g.location, g.schema)
                q_s, q_counts = djtui_scan(srv, tmp, g.location, g.schema, empty_check=False)
                floors.append(f_s)
                ours.append(j_s)
                quick.append(q_s)
                print(f"  run {n + 1}: floor {f_s:.2f}s  djtui {j_s:.2f}s ({j_s / f_s:.2f}x)  "
                      f"djtui --skip-empty-check {q_s:.2f}s ({q_s / f_s:.2f}x)", flush=True)
                for c in (counts, q_counts):
                    assert c.get("unused-row", 0) == g.unused_rows, c
                    assert c.get("untracked-object", 0) == g.untracked_objects, c
                    assert c.get("missing-object", 0) == g.missing_objects, c
                assert counts.get("zero-byte", 0) == g.zero_objects, counts
            f_s, j_s, k_s = statistics.median(floors), statistics.median(ours), statistics.median(quick)
            ratios = statistics.median(j / f for j, f in zip(ours, floors, strict=True))
            q_ratios = statistics.median(j / f for j, f in zip(quick, floors, strict=True))
            print(f"\nmedians of {a.repeat} interleaved runs")
            print(f"{'way':<34}{'seconds':>10}{'ratio':>10}")
            print(f"{'floor (find + SELECT hash)':<34}{f_s:>10.2f}{1:>10.2f}")
            print(f"{'djtui orphans scan':<34}{j_s:>10.2f}{j_s / f_s:>10.2f}   (median of per-run ratios {ratios:.2f})")
            print(f"{'djtui scan --skip-empty-check':<34}{k_s:>10.2f}{k_s / f_s:>10.2f}   "
                  f"(median of per-run ratios {q_ratios:.2f})")
            if a.dj014_python:
                r = dj014(a.dj014_python, srv, g.location, g.schema)
                if r:
                    ok = (r["unused"], r["untracked"], r["missing"]) == (
                        g.unused_rows, g.untracked_objects, g.missing_objects)
                    print(f"{'datajoint 0.14 unused()+paths':<34}{r['seconds']:>10.2f}{r['seconds'] / f_s:>10.2f}"
                          f"   djtui is {r['seconds'] / j_s:.1f}x faster ({r['seconds'] / k_s:.1f}x without the "
                          f"empty check); counts agree: {ok}")
            print(f"counts: {counts}; listed {n_files} files, {n_rows} rows; "
                  f"load average after: {os.getloadavg()[0]:.1f}")
        finally:
            srv.stop()
    return 0
