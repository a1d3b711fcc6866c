"""The Sessions screen's loaded rows are frozen out of the cyclic collector (issue 17).

With 50,000 sessions loaded, Python's full collections walked every status and table cell (0.4-0.8 s,
freeing nothing) and one landed in a keypress now and then (599 and 659 ms maxima against a 7 ms median).
"""

from __future__ import annotations

import gc

from textual.widgets import DataTable

from djtui.tui.app import DjtuiApp
from djtui.tui.screens.status import SessionsScreen
from tests.sessions.test_sessions_screens import loaded, wait_for


async def test_a_load_freezes_its_rows_and_a_reload_unfreezes_the_previous_one(lab):
    for i in range(30):
        lab.make_session(f"p{i:03d}", "20250104")
    gc.unfreeze()
    try:
        app = DjtuiApp(config=lab.config)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await loaded(app, pilot)
            assert isinstance(screen, SessionsScreen)
            assert screen.query_one(DataTable).row_count == 30
            frozen = gc.get_freeze_count()
            assert frozen > 0, "the loaded sessions are still walked by every full collection"
            statuses = list(screen.statuses.values())
            assert all(not gc.is_tracked(s) or frozen for s in statuses)
            # a reload unfreezes first (so the old rows can be collected once dropped), then freezes the new ones
            seen = []
            real_unfreeze = gc.unfreeze

            def spy() -> None:
                seen.append(gc.get_freeze_count())
                real_unfreeze()

            gc.unfreeze = spy  # type: ignore[assignment]
            try:
                await pilot.press("r")
                await wait_for(lambda: bool(seen) and screen.loaded.is_set())
            finally:
                gc.unfreeze = real_unfreeze  # type: ignore[assignment]
            assert seen and seen[0] > 0
            assert gc.get_freeze_count() > 0
            # a filter rebuilds the table's rows: the new ones are frozen too (gc.get_objects() lists only what the
            # collector still walks)
            await pilot.press("slash", "p", "0", "0")
            await wait_for(lambda: screen.query_one(DataTable).row_count == 10)
            await pilot.pause()
            table = screen.query_one(DataTable)
            cells = [table._data[k] for k in list(table._data)[:3]]
            walked = {id(o) for o in gc.get_objects()}
            assert not any(id(c) in walked for c in cells), "a filter's rows are walked by every full collection"
    finally:
        gc.unfreeze()
