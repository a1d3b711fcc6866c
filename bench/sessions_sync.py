"""Sync of 2 GB in 2,000 files: djtui's sync job vs plain rsync with the same flags, side by side.

One session of 2,000 files of 1 MB (incompressible content). Each round copies into fresh
destinations: plain `rsync -a SRC/ DST/`, rsync with djtui's exact flags, and djtui's job (the same
`-a` plus its progress, itemize and --mkpath flags, parsing every progress line), in an order that
rotates through all six permutations so no side always goes first. Rounds vary by +-20% on a shared
machine, so each round's djtui time is divided by the same round's rsync time, and the report gives
the median of these paired ratios with their min and max. djtui's verification after the copy is
timed separately.

    python -m bench sessions_sync [--files 2000] [--size 1048576] [--rounds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench._sessions_lab import table


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench sessions_sync", description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--dir", type=Path)
    a = ap.parse_args(argv)
    from djtui.config import parse_config
    from djtui.domain.sessions import SessionKey
    from djtui.services.sessions import SessionService
    from djtui.services.transfers import JobQueue, verify_session

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
        times: dict[str, list[float]] = {"plain": [], "same": [], "ours": []}
        verify_times: list[float] = []
        updates: list = []
        env = {**os.environ, "LC_ALL": "C"}

        def plain(r: int) -> float:
            dst = work / f"plain{r}"
            t = time.perf_counter()
            subprocess.run(["rsync", "-a", f"{src}/", f"{dst}/"], check=True, env=env)
            took = time.perf_counter() - t
            shutil.rmtree(dst)
            return took

        def same(r: int) -> float:
            dst = work / f"same{r}"
            t = time.perf_counter()
            subprocess.run(["rsync", "-a", "-i", "--info=progress2", "--no-h", "--outbuf=L", "--mkpath", f"{src}/",
                            f"{dst}/"], check=True, env=env, stdout=subprocess.DEVNULL)
            took = time.perf_counter() - t
            shutil.rmtree(dst)
            return took

        def ours(r: int) -> float:
            dst = work / f"ours{r}"
            cfg = parse_config(f"backup:\n  source:\n    base_path: {work}/src\n  destinations:\n"
                               f"    - name: b\n      base_path: {dst}\n  rsync:\n    flags: \"-a\"\n"
                               f"sessions:\n  mount_timeout: 60\nstate_dir: {work}/state\n")
            dst.mkdir()
            svc = SessionService(cfg, None)
            updates.clear()

            async def run() -> object:
                q = JobQueue(svc, verify_after_sync=False)
                q.listeners.append(lambda j: updates.append(j.progress))
                job = q.submit("sync", key, "b")
                await q.wait([job])
                assert job.ok, job.message
                return job

            t = time.perf_counter()
            asyncio.run(run())
            took = time.perf_counter() - t
            t = time.perf_counter()
            out = verify_session(svc, key, svc.destinations[0])
            verify_times.append(time.perf_counter() - t)
            assert out.ok and out.source_files == a.files, out.message
            shutil.rmtree(dst)
            return took

        runners = {"plain": plain, "same": same, "ours": ours}
        orders = list(itertools.permutations(runners))  # each order equally often: no side always goes first
        for r in range(a.rounds):
            order = orders[r % len(orders)]
            for name in order:
                times[name].append(runners[name](r))
            print(f"round {r + 1}/{a.rounds} ({' -> '.join(order)}): "
                  + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in runners), flush=True)
    finally:
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    def spread(xs: list[float]) -> str:
        return f"{statistics.median(xs):.3f} (min {min(xs):.3f}, max {max(xs):.3f})"

    # each round's djtui time over the same round's rsync time: the machine's drift between rounds cancels
    vs_plain = [o / p for o, p in zip(times["ours"], times["plain"], strict=True)]
    vs_same = [o / p for o, p in zip(times["ours"], times["same"], strict=True)]
    print(table([
        ("what", "seconds, median (min, max)", "rounds"),
        ("rsync -a (plain)", spread(times["plain"]), ", ".join(f"{x:.2f}" for x in times["plain"])),
        ("rsync with djtui's exact flags, output discarded", spread(times["same"]),
         ", ".join(f"{x:.2f}" for x in times["same"])),
        ("djtui sync job (rsync -a + progress/itemize, parsed)", spread(times["ours"]),
         ", ".join(f"{x:.2f}" for x in times["ours"])),
        ("djtui verify after the copy (size, every file)", spread(verify_times), ""),
    ]))
    print(f"\nprogress updates seen by the job queue in the last round: {len(updates)}")
    print(f"{a.rounds} paired rounds, the order rotated through all 6 permutations")
    print(f"djtui/rsync -a, same round: median {spread(vs_plain)}   (target <= 1.05: "
          f"{'met' if statistics.median(vs_plain) <= 1.05 else 'NOT met'})")
    print(f"djtui/rsync with the same flags, same round: median {spread(vs_same)}")
    return 0
