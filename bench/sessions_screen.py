"""The Sessions screen with 5,000 rows: time to first rows, and keypress-to-repaint while scrolling.

Runs the real app headless (Textual's test driver) against a generated lab of 5,000 sessions x 8
files with its database rows: first rows = from the app's start until the table holds rows and
has been painted; scrolling = `down`/`pagedown` presses, each timed from the key until the next frame
the app produces (a hook on App._display; the test driver's own idle waits are not counted).

    python -m bench sessions_screen [--sessions 5000] [--presses 60]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench._sessions_lab import build, table


async def measure(cfg, presses: int) -> tuple[float, float, list[float], int]:
    from textual.widgets import DataTable

    from djtui.tui.app import DjtuiApp

    t0 = time.perf_counter()
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        table_w = screen.query_one(DataTable)
        while table_w.row_count == 0:
            await asyncio.sleep(0.005)
        first = time.perf_counter() - t0  # rows are in the table; the next refresh paints them
        await pilot.pause()
        await asyncio.wait_for(screen.loaded.wait(), 60)
        await pilot.pause()
        loaded = time.perf_counter() - t0
        # the time of each frame the app hands to its (headless) driver: the repaint
        stamps: list[float] = []
        original = app._display

        def spy(screen, renderable) -> None:  # type: ignore[no-untyped-def]
            if renderable is not None:
                stamps.append(time.perf_counter())
            original(screen, renderable)

        app._display = spy  # type: ignore[method-assign]
        lat = []
        for i in range(presses):
            key = "pagedown" if i % 10 == 9 else "down"
            t = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()  # the test driver's own idle waits come after the frame; they are not counted
            after = [s for s in stamps if s > t]
            if after:
                lat.append(after[0] - t)
        rows = table_w.row_count
    return first, loaded, lat, rows


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench sessions_screen", description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=5000)
    ap.add_argument("--presses", type=int, default=60)
    ap.add_argument("--dir", type=Path)
    a = ap.parse_args(argv)
    from djtui.config import load_config
    from djtui.devserver import PrivateServer

    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-sess-screen-"))
    server = PrivateServer(work / "server")
    server.start()
    try:
        cfg_path, _ = build(work / "lab", sessions=a.sessions, files=8, server=server)
        cfg = load_config(cfg_path)
        asyncio.run(measure(cfg, 5))  # warm the page cache and imports
        first, loaded, lat, rows = asyncio.run(measure(cfg, a.presses))
    finally:
        server.stop()
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    med = statistics.median(lat) * 1000
    p90 = sorted(lat)[int(len(lat) * 0.9)] * 1000
    print(table([
        ("what", "value"),
        ("rows in the table", str(rows)),
        ("first rows visible (app start -> painted rows)", f"{first:.2f} s"),
        ("all rows loaded and painted", f"{loaded:.2f} s"),
        ("scroll keypress -> repaint, median", f"{med:.1f} ms"),
        ("scroll keypress -> repaint, p90", f"{p90:.1f} ms"),
    ]))
    print(f"\ntargets: first rows < 1 s: {'met' if first < 1 else 'NOT met'}; "
          f"median < 50 ms: {'met' if med < 50 else 'NOT met'}")
    return 0
