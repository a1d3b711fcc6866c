"""The app with a database that stops answering (SIGSTOP): the header says so, the footer offers
one key that ends the wait on every screen, and the screen shows why it stopped (issue 13, item 6);
on MariaDB and on PostgreSQL (issue 15: its postmaster and backends are all stopped)."""

from __future__ import annotations

import time

from djtui.config import parse_config
from djtui.tui.app import DjtuiApp
from djtui.tui.widgets.header import AppHeader
from tests.reliability.test_terminal import screen_text
from tests.test_db_not_answering import stopped


def _config(server, tmp_path, limit: int = 120, connect_timeout: int = 5):
    backend = f"  backend: postgresql\n  name: {server.dbname}\n" if server.backend == "postgresql" else ""
    return parse_config(
        f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
        f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n{backend}"
        f"  connect_timeout: {connect_timeout}\n"
        f"  statement_timeout_s: {limit}\nstate_dir: {tmp_path}/state\naudit_log: {tmp_path}/audit.jsonl\n")


async def until(pilot, what, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


def header(app) -> str:
    return str(app.screen.query_one(AppHeader).render())


async def test_stopped_database_is_named_in_the_header_and_one_key_ends_the_wait(db_server, tmp_path):
    from djtui.tui.screens.accounts import AccountsScreen

    server = db_server
    app = DjtuiApp(config=_config(server, tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.ctx.db is not None)
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, AccountsScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Cancel wait" not in screen_text(app)  # nothing waits: not offered
        summary = screen.query_one("#acct-summary")
        assert "Cannot read" not in str(summary.render())
        with stopped(server):
            await pilot.press("r")
            await until(pilot, lambda: "database not answering" in header(app))
            assert "Cancel wait" in screen_text(app)
            assert "^x" in screen_text(app) or "ctrl+x" in screen_text(app)
            t0 = time.monotonic()
            await pilot.press("ctrl+x")
            text = await until(pilot, lambda: "Cannot read accounts" in str(summary.render())
                               and str(summary.render()), timeout=5)
            assert time.monotonic() - t0 < 5
            assert "cancelled" in text
            await pilot.press("r")  # still stopped: the new call fails at once instead of waiting again
            await pilot.pause(0.5)
            text = await until(pilot, lambda: "Cannot read accounts" in str(summary.render())
                               and str(summary.render()), timeout=5)
            assert "cancelled" in text
            assert "database not answering" in header(app)  # still true
        # answering again: the app's own probe notices, the header and the footer calm down
        await until(pilot, lambda: "not answering" not in header(app), timeout=15)
        await until(pilot, lambda: "Cancel wait" not in screen_text(app), timeout=5)
        await pilot.press("r")
        await until(pilot, lambda: "Cannot read" not in str(summary.render()) and "accounts" in str(summary.render()))


async def test_connecting_to_a_stopped_database_can_be_cancelled(db_server, tmp_path):
    from djtui.tui.widgets.connection_error import ConnectionErrorScreen

    # libpq gives up a connect at connect_timeout (5 s by default, before the app's probe would name
    # the wait); a longer one lets the header say so on PostgreSQL as on MariaDB (which waits for the
    # server's greeting up to the statement limit)
    with stopped(db_server):
        app = DjtuiApp(config=_config(db_server, tmp_path, connect_timeout=60))
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: "database not answering" in header(app))
            assert app.ctx.db is None
            t0 = time.monotonic()
            await pilot.press("ctrl+x")
            await until(pilot, lambda: isinstance(app.screen, ConnectionErrorScreen), timeout=5)
            assert time.monotonic() - t0 < 3
            assert "cancelled" in app.screen.error.what
