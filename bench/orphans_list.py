"""First paint and paging of the orphan list: the virtual OrphanList vs Textual's DataTable.

``python -m bench orphans_list [--items N] [--table-items M] [--presses 50]``: fills each widget
headless (``run_test``) and times the first frame, then each press (pagedown, with an end and a home
among them) from the key until the next frame the app hands to its driver (as bench/reliability_load.py):
median, p99 and maximum, and the presses that drew no frame. Targets (docs/RELIABILITY.md, issue 17):
first paint <= 1 s for 1,000,000 rows, every keypress < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from bench.reliability_load import Frames, percentile
from djtui.domain import stores as ds
from djtui.tui.widgets.orphans_list import OrphanList


def items(n: int) -> list[ds.OrphanItem]:
    return [ds.OrphanItem("external:lab:main", ds.UNTRACKED_OBJECT, path=f"lab/{i % 256:02x}/{i:030x}",
                          size=i % 5000, mtime=0.0) for i in range(n)]


class ListApp(App):
    def __init__(self, data: list[ds.OrphanItem]):
        super().__init__()
        self.data = data

    def compose(self) -> ComposeResult:
        yield OrphanList(id="l")


class TableApp(ListApp):
    def compose(self) -> ComposeResult:
        yield DataTable(id="l")


def keys(n: int) -> list[str]:
    out = ["pagedown"] * n
    if n > 2:
        out[n // 2], out[n // 2 + 1] = "end", "home"
    return out


async def press_each(app, pilot, n: int) -> tuple[list[float], int]:  # type: ignore[no-untyped-def]
    frames = Frames(app)
    lat = []
    for k in keys(n):
        v = await frames.press(pilot, k)
        if v is not None:
            lat.append(v)
    return lat, len(frames.no_frame)


async def run_list(data: list[ds.OrphanItem], presses: int) -> tuple[float, list[float], int]:
    app = ListApp(data)
    async with app.run_test(size=(120, 40)) as pilot:
        w = app.query_one(OrphanList)
        w.focus()
        t0 = time.perf_counter()
        w.set_items(data)
        await pilot.pause()
        first = time.perf_counter() - t0
        return (first, *await press_each(app, pilot, presses))


async def run_table(data: list[ds.OrphanItem], presses: int) -> tuple[float, list[float], int]:
    app = TableApp(data)
    async with app.run_test(size=(120, 40)) as pilot:
        w = app.query_one(DataTable)
        w.focus()
        t0 = time.perf_counter()
        w.add_columns("path", "size", "reason")
        w.add_rows([(i.path, i.size, i.reason) for i in data])
        await pilot.pause()
        first = time.perf_counter() - t0
        return (first, *await press_each(app, pilot, presses))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench orphans_list")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--table-items", type=int, default=10_000)
    ap.add_argument("--presses", type=int, default=50)
    a = ap.parse_args(argv)
    big = items(a.items)
    lf, llat, lnone = asyncio.run(run_list(big, a.presses))
    tf, tlat, tnone = asyncio.run(run_table(big[: a.table_items], a.presses))

    def ms(lat: list[float]) -> tuple[str, str, str]:
        v = sorted(x * 1000 for x in lat)
        return (f"{statistics.median(v):.1f}", f"{percentile(v, 99):.1f}", f"{v[-1]:.1f}") if v else ("-", "-", "-")

    print(f"{'widget':<22}{'items':>10}{'first paint s':>15}{'key median ms':>15}{'p99 ms':>9}{'max ms':>9}"
          f"{'no frame':>10}")
    for name, n, first, lat, none in (("OrphanList (virtual)", a.items, lf, llat, lnone),
                                      ("DataTable", a.table_items, tf, tlat, tnone)):
        print(f"{name:<22}{n:>10}{first:>15.3f}" + "".join(f"{x:>{w}}" for x, w in zip(ms(lat), (15, 9, 9),
                                                                                       strict=True)) + f"{none:>10}")
    worst = max(llat) * 1000 if llat else float("inf")
    print(f"\ntargets (OrphanList, {a.items} rows): first paint <= 1 s: {'met' if lf <= 1 else 'NOT met'} "
          f"({lf:.2f} s); every keypress < 100 ms: {'met' if worst < 100 and not lnone else 'NOT met'} "
          f"(max {worst:.1f} ms, {lnone} without a frame)")
    return 0 if lf <= 1 and worst < 100 and not lnone else 1
