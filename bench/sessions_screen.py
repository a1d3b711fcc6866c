"""The Sessions screen with 5,000 rows: time to first rows, and keypress-to-repaint while scrolling.

Runs the real app headless (Textual's test driver) against a generated lab of 5,000 sessions x 8
files with its database rows: first rows = from the app's start until the first frame the app hands
to its driver that shows a row (its date and participant in the frame's text), the median of a few
app starts; scrolling = `down`/`pagedown` presses, each timed from the key until the next frame the
app produces (a hook on App._display; the test driver's own idle waits are not counted), reported as
median, p99 and maximum, with the presses that produced no frame counted.

    python -m bench sessions_screen [--sessions 5000] [--presses 60] [--runs 5]
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


def frame_text(app, renderable) -> str:  # type: ignore[no-untyped-def]
    """The characters of one frame the app hands to its (headless) driver."""
    from textual._compositor import CompositorUpdate

    if isinstance(renderable, CompositorUpdate):
        return renderable.render_segments(app.console)
    return "".join(seg.text for seg in app.console.render(renderable))


async def measure(cfg, presses: int) -> tuple[float, float, list[float], int, int]:
    from textual.widgets import DataTable

    from djtui.tui.app import DjtuiApp

    t0 = time.perf_counter()
    app = DjtuiApp(config=cfg)
    # the time of each frame the app hands to its (headless) driver, and of the first one that shows a row
    stamps: list[float] = []
    first_rows: list[float] = []
    original = app._display

    def spy(screen, renderable) -> None:  # type: ignore[no-untyped-def]
        if renderable is not None:
            now = time.perf_counter()
            stamps.append(now)
            if not first_rows:
                try:
                    table_w = app.screen.query_one(DataTable)
                except Exception:
                    table_w = None
                if table_w is not None and table_w.row_count:
                    cells = table_w.get_row_at(0)
                    text = frame_text(app, renderable)
                    if str(cells[1]) in text and str(cells[2]) in text:  # its date and participant are on screen
                        first_rows.append(now)
        original(screen, renderable)

    app._display = spy  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        table_w = screen.query_one(DataTable)
        deadline = time.perf_counter() + 120
        while not first_rows:
            if time.perf_counter() > deadline:
                raise TimeoutError("no frame showed a row within 120 s")
            await asyncio.sleep(0.005)
        first = first_rows[0] - t0  # the first frame that shows rows
        await asyncio.wait_for(screen.loaded.wait(), 60)
        await pilot.pause()
        loaded = time.perf_counter() - t0
        lat = []
        no_frame = 0
        for i in range(presses):
            key = "pagedown" if i % 10 == 9 else "down"
            t = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()  # the test driver's own idle waits come after the frame; they are not counted
            end = time.perf_counter() + 1.0
            while not (stamps and stamps[-1] > t) and time.perf_counter() < end:
                await asyncio.sleep(0.005)
            after = next((s for s in stamps if s > t), None)
            if after is None:
                no_frame += 1
            else:
                lat.append(after - t)
        rows = table_w.row_count
    return first, loaded, lat, rows, no_frame


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench sessions_screen", description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=5000)
    ap.add_argument("--presses", type=int, default=60)
    ap.add_argument("--runs", type=int, default=5, help="measured app starts (after one warm-up)")
    ap.add_argument("--dir", type=Path)
    a = ap.parse_args(argv)
    from djtui.config import load_config
    from djtui.services.servers.mariadb import PrivateServer

    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-sess-screen-"))
    server = PrivateServer(work / "server")
    server.start()
    try:
        cfg_path, _ = build(work / "lab", sessions=a.sessions, files=8, server=server)
        cfg = load_config(cfg_path)
        asyncio.run(measure(cfg, 5))  # warm the page cache and imports
        firsts = []
        for _ in range(a.runs):  # first rows vary run to run on a shared machine: the median of a few
            first, loaded, lat, rows, no_frame = asyncio.run(measure(cfg, a.presses))
            firsts.append(first)
    finally:
        server.stop()
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    first = statistics.median(firsts)
    ms = sorted(x * 1000 for x in lat)
    med = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, -(-len(ms) * 99 // 100) - 1)]
    print(table([
        ("what", "value"),
        ("rows in the table", str(rows)),
        (f"first rows on screen (app start -> first frame showing a row), median of {a.runs}",
         f"{first:.2f} s ({', '.join(f'{f:.2f}' for f in firsts)})"),
        ("all rows loaded and painted (last run)", f"{loaded:.2f} s"),
        ("scroll keypress -> repaint, median", f"{med:.1f} ms"),
        ("scroll keypress -> repaint, p99", f"{p99:.1f} ms"),
        ("scroll keypress -> repaint, max", f"{ms[-1]:.1f} ms"),
        ("presses without a frame (within 1 s)", str(no_frame)),
    ]))
    print(f"\ntargets: first rows < 1 s: {'met' if first < 1 else 'NOT met'}; "
          f"median < 50 ms: {'met' if med < 50 else 'NOT met'}; max < 100 ms: {'met' if ms[-1] < 100 else 'NOT met'}")
    return 0
