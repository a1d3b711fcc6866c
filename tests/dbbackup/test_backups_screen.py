"""The Backups screen with the Pilot: run a backup, see it listed, restore-verify it."""

from __future__ import annotations

import time

from djtui.config import parse_config
from djtui.tui.app import DjtuiApp
from djtui.tui.screens.backups import BackupsScreen


def _cfg(server, tmp_path, readonly: bool = False):
    return parse_config(f"""
database:
  host: 127.0.0.1
  port: {server.port}
  user: djadmin
  password: "{server.password.reveal()}"
dbbackup:
  out_dir: "{tmp_path / 'backups'}"
audit_log: "{tmp_path / 'audit.jsonl'}"
state_dir: "{tmp_path / 'state'}"
readonly: {str(readonly).lower()}
""")


async def _settle(app, pilot, until, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        await pilot.pause(0.1)
    assert until()


def _text(screen, wid: str) -> str:
    return str(screen.query_one(wid).render())


async def test_run_then_verify(server, lab_schema, tmp_path):
    app = DjtuiApp(config=_cfg(server, tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, BackupsScreen)
        await _settle(app, pilot, lambda: "no backups yet" in _text(screen, "#backups-status"))
        await pilot.press("b")
        await _settle(app, pilot, lambda: "Backup done" in _text(screen, "#backups-last"))
        await _settle(app, pilot, lambda: screen.query_one("#backups-table").row_count == 1)
        (info,) = screen.backups
        assert (info.path / "manifest.json").is_file() and info.verified is None
        screen.query_one("#backups-table").focus()
        await pilot.press("v")
        await _settle(app, pilot, lambda: "Verified" in _text(screen, "#backups-last"))
        await _settle(app, pilot, lambda: bool(screen.backups) and screen.backups[0].verified is not None)
        assert (info.path / "verified.json").is_file()
        cells = screen.query_one("#backups-table").get_row_at(0)
        assert cells[0] == info.path.name and str(cells[4]).startswith("yes")


async def test_readonly_refuses_run(server, tmp_path):
    app = DjtuiApp(config=_cfg(server, tmp_path, readonly=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, BackupsScreen)
        await pilot.press("b")
        await pilot.pause(0.3)
        assert not screen.busy
        assert not (tmp_path / "backups").exists()
        assert "none in this session" in _text(screen, "#backups-last")
