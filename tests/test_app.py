"""The app shell: first frame without the database, header with flavor/version, screens, failures."""

from __future__ import annotations

from djtui.config import parse_config
from djtui.tui.app import SCREENS, CommandLogScreen, ConnectionErrorScreen, DjtuiApp
from djtui.tui.widgets.header import AppHeader
from djtui.tui.widgets.help import HelpScreen


def _config(server, tmp_path, extra: str = ""):
    return parse_config(
        f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
        f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
        f"state_dir: {tmp_path}/state\n{extra}")


async def test_header_shows_server_flavor_version_and_user(server, tmp_path):
    app = DjtuiApp(config=_config(server, tmp_path))
    async with app.run_test(size=(120, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        header = str(app.screen.query_one(AppHeader).render())
        assert app.ctx.server_info is not None
        assert app.ctx.server_info.flavor in header
        assert app.ctx.server_info.version in header
        assert "djadmin" in header
        assert server.password.reveal() not in header


async def test_number_keys_switch_every_screen_and_help_and_log(server, tmp_path):
    app = DjtuiApp(config=_config(server, tmp_path, "readonly: true\n"))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        for name, (key, cls) in SCREENS.items():
            app.screen.set_focus(None)  # digits typed into a focused input are text, not screen keys
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, cls), name
            header = str(app.screen.query_one(AppHeader).render())
            assert "READ-ONLY" in header[:78]  # never cut off at 80 columns, whatever the config path
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("L")
        assert isinstance(app.screen, CommandLogScreen)


async def test_unreachable_database_is_a_screen_not_a_traceback(tmp_path):
    cfg = parse_config(f"database:\n  host: 127.0.0.1\n  port: 1\n  user: nobody\n  use_datajoint_config: false\n"
                       f"state_dir: {tmp_path}/state\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ConnectionErrorScreen)
        assert "127.0.0.1:1" in app.screen.error.what
        assert app.screen.error.hint
        await pilot.press("c")
        assert not isinstance(app.screen, ConnectionErrorScreen)
        assert "unreachable" in str(app.screen.query_one(AppHeader).render())


async def test_interrupted_action_in_audit_log_is_reported(tmp_path):
    from djtui.services.audit import AuditLog
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write({"event": "intent", "id": "abc123", "action": "delete-session", "pid": 999999999})
    cfg = parse_config(f"audit_log: {tmp_path}/audit.jsonl\nstate_dir: {tmp_path}/state\n")
    notes: list[str] = []
    app = DjtuiApp(config=cfg, connect=False)
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    assert any("delete-session" in n and "abc123" in n for n in notes)


async def test_interrupted_action_names_who_acted_not_the_target(tmp_path):
    """A detail ``user=alice`` is the target of ``users add``; the notice names the actor (root), never None."""
    from djtui.services.audit import AuditLog
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write({"event": "intent", "id": "def456", "action": "users-add", "target": "alice",
               "actor": {"os_user": "opsroot", "db_user": "djadmin", "host": "acq1", "pid": 999999999},
               "details": {"user": "alice"}})
    cfg = parse_config(f"audit_log: {tmp_path}/audit.jsonl\nstate_dir: {tmp_path}/state\n")
    notes: list[str] = []
    app = DjtuiApp(config=cfg, connect=False)
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    note = next(n for n in notes if "def456" in n)
    assert "by opsroot as database user djadmin" in note and "of alice" in note
    assert "None" not in note


async def test_escape_leaves_a_text_field_so_screen_keys_work(tmp_path):
    from textual.widgets import Input

    from djtui.tui.screens.export import ExportScreen
    cfg = parse_config(f"state_dir: {tmp_path}/state\n")
    app = DjtuiApp(config=cfg, connect=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        assert isinstance(app.screen, ExportScreen)
        app.screen.query(Input).first().focus()
        await pilot.press("5")
        assert isinstance(app.screen, ExportScreen)  # typed into the field
        await pilot.press("escape")
        assert not isinstance(app.screen.focused, Input)
        await pilot.press("5")
        assert not isinstance(app.screen, ExportScreen)


async def test_header_never_cuts_no_config_file_at_80_columns(server, tmp_path):
    app = DjtuiApp(config=_config(server, tmp_path))  # parsed from text: no config file
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        for name, (key, _cls) in SCREENS.items():
            app.screen.set_focus(None)
            await pilot.press(key)
            await pilot.pause()
            header = str(app.screen.query_one(AppHeader).render()).rstrip()
            assert len(header) <= 78, name
            assert header.endswith(("(no config file)", "(no config)")), (name, header)
            assert app.ctx.server_info.version in header, name
