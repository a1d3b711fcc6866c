"""Sync of 2 GB in 2,000 files: djtui's sync job vs plain rsync with the same flags, side by side.

One session of 2,000 files of 1 MB (incompressible content). Each round copies into a fresh
destination: plain `rsync -a SRC/ DST/`, then djtui's job (the same `-a` plus its progress,
itemize and --mkpath flags, parsing every progress line), alternating, best of the rounds.
djtui's verification after the copy is timed separately.

    python -m bench sessions_sync [--files 2000] [--size 1048576] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench._sessions_lab import table


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench sessions_sync", description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path)
    a = ap.parse_args(argv)
    from djtui.config import parse_config
    from djtui.domain.sessions import SessionKey
    from djtui.services.sessions import SessionService
    from djtui.services.transfer import JobQueue, verify_session

    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-sess-sync-"))
    key = SessionKey("p0001", dt.date(2025, 6, 30))
    src = work / "src" / key.participant_id / key.date_str
    try:
        src.mkdir(parents=True)
        t = time.perf_counter()
        block = os.urandom(a.size)
        for i in range(a.files):
            (src / f"cam{i:05d}.mp4").write_bytes(i.to_bytes(8, "little") + block[8:])
        total = a.files * a.size
        print(f"generated {a.files} files, {total / 1e9:.2f} GB in {time.perf_counter() - t:.1f} s")
        plain_times, same_flags_times, ours_times, verify_times = [], [], [], []
        for r in range(a.rounds):
            plain_dst = work / f"plain{r}"
            t = time.perf_counter()
            subprocess.run(["rsync", "-a", f"{src}/", f"{plain_dst}/"], check=True, env={**os.environ, "LC_ALL": "C"})
            plain_times.append(time.perf_counter() - t)
            shutil.rmtree(plain_dst)
            t = time.perf_counter()
            subprocess.run(["rsync", "-a", "-i", "--info=progress2", "--no-h", "--outbuf=L", "--mkpath", f"{src}/",
                            f"{plain_dst}/"], check=True, env={**os.environ, "LC_ALL": "C"},
                           stdout=subprocess.DEVNULL)
            same_flags_times.append(time.perf_counter() - t)
            shutil.rmtree(plain_dst)
            dst = work / f"ours{r}"
            cfg = parse_config(f"backup:\n  source:\n    base_path: {work}/src\n  destinations:\n"
                               f"    - name: b\n      base_path: {dst}\n  rsync:\n    flags: \"-a\"\n"
                               f"sessions:\n  mount_timeout: 60\nstate_dir: {work}/state\n")
            dst.mkdir()
            svc = SessionService(cfg, None)
            updates = []

            async def run(svc=svc, updates=updates) -> object:
                q = JobQueue(svc, verify_after_sync=False)
                q.listeners.append(lambda j: updates.append(j.progress))
                job = q.submit("sync", key, "b")
                await q.wait([job])
                assert job.ok, job.message
                return job

            t = time.perf_counter()
            asyncio.run(run())
            ours_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            out = verify_session(svc, key, svc.destinations[0])
            verify_times.append(time.perf_counter() - t)
            assert out.ok and out.source_files == a.files, out.message
            shutil.rmtree(dst)
    finally:
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    plain, ours = min(plain_times), min(ours_times)
    print(table([
        ("what", "seconds (best)", "rounds"),
        ("rsync -a (plain)", f"{plain:.2f}", ", ".join(f"{x:.2f}" for x in plain_times)),
        ("rsync with djtui's exact flags, output discarded", f"{min(same_flags_times):.2f}",
         ", ".join(f"{x:.2f}" for x in same_flags_times)),
        ("djtui sync job (rsync -a + progress/itemize, parsed)", f"{ours:.2f}",
         ", ".join(f"{x:.2f}" for x in ours_times)),
        ("djtui verify after the copy (size, every file)", f"{min(verify_times):.2f}", ""),
    ]))
    print(f"\nprogress updates seen by the job queue in the last round: {len(updates)}")
    print(f"djtui/rsync -a wall time = {ours / plain:.3f}   (target <= 1.05)")
    print(f"djtui/rsync with the same flags = {ours / min(same_flags_times):.3f}")
    return 0
