"""The Sessions screen keeps answering keys while a delete plan is built (issue 14).

Building the plan scans the whole session (for the excluded files a delete leaves in place). Here that
scan stands on a "slow mount": it answers only when the test lets it. On the event loop it would freeze
the screen (the key below would not move the cursor until the scan ended); in a worker thread the
cursor moves and help opens while the scan still waits.
"""

from __future__ import annotations

import asyncio
import threading

from textual.widgets import DataTable

from djtui.cli import main
from djtui.services import filesystem
from djtui.services.sessions.delete_plan import DeletePlan, plan_delete
from djtui.tui.app import DjtuiApp
from djtui.tui.widgets.confirm import ConfirmTyped
from tests.sessions.test_sessions_screens import loaded, wait_for


async def _safe(lab, pid: str, date: str) -> None:
    lab.make_session(pid, date)
    lab.import_session(pid, date)
    code = await asyncio.to_thread(main, ["--config", str(lab.config_path), "sync", pid, date])
    assert code == 0


async def test_sessions_screen_answers_keys_while_the_delete_plan_scans_a_slow_mount(lab, monkeypatch):
    await _safe(lab, "p001", "20250104")
    await _safe(lab, "p002", "20250105")
    started, release, done = threading.Event(), threading.Event(), threading.Event()
    real_scan = filesystem.scan

    def slow_scan(root, **kw):  # the plan's full scan of the session: a mount that takes its time
        started.set()
        release.wait(20)
        try:
            return real_scan(root, **kw)
        finally:
            done.set()

    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(app, pilot)
        table = screen.query_one(DataTable)
        await wait_for(lambda: table.row_count == 2 and str(table.get_row_at(0)[8]) == "✓")
        table.move_cursor(row=0)
        monkeypatch.setattr(filesystem, "scan", slow_scan)
        await pilot.press("d")
        await wait_for(started.is_set)
        await pilot.press("down")  # the screen answers while the scan waits on the mount
        await pilot.pause()
        assert not done.is_set(), "the scan ended before the key was handled: it ran on the event loop"
        assert table.cursor_row == 1
        assert "checking p001 20250104" in str(screen.query_one("#sess-summary").render())
        release.set()
        await wait_for(lambda: isinstance(app.screen, ConfirmTyped))
        modal = app.screen
        assert "Session p001 20250104" in modal.lines[0]  # the session under the cursor when d was pressed
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, ConfirmTyped))
        assert (lab.source / "p001" / "20250104").exists()


def test_a_plan_executes_once_and_refuses_a_second_time(lab, capsys):
    import datetime as dt

    import pytest

    from djtui.domain.sessions import SessionKey
    from djtui.errors import OperationFailed
    from djtui.services.audit import AuditLog
    from djtui.services.database import Database
    from djtui.services.sessions import SessionService

    lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    assert main(["--config", str(lab.config_path), "sync", "p001", "20250104"]) == 0
    cfg = lab.config
    svc = SessionService(cfg, Database.from_config(cfg))
    plan = plan_delete(svc, [SessionKey("p001", dt.date(2025, 1, 4))])
    assert isinstance(plan, DeletePlan) and plan.ready and not plan.bulk and plan.phrase == "DELETE"
    assert plan.to_json()["sessions"][0]["files"] == 5
    audit = AuditLog(cfg.audit_log)
    assert plan.execute(svc, audit, dry_run=True)[0].ok  # a dry run does not spend the plan
    assert (lab.source / "p001" / "20250104").exists()
    assert plan.execute(svc, audit)[0].ok
    assert not (lab.source / "p001" / "20250104").exists()
    with pytest.raises(OperationFailed, match="already executed"):
        plan.execute(svc, audit)
    capsys.readouterr()
