"""First paint and paging of the orphan list: the virtual OrphanList vs Textual's DataTable.

``python -m bench orphans_list [--items N] [--table-items M]``: fills each widget
headless (``run_test``) and times the first frame and 50 page-downs.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from textual.app import App, ComposeResult
from textual.widgets import DataTable

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


async def run_list(data: list[ds.OrphanItem]) -> tuple[float, float]:
    app = ListApp(data)
    async with app.run_test(size=(120, 40)) as pilot:
        w = app.query_one(OrphanList)
        w.focus()
        t0 = time.perf_counter()
        w.set_items(data)
        await pilot.pause()
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        for _ in range(50):
            await pilot.press("pagedown")
        await pilot.pause()
        return first, time.perf_counter() - t1


async def run_table(data: list[ds.OrphanItem]) -> tuple[float, float]:
    app = TableApp(data)
    async with app.run_test(size=(120, 40)) as pilot:
        w = app.query_one(DataTable)
        w.focus()
        t0 = time.perf_counter()
        w.add_columns("path", "size", "reason")
        w.add_rows([(i.path, i.size, i.reason) for i in data])
        await pilot.pause()
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        for _ in range(50):
            await pilot.press("pagedown")
        await pilot.pause()
        return first, time.perf_counter() - t1


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench orphans_list")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--table-items", type=int, default=10_000)
    a = ap.parse_args(argv)
    big = items(a.items)
    lf, lp = asyncio.run(run_list(big))
    tf, tp = asyncio.run(run_table(big[: a.table_items]))
    print(f"{'widget':<34}{'items':>10}{'first paint s':>15}{'50 page-downs s':>17}")
    print(f"{'OrphanList (virtual)':<34}{a.items:>10}{lf:>15.3f}{lp:>17.3f}")
    print(f"{'DataTable':<34}{a.table_items:>10}{tf:>15.3f}{tp:>17.3f}")
    return 0
