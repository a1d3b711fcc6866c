"""Pilot tests: the Sessions and Transfers screens against the real server, rsync and files."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable, Input

from djtui.tui.app import DjtuiApp
from djtui.tui.screens.status import SessionsScreen
from djtui.tui.screens.transfers import COLUMNS as TRANSFER_COLUMNS
from djtui.tui.screens.transfers import TransfersScreen
from djtui.tui.widgets.confirm import ConfirmTyped
from djtui.tui.widgets.session_detail import SessionDetail


async def wait_for(cond, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.05)


async def loaded(app: DjtuiApp, pilot) -> SessionsScreen:
    screen = app.screen
    assert isinstance(screen, SessionsScreen)
    await wait_for(lambda: app.ctx.db is not None)
    await asyncio.wait_for(screen.loaded.wait(), 20)
    await pilot.pause()
    return screen


def cell_text(table: DataTable, row: int, col: int) -> str:
    return str(table.get_row_at(row)[col])


def job_cell(xfer: DataTable, row: int, column: str) -> str:
    """A Transfers cell by its column's title (the columns' order is the screen's to choose)."""
    return str(xfer.get_row_at(row)[TRANSFER_COLUMNS.index(column)])


async def test_table_marks_filter_sort_select_and_detail(lab):
    lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    lab.make_session("p002", "20250105")
    lab.make_session("p003", "20250106")
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(app, pilot)
        table = screen.query_one(DataTable)
        assert table.row_count == 3
        assert [cell_text(table, i, 2) for i in range(3)] == ["p001", "p002", "p003"]
        assert cell_text(table, 0, 5) == "✓" and cell_text(table, 1, 5) == "✗"
        assert table.get_row_at(0)[5].style == "bold green"
        await pilot.press("slash")
        await pilot.press(*"p002")
        assert table.row_count == 1 and cell_text(table, 0, 2) == "p002"
        await pilot.press("enter")  # back to the table
        await pilot.press("escape")
        assert table.row_count == 3
        await pilot.press("o")  # sort by participant
        assert screen.sort_by == "Participant"
        table.move_cursor(row=0)
        await pilot.press("space")
        assert screen.selected == {"p001|20250104"} and cell_text(table, 0, 0) == "●"
        await pilot.press("up", "enter")
        detail = str(screen.query_one(SessionDetail).render())
        assert "p001 20250104" in detail and "no backup" in detail
        await pilot.press("down", "down")
        detail = str(screen.query_one(SessionDetail).render())
        assert "p003" in detail and "missing Subject" in detail
        # date range filter
        await pilot.click("#sess-start")
        screen.query_one("#sess-start", Input).value = "20250105"
        await pilot.press("enter")
        await asyncio.wait_for(screen.loaded.wait(), 20)
        await pilot.pause()
        await wait_for(lambda: table.row_count == 2)


async def test_sync_from_sessions_shows_in_transfers_and_delete_with_typed_confirmation(lab):
    src = lab.make_session("p001", "20250104", size=50_000)
    lab.import_session("p001", "20250104")
    other = lab.make_session("p002", "20250104")
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(app, pilot)
        table = screen.query_one(DataTable)
        # delete of an unverified session is refused with the reason, no modal
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        await pilot.press("d")
        await wait_for(lambda: any("refused" in n for n in notes))
        assert not isinstance(app.screen, ConfirmTyped) and src.exists()
        assert any("no backup" in n for n in notes)
        await pilot.press("s")
        await pilot.press("2")
        assert isinstance(app.screen, TransfersScreen)
        xfer = app.screen.query_one(DataTable)
        await wait_for(lambda: xfer.row_count == 1 and "done" in job_cell(xfer, 0, "State"))
        assert "verified" in job_cell(xfer, 0, "Current file / result")
        await pilot.press("1")
        await wait_for(lambda: cell_text(table, 0, 8) == "✓")
        await pilot.press("d")
        await wait_for(lambda: isinstance(app.screen, ConfirmTyped))
        modal = app.screen
        assert "will be deleted" in "\n".join(modal.lines) and "Preserved" in "\n".join(modal.lines)
        await pilot.press(*"DELET", "enter")  # wrong text: nothing happens
        assert isinstance(app.screen, ConfirmTyped) and src.exists()
        await pilot.press("E", "enter")
        await wait_for(lambda: not src.exists() or any("deleted" in n or "cancelled" in n for n in notes))
        assert not src.exists(), notes
        # the session still exists on the backup: its row stays with its new state (it vanished until `r`)
        await wait_for(lambda: "not local" in cell_text(table, 0, 4))
        assert table.row_count == 2 and cell_text(table, 0, 2) == "p001" and cell_text(table, 0, 6) == "✓"
        assert other.exists()
        entries = app.ctx.audit.entries()
        assert [e["event"] for e in entries] == ["intent", "outcome"]


async def test_readonly_refuses_sync_and_delete(lab):
    src = lab.make_session("p001", "20250104")
    app = DjtuiApp(config=lab.config, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        for key in ("s", "d", "D"):
            await pilot.press(key)
        await pilot.pause()
        assert len([n for n in notes if "read-only" in n]) == 3
        assert not lab.dest_dir("p001", "20250104").exists() and src.exists()


async def test_bulk_delete_and_cancel_in_transfers(lab):
    for pid in ("p001", "p002"):
        lab.make_session(pid, "20250104")
        lab.import_session(pid, "20250104")
    lab.make_session("p003", "20250104", files=1, size=40_000_000)
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(app, pilot)
        table = screen.query_one(DataTable)
        await pilot.press("space", "space", "s")
        await pilot.press("2")
        xfer = app.screen.query_one(DataTable)
        await wait_for(lambda: xfer.row_count == 2 and all("done" in job_cell(xfer, i, "State") for i in range(2)))
        await pilot.press("1")
        await wait_for(lambda: cell_text(table, 0, 8) == "✓" and cell_text(table, 1, 8) == "✓")
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, ConfirmTyped))
        assert "2 sessions" in app.screen.lines[0] and "1 not safe" in app.screen.lines[0]
        await pilot.press(*"DELETE ALL", "enter")
        # the deleted rows stay with their new state: their backup holds them (they vanished until `r`)
        await wait_for(lambda: all("not local" in cell_text(table, i, 4) for i in (0, 1)))
        assert table.row_count == 3 and cell_text(table, 2, 2) == "p003" and "not local" not in cell_text(table, 2, 4)
        assert cell_text(table, 0, 6) == cell_text(table, 1, 6) == "✓"
        assert not (lab.source / "p001" / "20250104").exists()
        assert (lab.source / "p003" / "20250104").exists()
        # a big sync can be cancelled from the Transfers screen
        await pilot.press("s", "2")
        await wait_for(lambda: xfer.row_count == 3)
        await pilot.press("end", "c")
        await wait_for(lambda: any(job_cell(xfer, i, "State") in ("cancelled", "done") for i in range(2, 3)))


async def test_without_database_the_disks_still_show(lab):
    from djtui.config import parse_config
    lab.make_session("p001", "20250104")
    text = lab.config_path.read_text().replace(f"port: {lab.server.port}", "port: 1")
    app = DjtuiApp(config=parse_config(text))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("c")  # continue without the database
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        await asyncio.wait_for(screen.loaded.wait(), 20)
        table = screen.query_one(DataTable)
        assert table.row_count == 1 and cell_text(table, 0, 5) == "✗"
        assert "not connected" in screen.statuses["p001|20250104"].dj.error


def screen_text(app: DjtuiApp) -> str:
    """The characters on screen, row by row, read from Textual's own screenshot."""
    import html
    import re

    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', app.export_screenshot()):
        text = html.unescape(m.group(3)).replace("\xa0", " ")
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), text))
    return "\n".join("".join(t for _, t in sorted(v)) for _, v in sorted(rows.items()))


async def test_a_reversed_date_range_is_an_error_like_the_cli(lab):
    lab.make_session("p001", "20250104")
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        notes: list[tuple[str, str]] = []
        app.notify = lambda message, **kw: notes.append((message, kw.get("severity", "")))  # type: ignore
        screen.query_one("#sess-start", Input).value = "20250201"
        screen.query_one("#sess-end", Input).value = "20250101"
        screen.query_one("#sess-end", Input).focus()
        await pilot.press("enter")
        await asyncio.wait_for(screen.loaded.wait(), 20)
        await pilot.pause()
        assert any("20250201 is after end date 20250101" in m and "swap them" in m and sev == "error"
                   for m, sev in notes), notes
        summary = str(screen.query_one("#sess-summary").render())
        assert "after end date" in summary, summary


async def test_a_delete_refused_at_the_moment_of_action_refreshes_the_row(lab):
    src = lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(app, pilot)
        table = screen.query_one(DataTable)
        await pilot.press("s")
        await wait_for(lambda: cell_text(table, 0, 8) == "✓")
        before = sorted(p.name for p in src.iterdir())
        videos = int(cell_text(table, 0, 3))
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        await pilot.press("d")
        await wait_for(lambda: isinstance(app.screen, ConfirmTyped))
        (src / "late_cam9.mp4").write_bytes(b"late")  # arrives while the operator types
        await pilot.press(*"DELETE", "enter")
        await wait_for(lambda: any("refused" in n for n in notes))
        assert sorted(p.name for p in src.iterdir()) == sorted([*before, "late_cam9.mp4"])
        await wait_for(lambda: cell_text(table, 0, 8) == "✗")
        assert int(cell_text(table, 0, 3)) == videos + 1
        assert "0 safe" in str(screen.query_one("#sess-summary").render())


async def test_transfers_show_100_percent_and_no_eta_when_done(lab):
    lab.make_session("p001", "20250104", files=1, size=3_000_000)
    # slow enough that the row is first drawn with a one- or two-digit percentage
    lab.config_path.write_text(lab.config_path.read_text().replace('flags: "-a"', 'flags: "-a --bwlimit=2000"'))
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)
        await pilot.press("s", "2")
        xfer = app.screen.query_one(DataTable)
        await wait_for(lambda: xfer.row_count == 1 and job_cell(xfer, 0, "%") not in ("", "100%"))
        await wait_for(lambda: xfer.row_count == 1 and "done" in job_cell(xfer, 0, "State"))
        await pilot.pause(0.5)
        assert job_cell(xfer, 0, "%") == "100%"
        text = screen_text(app)
        row = next(line for line in text.splitlines() if "sync p001" in line)
        assert " 100% " in row and " done " in row, text  # not cut to "1" or "10"
        title = str(app.screen.query_one("#xfer-title").render())
        assert "done" in title and "ETA" not in title and "/s" not in title, title
        assert app.screen.query_one("#xfer-bar").percentage == 1.0
