"""status-range over 5,000 sessions x 8 files vs the shell tool's way (find | wc -l, du, Python+DataJoint per session).

The shell tool, per session: `find SRC -type f | wc -l`, `find DST -type f | wc -l`, `du -sb SRC`,
`find SRC -name '*.mp4' | wc -l`, and a fresh `python -c 'import datajoint ...'` process asking
3 + 2 x recordings queries. Re-created faithfully for a sample of sessions and extrapolated to all
of them (the full run would take hours); djtui runs in full, warm, in-process and as the CLI.

    python -m bench sessions_status [--sessions 5000] [--files 8] [--sample 20] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
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


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench sessions_status", description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=5000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--sample", type=int, default=20, help="sessions timed the shell tool's way")
    ap.add_argument("--dir", type=Path, help="work directory (default: a temp dir, removed afterwards)")
    a = ap.parse_args(argv)
    from djtui.config import load_config
    from djtui.services.database import Database
    from djtui.services.servers.mariadb import PrivateServer
    from djtui.services.sessions import SessionService

    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-sess-status-"))
    server = PrivateServer(work / "server")
    server.start()
    try:
        t = time.perf_counter()
        cfg_path, manifest = build(work / "lab", sessions=a.sessions, files=a.files, server=server)
        print(f"generated {a.sessions} sessions x {a.files} files + database rows in {time.perf_counter() - t:.1f} s")
        cfg = load_config(cfg_path)
        db = Database.from_config(cfg)
        svc = SessionService(cfg, db)
        first = svc.status_range()
        assert len(first) == a.sessions, len(first)
        ours, runs = timed(svc.status_range, 5)
        env = {**os.environ}
        cli, _ = timed(lambda: subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg_path),
                                               "status-range", "--json"], check=True, capture_output=True,
                                              env=env), 3)
        per = shell_way(work / "lab", manifest, a.sample, server.port, server.password.reveal())
        shell_total = per * a.sessions
        db.close()
    finally:
        server.stop()
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table([
        ("what", "seconds", "note"),
        ("djtui status-range (in process, warm, median of 5)", f"{ours:.2f}",
         f"runs {', '.join(f'{r:.2f}' for r in runs)}"),
        ("djtui status-range --json (CLI process, median of 3)", f"{cli:.2f}", "includes Python start-up"),
        ("shell tool's way, per session", f"{per:.3f}", f"measured on {a.sample} sessions"),
        (f"shell tool's way, {a.sessions} sessions", f"{shell_total:.0f}", "extrapolated from the sample"),
    ]))
    print(f"\nratio shell/djtui (in process): {shell_total / ours:.0f}x   (target >= 20x)")
    print(f"ratio shell/djtui (CLI):        {shell_total / cli:.0f}x")
    print(f"target under 2 s warm: {'met' if ours < 2 else 'NOT met'} ({ours:.2f} s)")
    return 0
