"""The Orphans screen on PostgreSQL (issue 15): a table's orphan rows scanned, one quarantined after the
typed word, then put back with R, the same service calls as the CLI's (Pilot)."""

from __future__ import annotations

import time

import pytest
from test_pg_orphans import pg_config_text, sql

from djtui.config import parse_config
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


@pytest.fixture
def lab(pg_server, tmp_path):
    import uuid
    s = f"orphs_{uuid.uuid4().hex[:8]}"
    conn = pg_server.connect()
    sql(conn, f'CREATE SCHEMA "{s}"', f'CREATE TABLE "{s}".subject (subject_id int PRIMARY KEY, note text)',
        f'CREATE TABLE "{s}".session (subject_id int REFERENCES "{s}".subject, session_id int, '
        "PRIMARY KEY (subject_id, session_id))",
        f"INSERT INTO \"{s}\".subject VALUES (1, 'kept'), (2, 'it''s an orphan'), (3, 'kept'), (4, 'kept')",
        f'INSERT INTO "{s}".session VALUES (1, 1), (3, 1), (4, 2)')
    yield s, conn
    sql(conn, f'DROP SCHEMA "{s}" CASCADE')
    conn.close()


async def test_screen_quarantines_an_orphan_row_and_r_restores_it(pg_server, tmp_path, lab):
    s, conn = lab
    cfg = parse_config(pg_config_text(pg_server, tmp_path, f"orphans:\n  tables: [{s}.subject]\n  max_share: 0.5\n"))
    src = f"table:{s}.subject"

    def row() -> tuple | None:
        with conn.cursor() as cur:
            cur.execute(f'SELECT subject_id, note FROM "{s}".subject WHERE subject_id = 2')
            return cur.fetchone()

    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("3")
        screen = app.screen
        await _settle(app, pilot, lambda: src in screen.results and not screen.scanning)
        assert [i.key for i in screen.results[src].items] == [{"subject_id": 2}]
        screen.show_source(src)
        await pilot.pause()
        listing = screen.query_one(OrphanList)
        listing.focus()
        listing.action_jump(next(n for n, i in enumerate(listing.items) if i.reason == ds.ORPHAN_ROW))
        await pilot.press("space")
        await pilot.press("Q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmTyped)
        text = " ".join(app.screen.lines)
        assert "1 row(s) of " in text and "will be deleted" in text
        await pilot.press(*"QUARANTINE", "enter")
        await _settle(app, pilot, lambda: row() is None)
        await _settle(app, pilot, lambda: screen.query_one("#batches").row_count == 1)
        await pilot.press("z")
        await pilot.pause()
        screen.query_one("#batches").focus()
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmTyped)
        await pilot.press(*"RESTORE", "enter")
        await _settle(app, pilot, lambda: row() is not None)
    assert row() == (2, "it's an orphan")
