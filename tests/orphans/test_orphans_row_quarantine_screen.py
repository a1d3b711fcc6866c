"""The Orphans screen's quarantine dialog says what a restore of rows will do, and R puts the rows back."""

from __future__ import annotations

import time

from orphans_lab import make_config

from djtui.domain import stores as ds
from djtui.tui.app import DjtuiApp
from djtui.tui.widgets.confirm import ConfirmTyped
from djtui.tui.widgets.orphans_list import OrphanList


async def _settle(app, pilot, until, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)
    assert until()


async def test_row_quarantine_dialog_names_the_restore_and_r_restores(server, tmp_path, legacy_lab, admin_conn):
    cfg = make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n")
    src = f"external:{legacy_lab.schema}:main"
    unused = legacy_lab.hashes["unused"]

    def row() -> tuple | None:
        with admin_conn.cursor() as cur:
            cur.execute(f"SELECT * FROM `{legacy_lab.schema}`.`~external_main` WHERE hash = %s", (unused.bytes,))
            return cur.fetchone()

    before = row()
    assert before is not None
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("3")
        screen = app.screen
        await _settle(app, pilot, lambda: src in screen.results and not screen.scanning)
        screen.show_source(src)
        await pilot.pause()
        listing = screen.query_one(OrphanList)
        listing.focus()
        listing.action_jump(next(n for n, i in enumerate(listing.items) if i.reason == ds.UNUSED_ROW))
        await pilot.press("space")
        await pilot.press("Q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmTyped)
        text = " ".join(app.screen.lines)
        assert "1 row(s) of " in text and "will be deleted" in text
        assert "rows are saved in the batch and `djtui orphans restore` puts them back" in text
        await pilot.press(*"QUARANTINE", "enter")
        await _settle(app, pilot, lambda: row() is None)
        await _settle(app, pilot, lambda: screen.query_one("#batches").row_count == 1)
        await pilot.press("z")
        await pilot.pause()
        screen.query_one("#batches").focus()
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmTyped)
        assert "row" in " ".join(app.screen.lines)
        await pilot.press(*"RESTORE", "enter")
        await _settle(app, pilot, lambda: row() is not None)
        assert row() == before
