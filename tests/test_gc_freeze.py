"""Long-lived rows stay out of the cyclic collector's way (issue 17: 0.4-0.8 s full collections in keypresses).

With 50,000 sessions or a million orphan rows loaded, each full collection walked them all and freed nothing;
one landing in a keypress made it take 600 ms. After a load the rows are frozen (gc.freeze), and a reload
unfreezes the previous load first so what it left behind can be collected.
"""

from __future__ import annotations

import gc

from textual.app import App, ComposeResult

from djtui.domain import stores as ds
from djtui.tui.widgets.orphans_list import OrphanList


class ListApp(App):
    def compose(self) -> ComposeResult:
        yield OrphanList(id="l")


def _items(n: int, tag: str) -> list[ds.OrphanItem]:
    return [ds.OrphanItem("external:lab:main", ds.UNTRACKED_OBJECT, path=f"{tag}/{i:030x}", size=i, mtime=0.0)
            for i in range(n)]


async def test_orphan_rows_are_frozen_after_a_load_and_unfrozen_by_the_next() -> None:
    gc.unfreeze()
    try:
        app = ListApp()
        async with app.run_test(size=(100, 20)) as pilot:
            w = app.query_one(OrphanList)
            first = _items(20_000, "a")
            w.set_items(first)
            await pilot.pause()
            assert gc.get_freeze_count() >= 20_000, "the loaded rows are still walked by every full collection"
            assert not gc.is_tracked(first) or gc.get_freeze_count() > len(first)
            del first
            # a second load: the first one's rows are no longer frozen (they would leak if they were cyclic)
            second = _items(5_000, "b")
            w.set_items(second)
            await pilot.pause()
            assert gc.get_freeze_count() >= 5_000
            await pilot.press("down", "pagedown", "end")
            assert w.cursor == 4_999
    finally:
        gc.unfreeze()
