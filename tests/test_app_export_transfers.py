"""Export verify from the Export screen, and retrying a failed or cancelled transfer (issue 13, item 11)."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from textual.widgets import DataTable, Static

from djtui.config import parse_config
from djtui.domain.cascade import Leaf
from djtui.domain.sessions import SessionKey, parse_date
from djtui.services.export import export_sql, load_graph
from djtui.tui.app import DjtuiApp
from djtui.tui.screens.export import ExportScreen
from djtui.tui.screens.transfers import TransfersScreen
from tests.export import randgraph
from tests.export.conftest import config_text, db, schema  # noqa: F401  (fixtures)
from tests.export.test_cascade import _fixed_schema
from tests.test_app_quit import DATE, slow_lab


async def until(pilot, what, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


async def test_export_screen_verifies_the_last_export_with_the_cli_service(server, admin_conn, schema, db,  # noqa: F811
                                                                        tmp_path):
    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    out = tmp_path / "exports" / "export-1"
    export_sql(db, load_graph(db, [schema]), [Leaf(f"{schema}.session", "c1 = 1")], out)
    cfg = parse_config(config_text(server, tmp_path) +
                       f"export:\n  schema_prefixes: [{schema}]\n  out_dir: {tmp_path}/exports\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.ctx.db is not None)
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, ExportScreen)
        await app.workers.wait_for_complete()
        screen.set_focus(None)
        summary = screen.query_one("#export-summary", Static)
        await pilot.press("v")
        text = await until(pilot, lambda: "verified" in str(summary.render()) and str(summary.render()))
        assert text.startswith("✓ verified export-1: 4 table(s) match the manifest"), text

        manifest = json.loads((out / "manifest.json").read_text())  # a table the file does not hold
        manifest["tables"][0]["rows"] += 1
        (out / "manifest.json").write_text(json.dumps(manifest))
        await pilot.press("v")
        text = await until(pilot, lambda: "differ" in str(summary.render()) and str(summary.render()))
        assert f"1 of 4 table(s) differ from the manifest: {manifest['tables'][0]['table']}" in text


@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")
async def test_transfers_retry_requeues_a_failed_or_cancelled_job(tmp_path):
    slow_lab(tmp_path, ("p001",))  # p001: 3 MB at 300 KB/s, the sources and the dest folder
    cfg = parse_config(f"backup:\n  source:\n    base_path: {tmp_path}/source\n"
                        f"    path_structure: \"{{participant_id}}/{{session_date}}\"\n"
                        f"  destinations:\n    - name: net\n      base_path: {tmp_path}/dest\n"
                        f"      path_structure: \"{{session_date}}/{{participant_id}}\"\n      verify_mount: false\n"
                        f"  filters:\n    participant_prefixes: [\"p\"]\n"
                        f"  verification:\n    verify_after_sync: false\n"
                        f"state_dir: {tmp_path}/state\n")
    app = DjtuiApp(config=cfg, connect=False)
    async with app.run_test(size=(120, 30)) as pilot:
        queue = app.ctx.job_queue()
        missing = queue.submit("sync", SessionKey("p009", parse_date(DATE)), "net")  # no such folder: fails
        await until(pilot, lambda: not missing.active)
        assert missing.state == "failed"
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, TransfersScreen)
        await pilot.pause(0.5)
        table = screen.query_one(DataTable)
        table.move_cursor(row=0)
        (tmp_path / "source" / "p009" / DATE).mkdir(parents=True)  # fixed: the folder is there now
        (tmp_path / "source" / "p009" / DATE / "cam0.mp4").write_bytes(b"x" * 1000)
        await pilot.press("t")
        await until(pilot, lambda: len(queue.jobs) == 2 and not queue.jobs[1].active)
        again = queue.jobs[1]
        assert (again.kind, again.key, again.destination, again.retry_of) == ("sync", missing.key, "net", missing.id)
        assert again.state == "done", again.message
        assert (tmp_path / "dest" / DATE / "p009" / "cam0.mp4").stat().st_size == 1000
        assert f"retry of #{missing.id}" in again.label

        table.move_cursor(row=1)
        await pilot.press("t")  # a job that succeeded is not retried
        await pilot.pause(0.3)
        assert len(queue.jobs) == 2
        assert any("only a failed or cancelled job can be retried" in n.message for n in app._notifications)

        # a cancelled one (cancelled while queued behind a running one) is retried too
        running = queue.submit("sync", SessionKey("p001", parse_date(DATE)), "net")
        waiting = queue.submit("sync", SessionKey("p009", parse_date(DATE)), "net", dry_run=True)
        queue.cancel(waiting)
        queue.cancel(running)
        await until(pilot, lambda: not running.active)
        await pilot.pause(0.5)
        table.move_cursor(row=3)
        await pilot.press("t")
        await until(pilot, lambda: len(queue.jobs) == 5 and not queue.jobs[4].active)
        assert queue.jobs[4].retry_of == waiting.id and queue.jobs[4].dry_run and queue.jobs[4].state == "done"
