"""The Sessions table built off the loop: the same rows, widths and size as DataTable.add_row gives, and the
screen's large-table path (rows built in a thread) filters, keeps the cursor and installs only the newest build."""

from __future__ import annotations

import asyncio
import gc

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from djtui.tui.app import DjtuiApp
from djtui.tui.screens import status
from djtui.tui.widgets.session_table import SessionTable, build_quietly, build_rows

COLS = ("", "Name", "Size")
ROWS = [(f"k{i}", (Text("●" if i % 3 == 0 else " "), f"name-{'x' * (i % 17)}", Text(str(i * 1000), justify="right")))
        for i in range(300)]


class Both(App):
    def compose(self) -> ComposeResult:
        yield DataTable(id="plain")
        yield SessionTable(id="built")

    def on_mount(self) -> None:
        for t in self.query(DataTable):
            for c in COLS:
                t.add_column(c, key=c)


async def test_install_matches_add_row():
    app = Both()
    async with app.run_test(size=(100, 30)) as pilot:
        plain = app.query_one("#plain", DataTable)
        built = app.query_one("#built", SessionTable)
        for k, cells in ROWS:
            plain.add_row(*cells, key=k)
        built.install(build_rows(COLS, ROWS))
        await pilot.pause()
        assert built.row_count == plain.row_count == 300
        for i in (0, 1, 150, 299):
            assert [str(c) for c in built.get_row_at(i)] == [str(c) for c in plain.get_row_at(i)]
        assert [c.get_render_width(built) for c in built.ordered_columns] == \
            [c.get_render_width(plain) for c in plain.ordered_columns]
        assert built.virtual_size == plain.virtual_size
        built.move_cursor(row=10)
        built.install(build_rows(COLS, ROWS[5:]), cursor_key="k10")  # the cursor stays on its row
        assert built.row_count == 295 and built.cursor_row == 5
        built.install(build_rows(COLS, ROWS[200:]), cursor_key="k10")  # gone: the cursor stays in range
        assert built.row_count == 100 and 0 <= built.cursor_row < 100
        built.update_cell("k250", "Size", Text("7"))
        assert str(built.get_row_at(50)[2]) == "7"


def test_build_quietly_restores_the_collector():
    assert gc.isenabled()
    assert build_quietly(lambda: gc.isenabled()) is False
    assert gc.isenabled()


async def test_large_table_filters_in_a_thread(lab, monkeypatch):
    monkeypatch.setattr(status, "INLINE_ROWS", 1)  # every rebuild takes the thread path
    for pid in ("p001", "p002", "p003"):
        lab.make_session(pid, "20250104")
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await asyncio.wait_for(screen.loaded.wait(), 20)
        await pilot.pause()
        table = screen.query_one(DataTable)
        assert table.row_count == 3
        table.move_cursor(row=1)
        await pilot.press("slash", *"p00")
        for _ in range(100):  # the build comes after the typing settles
            await asyncio.sleep(0.05)
            if screen._generation and table.row_count == 3 and screen.text_filter == "p00":
                break
        await pilot.press("2")
        for _ in range(100):
            await asyncio.sleep(0.05)
            if table.row_count == 1:
                break
        assert table.row_count == 1 and str(table.get_row_at(0)[2]) == "p002"
        assert table.cursor_row == 0 and screen._cursor_key() == "p002|20250104"
        assert [s.key.participant_id for s in screen.visible()] == ["p002"]
        gen = screen._generation
        screen.text_filter = ""  # what an older build would show: every row
        await screen.rebuild(gen - 1)  # an older build is never installed over a newer one
        assert table.row_count == 1
        screen.text_filter = "p002"
        await pilot.press("escape")
        for _ in range(100):
            await asyncio.sleep(0.05)
            if table.row_count == 3:
                break
        assert table.row_count == 3 and screen._cursor_key() == "p002|20250104"


async def test_every_column_on_screen_at_80_columns_with_a_long_participant(lab):
    long_id = "p003_with_a_long_participant_name"
    lab.make_session(long_id, "20250104")
    lab.make_session("p001", "20250104")
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await asyncio.wait_for(screen.loaded.wait(), 20)
        await pilot.pause()
        table = screen.query_one(DataTable)
        ends = sum(c.get_render_width(table) for c in table.ordered_columns)
        assert ends <= table.content_region.width, (ends, table.content_region.width)
        assert long_id in {str(table.get_row_at(i)[2]) for i in range(2)}  # the cell keeps the whole id
        await pilot.resize_terminal(160, 40)
        await pilot.pause()
        assert table.ordered_columns[2].get_render_width(table) >= len(long_id)  # room again: shown whole
