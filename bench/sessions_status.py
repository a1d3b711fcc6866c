"""status-range over 50,000 sessions x 8 files vs its floor (one find per tree + the queries) and the shell tool's way.

The shell tool, per session: `find SRC -type f | wc -l`, `find DST -type f | wc -l`, `du -sb SRC`,
`find SRC -name '*.mp4' | wc -l`, and a fresh `python -c 'import datajoint ...'` process asking
3 + 2 x recordings queries. Re-created faithfully for a sample of sessions and extrapolated to all
of them (the full run would take hours); djtui runs in full, warm, in-process and as the CLI.

The floor is what any status-range must do: one `find` per tree (source and destination, started
together) while the batched import queries run, in the same process. djtui and the floor run in
pairs of rounds, alternating which goes first; the ratio is the median of the pairs' ratios.
The generated lab (trees and the private server's data) is kept in --dir (default
/tmp/djtui-bench-status-<sessions>x<files>) and reused by the next run: 50,000 sessions take minutes
to make.

    python -m bench sessions_status [--sessions 50000] [--files 8] [--rounds 7] [--sample 20] [--dir DIR]
                                    [--fresh]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench._sessions_lab import build, table, timed

ORACLE = r'''
import sys, datajoint, pymysql, os
pid, date, s, m = sys.argv[1:5]
c = pymysql.connect(host="127.0.0.1", port=int(os.environ["BENCH_PORT"]), user="djadmin",
                    password=os.environ["DJ_PASS"])
cur = c.cursor()
cur.execute(f"SELECT 1 FROM `{s}`.`subject` WHERE participant_id=%s", (pid,))
cur.execute(f"SELECT 1 FROM `{s}`.`session` WHERE participant_id=%s AND session_date=%s", (pid, date))
cur.execute(f"SELECT recording_timestamps, camera_config_hash FROM `{s}`.`recording` "
            "WHERE participant_id=%s AND session_date=%s", (pid, date))
for ts, h in cur.fetchall():
    cur.execute(f"SELECT 1 FROM `{m}`.`multi_camera_recording` WHERE recording_timestamps=%s "
                "AND camera_config_hash=%s", (ts, h))
    cur.execute(f"SELECT COUNT(*) FROM `{m}`.`single_camera_video` WHERE recording_timestamps=%s "
                "AND camera_config_hash=%s", (ts, h))
print("ok")
'''


def shell_way(out: Path, manifest: list[dict], sample: int, port: int, password: str) -> float:
    """Seconds per session, the way backup_manager.sh status-range does it."""
    env = {**os.environ, "DJ_PASS": password, "BENCH_PORT": str(port), "LC_ALL": "C"}
    step = max(1, len(manifest) // sample)
    picked = manifest[::step][:sample]
    t = time.perf_counter()
    for m in picked:
        pid, ymd = m["participant_id"], m["session_date"]
        src, dst = out / "src" / pid / ymd, out / "dst" / ymd / pid
        script = (f"find '{src}' -type f | wc -l; find '{dst}' -type f 2>/dev/null | wc -l; du -sb '{src}'; "
                  f"find '{src}' -name '*.mp4' | wc -l")
        subprocess.run(["bash", "-c", script], check=True, capture_output=True, env=env)
        date = f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]}"
        subprocess.run([sys.executable, "-c", ORACLE, pid[1:], date, "bench_mocap_sessions",
                        "bench_multicamera_tracking"], check=True, capture_output=True, env=env)
    return (time.perf_counter() - t) / len(picked)


def open_lab(work: Path, sessions: int, files: int, fresh: bool):
    """The generated lab in ``work`` with its private server running: reused when a run left one there."""
    import json

    import yaml

    from djtui.config.reader import Secret
    from djtui.services.servers.mariadb import PrivateServer

    saved, cfg_path = work / "bench-manifest.json", work / "lab" / "djtui.yaml"
    server = PrivateServer(work / "server", keep_dir=True)
    if not fresh and saved.is_file() and cfg_path.is_file() and (work / "server" / "data" / "mysql").is_dir():
        data = yaml.safe_load(cfg_path.read_text())
        server.restart(Secret(data["database"]["password"]))
        data["database"]["port"] = server.port
        cfg_path.write_text(yaml.safe_dump(data, sort_keys=False))
        print(f"reusing the lab in {work} (--fresh makes a new one)")
        return server, cfg_path, json.loads(saved.read_text())
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    server.start()
    t = time.perf_counter()
    cfg_path, manifest = build(work / "lab", sessions=sessions, files=files, server=server)
    saved.write_text(json.dumps(manifest))
    print(f"generated {sessions} sessions x {files} files + database rows in {time.perf_counter() - t:.1f} s")
    return server, cfg_path, manifest


def floor(svc, keys) -> None:
    """One `find` per tree, both started together, while the batched import queries run."""
    from concurrent.futures import ThreadPoolExecutor

    def find(root: Path) -> int:
        p = subprocess.run(["find", str(root), "-printf", "%P\\0%s\\0%T@\\0"], capture_output=True, check=True)
        return len(p.stdout)

    svc._session_rows = None  # the queries run in full, as status-range's first ones do
    with ThreadPoolExecutor(max_workers=3) as pool:
        jobs = [pool.submit(find, svc.source_base), pool.submit(find, svc.destinations[0].base_path),
                pool.submit(lambda: (svc.db_sessions(min(k.session_date for k in keys),
                                                     max(k.session_date for k in keys)), svc.dj_status(keys)))]
        for j in jobs:
            j.result()


def main(argv: list[str]) -> int:
    import gc
    import statistics

    ap = argparse.ArgumentParser(prog="python -m bench sessions_status", description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=50000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=7, help="paired rounds of djtui and the floor (default 7)")
    ap.add_argument("--cli", type=int, default=1, help="runs of the CLI process (default 1; 0: none)")
    ap.add_argument("--sample", type=int, default=20, help="sessions timed the shell tool's way (0: none)")
    ap.add_argument("--dir", type=Path, help="where the lab is kept (default /tmp/djtui-bench-status-NxF)")
    ap.add_argument("--fresh", action="store_true", help="make a new lab even if --dir holds one")
    a = ap.parse_args(argv)
    from djtui.config import load_config
    from djtui.services.database import Database
    from djtui.services.sessions import SessionService

    work = a.dir or Path(f"/tmp/djtui-bench-status-{a.sessions}x{a.files}")
    server, cfg_path, manifest = open_lab(work, a.sessions, a.files, a.fresh)
    try:
        cfg = load_config(cfg_path)
        db = Database.from_config(cfg)
        svc = SessionService(cfg, db)
        first = svc.status_range()
        assert len(first) == a.sessions, len(first)
        keys = [s.key for s in first]
        del first
        gc.collect()
        pairs: list[tuple[float, float]] = []
        for i in range(a.rounds):
            got = {}
            for name in (("ours", "floor") if i % 2 == 0 else ("floor", "ours")):
                t = time.perf_counter()
                res = svc.status_range() if name == "ours" else floor(svc, keys)
                got[name] = time.perf_counter() - t
                del res
                gc.collect()
            pairs.append((got["ours"], got["floor"]))
            print(f"round {i + 1}: djtui {got['ours']:.2f} s  floor {got['floor']:.2f} s  "
                  f"ratio {got['ours'] / got['floor']:.2f}", flush=True)
        cli, _runs = (timed(lambda: subprocess.run(
            [sys.executable, "-m", "djtui", "--config", str(cfg_path), "status-range", "--json"], check=True,
            capture_output=True), a.cli) if a.cli else (0.0, []))
        per = shell_way(work / "lab", manifest, a.sample, server.port, server.password.reveal()) if a.sample else 0.0
        db.close()
    finally:
        server.stop()
    ours = statistics.median(p[0] for p in pairs)
    base = statistics.median(p[1] for p in pairs)
    ratios = sorted(o / f for o, f in pairs)
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    shell_total = per * a.sessions
    print(table([
        ("what", "seconds", "note"),
        (f"djtui status-range (in process, warm, median of {a.rounds})", f"{ours:.2f}",
         f"runs {', '.join(f'{p[0]:.2f}' for p in pairs)}"),
        (f"floor: one find per tree + the batched queries (median of {a.rounds})", f"{base:.2f}",
         f"runs {', '.join(f'{p[1]:.2f}' for p in pairs)}"),
        *([(f"djtui status-range --json (CLI process, median of {a.cli})", f"{cli:.2f}",
            "includes Python start-up")] if a.cli else []),
        *([("shell tool's way, per session", f"{per:.3f}", f"measured on {a.sample} sessions"),
           (f"shell tool's way, {a.sessions} sessions", f"{shell_total:.0f}", "extrapolated from the sample")]
          if a.sample else []),
    ]))
    print(f"\ndjtui/floor: median of the paired ratios {statistics.median(ratios):.2f}  (target <= 3)   "
          f"spread {ratios[0]:.2f}..{ratios[-1]:.2f}, quartiles {q[0]:.2f}..{q[2]:.2f}")
    if a.sample:
        print(f"ratio shell/djtui (in process): {shell_total / ours:.0f}x   (target >= 20x)")
    print(f"(load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return 0
