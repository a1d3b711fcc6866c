"""The terminal habits on the real Sessions screen (issue 16): a lab with sessions on disk and in the database."""

from __future__ import annotations

from textual.widgets import DataTable

from djtui.tui.app import DjtuiApp
from tests.sessions.test_sessions_screens import loaded


def _pids(table: DataTable) -> list[str]:
    return [str(table.get_row_at(i)[2]) for i in range(table.row_count)]


async def test_sessions_home_end_j_k_and_O_on_the_real_table(lab):
    for i in range(1, 7):
        lab.make_session(f"p00{i}", f"2025010{i}", files=1, size=10)
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(60, 24)) as pilot:  # narrower than the table: End could scroll sideways
        screen = await loaded(app, pilot)
        table = screen.query_one(DataTable)
        assert screen.focused is table
        assert table.max_scroll_x > 0
        assert _pids(table) == [f"p00{i}" for i in range(1, 7)]
        await pilot.press("end")
        assert table.cursor_row == 5 and table.scroll_x == 0
        await pilot.press("home")
        assert table.cursor_row == 0 and table.scroll_x == 0
        await pilot.press("j", "j", "k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == 5
        await pilot.press("O")  # the screen's own sort, reversed (its summary says so)
        assert screen.sort_reverse is True
        assert _pids(table) == [f"p00{i}" for i in range(6, 0, -1)]
        await pilot.press("O")
        assert screen.sort_reverse is False and _pids(table)[0] == "p001"
        await pilot.press("slash")  # Sessions' own `/`: the filter field, not the search bar
        assert not screen.query("#search-bar")
        await pilot.press(*"p00j")  # typed into the filter: j is text
        assert table.row_count == 0
