"""The command log screen (L): the terminal habits of every screen, search, and a statement shown whole."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from djtui.services import commandlog
from djtui.tui.app import CommandLogScreen, DjtuiApp
from djtui.tui.widgets.search import SearchBar
from tests.test_app import _config

LONG = "SELECT " + ", ".join(f"`column_{i}`" for i in range(60)) + " FROM `lab`.`needle_table`"


async def test_command_log_moves_searches_and_shows_a_long_statement_whole(server, tmp_path):
    app = DjtuiApp(config=_config(server, tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        for i in range(30):
            commandlog.record("sql", f"SELECT {i} FROM `lab`.`filler_{i}`")
        commandlog.record("sql", LONG)
        commandlog.record("exec", ["rsync", "-a", "/src/needle_dir/", "/dst/"])
        for i in range(5):
            commandlog.record("sql", f"SELECT 'after {i}'")
        app.screen.set_focus(None)
        await pilot.press("L")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CommandLogScreen)
        table = screen.query_one(DataTable)
        assert screen.focused is table
        last = table.row_count - 1
        assert table.cursor_row == last
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("j", "j", "k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == last
        await pilot.press("home")
        assert table.cursor_row == 0

        await pilot.press("slash")
        await pilot.pause()
        assert screen.query(SearchBar)
        await pilot.press(*"needle", "enter")
        await pilot.pause()
        assert not screen.query(SearchBar)
        first = table.cursor_row
        assert "needle_table" in " ".join(map(str, table.get_row_at(first)))
        detail = str(screen.query_one("#log-detail", Static).render())
        assert "`column_59` FROM `lab`.`needle_table`" in detail  # whole, though the cell is cut
        await pilot.press("n")
        assert "needle_dir" in " ".join(map(str, table.get_row_at(table.cursor_row)))
        await pilot.press("n")
        assert table.cursor_row == first  # wraps around
        await pilot.press("N")
        assert "needle_dir" in " ".join(map(str, table.get_row_at(table.cursor_row)))
        await pilot.press("q")
        assert not isinstance(app.screen, CommandLogScreen)
