"""The Transfers screen at 80 columns and under a steady refresh: ETA stays on screen while a job runs, and a
refresh leaves the table alone when no job changed (each rewrite re-measured whole columns, issue 17)."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable

from djtui.tui.app import DjtuiApp
from djtui.tui.screens.transfers import COLUMNS
from tests.sessions.test_sessions_screens import job_cell, loaded, screen_text, wait_for


async def test_eta_on_screen_at_80_columns_and_idle_refreshes_write_nothing(lab):
    lab.make_session("p001", "20250104", files=1, size=3_000_000)
    lab.config_path.write_text(lab.config_path.read_text().replace('flags: "-a"', 'flags: "-a --bwlimit=1500"'))
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)
        await pilot.press("s", "2")
        xfer = app.screen.query_one(DataTable)
        await wait_for(lambda: xfer.row_count == 1 and job_cell(xfer, 0, "ETA") not in ("", "?"))
        eta_end = sum(c.get_render_width(xfer) for c in xfer.ordered_columns[:COLUMNS.index("ETA") + 1])
        assert eta_end <= xfer.content_region.width, (eta_end, xfer.content_region.width)
        text = screen_text(app)
        header = next(line for line in text.splitlines() if " State " in line)
        assert "ETA" in header and "Rate" in header, text
        row = next(line for line in text.splitlines() if "running" in line)
        assert job_cell(xfer, 0, "ETA") in row, text
        await wait_for(lambda: "done" in job_cell(xfer, 0, "State"), timeout=60)
        await pilot.pause(0.6)
        before = xfer._update_count
        await asyncio.sleep(1.1)  # four refreshes of the screen
        assert xfer._update_count == before, "a refresh rewrote a finished job's cells"
        assert job_cell(xfer, 0, "%") == "100%" and job_cell(xfer, 0, "ETA") == ""
