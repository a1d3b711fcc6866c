"""The Sessions screen with a database that stops answering (SIGSTOP): "scanning sessions…" does not
stay for minutes; the header says why and ctrl+x ends the wait (issue 13, item 6)."""

from __future__ import annotations

import asyncio
import os
import signal

from djtui.tui.app import DjtuiApp
from djtui.tui.widgets.header import AppHeader


async def wait_for(cond, timeout: float = 20.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not (got := cond()):
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.05)
    return got


async def test_scanning_sessions_on_a_stopped_database_ends_with_one_key(lab):
    lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(lambda: app.ctx.db is not None)
        await asyncio.wait_for(screen.loaded.wait(), 20)
        summary = screen.query_one("#sess-summary")
        os.kill(lab.server.pid, signal.SIGSTOP)
        try:
            await pilot.press("r")
            await wait_for(lambda: "scanning" in str(summary.render()) or "loading" in str(summary.render()))
            await wait_for(lambda: "database not answering" in str(screen.query_one(AppHeader).render()))
            t0 = asyncio.get_running_loop().time()
            await pilot.press("ctrl+x")
            # the scan ends at once: the disks are shown, the DJ column says why it is unknown
            await wait_for(lambda: "scanning" not in str(summary.render()) and screen.loaded.is_set(), timeout=5)
            assert asyncio.get_running_loop().time() - t0 < 5
            (status,) = screen.statuses.values()
            assert "stopped waiting for the database" in status.dj.error and "cancelled" in status.dj.error
            assert "1 of 1 session" in str(summary.render())
        finally:
            os.kill(lab.server.pid, signal.SIGCONT)
        await wait_for(lambda: "not answering" not in str(screen.query_one(AppHeader).render()), timeout=15)
        await pilot.press("r")
        await asyncio.wait_for(screen.loaded.wait(), 20)
        await wait_for(lambda: "cancelled" not in str(summary.render()), timeout=20)
