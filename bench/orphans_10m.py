"""A 0.14 store scan at lab scale (default 10M rows + 10M objects): time, peak memory, ratio to the floor.

``python -m bench orphans_10m [--rows N] [--dir /tmp] [--ways streamed,inmemory,server]``.
Objects are empty files in ONE tree under ``--dir`` (the disk's inodes are the limit: checked with
``statvfs`` before anything is written) and the tree is deleted at the end, also after an error.
Rows go in with ``LOAD DATA``. Each way runs in a fresh process that reports its own peak RSS:

- ``streamed``: ``djtui orphans scan --skip-empty-check`` (both sides in hash order, merged);
- ``inmemory``: the same comparison with both sides as Python sets (the way before issue 17);
- ``server``: the listing loaded into a temporary table and the difference done by the server.

The floor is ``find -type f`` over the schema's folder plus one ``SELECT hash`` of the table. All
ways must find the generated orphans (1% unused rows, 1% missing objects, 1% untracked objects).

Measured 2026-12-04 (2 shared cores, load average 3-4), ``--ways streamed``: 10M rows + 10M objects, files made
in 423 s (23,600/s, 2 niced processes) + 107 s LOAD DATA; floor 19.5 s, streamed 29.3 s (1.50x), peak RSS
239 MB, all orphans found; the tree's removal took 167 s. Whole run ~13 min. Under load 8-12 the files went at
5,600/s (3M in 534 s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import gen_store
from bench.gen_store import STORE

SCHEMA = "benchlab"

CHILD = r'''
import json, os, sys, time
a = json.loads(sys.stdin.readline())
from djtui.config import parse_config
from djtui.services.database import ConnectionSettings
from djtui.config.reader import Secret
from djtui.services.database import Database
settings = ConnectionSettings(host="127.0.0.1", port=a["port"], user=a["user"], password=Secret(a["password"]),
                              sources=("bench",))
db = Database(settings)
t0 = time.perf_counter()
out = {}
if a["way"] == "streamed":
    from djtui.services.orphans import OrphanService
    cfg = parse_config(f"state_dir: {a['state']}\nstores:\n  {a['store']}:\n    protocol: file\n"
                       f"    location: {a['location']}\n")
    svc = OrphanService(cfg, db)
    seen = []
    res = svc.scan(svc.resolve(f"external:{a['schema']}:{a['store']}"), empty_check=False)
    for i in res.items:
        out[i.reason] = out.get(i.reason, 0) + 1
elif a["way"] == "inmemory":
    from pathlib import Path
    from concurrent.futures import ThreadPoolExecutor
    from djtui.domain import stores as ds
    from djtui.services.orphans.reads import blob_hashes
    from djtui.services.stores.walk import walk_legacy
    table = f"~external_{a['store']}"
    with ThreadPoolExecutor(2) as pool:
        fb = pool.submit(blob_hashes, db, a["schema"], table)
        fl = pool.submit(walk_legacy, Path(a["location"]), a["schema"], None, lambda: False, 1, False)
        blobs, listing = fb.result(), fl.result()
    cand = ds.legacy_candidates(a["schema"], blobs, [], listing)
    out = {"untracked-object": len(cand.untracked), "missing-object": len(cand.missing)}
elif a["way"] == "server":
    import subprocess
    names = os.path.join(a["secure_dir"], "listing.txt")
    with open(names, "wb") as f:
        subprocess.run(["find", os.path.join(a["location"], a["schema"]), "-type", "f", "-printf", "%f\n"],
                       stdout=f, check=True)
    conn = db.connect()
    lt = f"`{a['schema']}`.listed"
    with conn.cursor() as cur:
        cur.execute(f"CREATE TEMPORARY TABLE {lt} (hash BINARY(16) NOT NULL PRIMARY KEY) ENGINE=InnoDB")
        cur.execute(f"LOAD DATA INFILE %s IGNORE INTO TABLE {lt} (@h) SET hash = UNHEX(@h)", (names,))
        ext = f"`{a['schema']}`.`~external_{a['store']}`"
        cur.execute(f"SELECT COUNT(*) FROM {lt} l WHERE NOT EXISTS (SELECT 1 FROM {ext} e WHERE e.hash = l.hash)")
        out["untracked-object"] = cur.fetchone()[0]
        cur.execute(f"SELECT COUNT(*) FROM {ext} e WHERE NOT EXISTS (SELECT 1 FROM {lt} l WHERE l.hash = e.hash)")
        out["missing-object"] = cur.fetchone()[0]
    conn.close()
    os.unlink(names)
db.close()
out["seconds"] = time.perf_counter() - t0
# VmHWM is this process's own peak: ru_maxrss would carry the parent's peak across fork and exec
with open("/proc/self/status") as f:
    out["peak_rss_mb"] = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
print(json.dumps(out))
'''


def digest(tag: str, i: int) -> bytes:
    return hashlib.md5(f"{tag}:{i}".encode()).digest()


def generate(srv, base: Path, location: Path, rows: int, jobs: int) -> dict[str, int]:
    """Rows by LOAD DATA (every 100th unused), objects as empty files (every 100th row's missing),
    plus 1% untracked objects, all dated a day back so the grace age does not hide them."""
    ext_tsv, rec_tsv = base / "server" / "ext.tsv", base / "server" / "rec.tsv"  # inside secure_file_priv
    old = time.time() - 86400
    n_stray = max(1, rows // 100)
    parents: set[str] = set()
    t0 = time.perf_counter()
    with open(ext_tsv, "w") as fe, open(rec_tsv, "w") as fr:
        for i in range(rows):
            h = digest("row", i).hex()
            fe.write(h + "\n")
            if i % 100:
                fr.write(f"{i}\t{h}\n")
            if i % 100 != 1:
                parents.add(f"{h[:2]}/{h[2:4]}")
    parents.update(f"{h[:2]}/{h[2:4]}" for h in (digest("stray", j).hex() for j in range(n_stray)))
    root = f"{location}/{SCHEMA}"
    gen_store.make_dirs(root, parents)
    # the files are not what is measured: several niced processes, directories made first, open+close only
    made = gen_store.touch_many(root, [("row", 0, rows, 1, None), ("stray", 0, n_stray, -1, old)], jobs)
    files_s = time.perf_counter() - t0
    missing = len(range(1, rows, 100))
    assert made == rows - missing + n_stray, (made, rows, missing, n_stray)
    print(f"files: {made} in {len(parents)} folders in {files_s:.1f}s ({made / files_s:,.0f}/s, {jobs} processes)",
          flush=True)
    conn = srv.connect(local_infile=False)
    t1 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{SCHEMA}`")
        cur.execute(f"CREATE TABLE `{SCHEMA}`.`~external_{STORE}` (hash BINARY(16) NOT NULL, "
                    "size BIGINT UNSIGNED NOT NULL, attachment_name VARCHAR(255) NULL, filepath VARCHAR(1000) NULL, "
                    "contents_hash BINARY(16) NULL, timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
                    "PRIMARY KEY (hash)) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{SCHEMA}`.`rec` (id INT PRIMARY KEY, data BINARY(16) NOT NULL, "
                    f"FOREIGN KEY (data) REFERENCES `{SCHEMA}`.`~external_{STORE}` (hash)) ENGINE=InnoDB")
        cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(old))
        cur.execute(f"LOAD DATA INFILE %s INTO TABLE `{SCHEMA}`.`~external_{STORE}` (@h) "
                    "SET hash = UNHEX(@h), size = 0, timestamp = %s", (str(ext_tsv), stamp))
        cur.execute(f"LOAD DATA INFILE %s INTO TABLE `{SCHEMA}`.rec (id, @h) SET data = UNHEX(@h)", (str(rec_tsv),))
        cur.execute(f"ANALYZE TABLE `{SCHEMA}`.`~external_{STORE}`, `{SCHEMA}`.rec")
        cur.fetchall()
    conn.commit()
    conn.close()
    ext_tsv.unlink()
    rec_tsv.unlink()
    print(f"generated {rows} rows, {made} objects in {files_s:.0f}s (files) + "
          f"{time.perf_counter() - t1:.0f}s (LOAD DATA)", flush=True)
    return {"unused-row": len(range(0, rows, 100)), "missing-object": missing, "untracked-object": n_stray}


def floor(srv, location: Path) -> float:
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(["find", str(location / SCHEMA), "-type", "f"], stdout=null, check=True)
    conn = srv.connect()
    with conn.cursor() as cur:
        cur.execute(f"SELECT hash FROM `{SCHEMA}`.`~external_{STORE}`")
        cur.fetchall()
    conn.close()
    return time.perf_counter() - t0


def run_way(way: str, srv, base: Path, location: Path) -> dict:
    args = {"way": way, "port": srv.port, "user": "djadmin", "password": srv.password.reveal(),
            "state": str(base / "state"), "store": STORE, "location": str(location), "schema": SCHEMA,
            "secure_dir": str(base / "server")}
    p = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(args) + "\n", capture_output=True,
                       text=True, timeout=7200)  # the password goes by stdin, never argv
    if p.returncode != 0:
        raise RuntimeError(f"{way} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def check_inodes(where: Path, rows: int) -> None:
    st = os.statvfs(where)
    need = int(rows * 1.02) + 70_000
    reserve = min(1_000_000, st.f_files // 10)  # leave some for everyone else on the machine
    if st.f_favail < need + reserve:
        raise SystemExit(f"{where}: {st.f_favail} free inodes, {need} needed plus a reserve of {reserve}; "
                         "use --rows smaller or --dir on another filesystem")
    print(f"inodes: {st.f_favail} free, {need} needed", flush=True)


def main(argv: list[str]) -> int:
    from djtui.services.servers.mariadb import PrivateServer
    ap = argparse.ArgumentParser(prog="python -m bench orphans_10m")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--ways", default="streamed,inmemory,server")
    ap.add_argument("--repeat", type=int, default=1, help="floor/way rounds, interleaved")
    ap.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 1),
                    help="processes creating the files (niced, idle disk class)")
    a = ap.parse_args(argv)
    # a kill (SIGTERM) ends like Ctrl-C: the finally below stops the server and deletes the tree
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    check_inodes(a.dir, a.rows)
    base = Path(tempfile.mkdtemp(prefix="djtui-bench10m-", dir=a.dir))
    location = base / "store"
    srv = PrivateServer(base / "server", buffer_pool_mb=1024)
    try:
        srv.start()
        expected = generate(srv, base, location, a.rows, a.jobs)
        subprocess.run(["sync"], check=False)
        results: dict[str, list[tuple[float, dict]]] = {w: [] for w in a.ways.split(",")}
        for n in range(a.repeat):
            for way in results:
                f_s = floor(srv, location)
                r = run_way(way, srv, base, location)
                results[way].append((f_s, r))
                ok = all(r.get(k, 0) == v for k, v in expected.items() if k in r or way == "streamed")
                print(f"  round {n + 1} {way:<9} floor {f_s:7.1f}s  {r['seconds']:7.1f}s "
                      f"({r['seconds'] / f_s:.2f}x)  peak RSS {r['peak_rss_mb']:7.0f} MB  counts agree: {ok}",
                      flush=True)
                if not ok:
                    print(f"    expected {expected}, got {r}", flush=True)
        print(f"\n{a.rows:,} rows + {a.rows - expected['missing-object'] + expected['untracked-object']:,} objects; "
              f"load average {os.getloadavg()[0]:.1f}")
        for way, rs in results.items():
            ratios = sorted(r["seconds"] / f for f, r in rs)
            print(f"{way:<9} {min(r['seconds'] for _, r in rs):7.1f}s  ratio to floor {ratios[len(ratios) // 2]:.2f}x "
                  f"(of {len(rs)})  peak RSS {max(r['peak_rss_mb'] for _, r in rs):.0f} MB")
    finally:
        srv.stop()
        t0 = time.perf_counter()
        subprocess.run(["rm", "-rf", str(base)], check=False)  # millions of files: rm is the fast way
        print(f"removed {base} in {time.perf_counter() - t0:.0f}s", flush=True)
    return 0
