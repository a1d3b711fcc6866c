"""How long the event loop stalls while a delete plan scans a big session: on the loop (before) vs in a thread.

The plan of a single delete scans the whole session for the excluded files it keeps. Before issue 14
the Sessions screen ran that scan on the event loop, so no key was handled until it ended; now it runs
in a worker thread. A 1 ms ticker on the loop measures the longest gap between two ticks either way.

    python -m bench sessions_delete_plan [--files 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench._sessions_lab import table
from djtui.domain.sessions import DjStatus, SessionKey, SessionStatus
from djtui.services import filesystem
from djtui.services.sessions.deletion import excluded_files


def make_session(root: Path, files: int) -> Path:
    per = 1000
    for d in range(0, files, per):
        sub = root / f"cam{d // per:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(min(per, files - d)):
            (sub / f"f{i:05d}.bin").touch()
    return root


async def max_gap(work) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(longest gap between two 1 ms ticks, wall time of ``work``) while ``work`` runs."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    t = time.perf_counter()
    await work()
    wall = time.perf_counter() - t
    stop.set()
    await tick
    return max(gaps), wall


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench sessions_delete_plan")
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        src = make_session(Path(tmp) / "p001" / "20250104", args.files)
        listing = filesystem.scan(src, timeout=60)
        status = SessionStatus(SessionKey("p001", dt.date(2025, 1, 4)), "1", str(src), listing, DjStatus(True))

        async def on_loop() -> None:
            excluded_files(status, 60)

        async def in_thread() -> None:
            await asyncio.to_thread(excluded_files, status, 60)

        rows = [("how", "longest loop stall (median)", "plan scan wall time (median)")]
        for name, fn in (("on the event loop (before)", on_loop), ("in a worker thread (now)", in_thread)):
            runs = [asyncio.run(max_gap(fn)) for _ in range(args.repeat)]
            rows.append((name, f"{statistics.median(r[0] for r in runs) * 1000:.0f} ms",
                         f"{statistics.median(r[1] for r in runs):.2f} s"))
    print(f"delete plan of one session of {args.files:,} files ({os.cpu_count()} CPUs), {args.repeat} rounds")
    print(table(rows))
    return 0


if __name__ == "__main__":
    import sys
    raise SystemExit(main(sys.argv[1:]))
