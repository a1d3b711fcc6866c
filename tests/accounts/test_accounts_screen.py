"""The Accounts screen with the Pilot, on the live private server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pymysql
import pytest
from textual.widgets import DataTable, Input, Select, Static

from djtui.config import parse_config
from djtui.services.accounts import AccountsService
from djtui.services.servers.mariadb import PrivateServer
from djtui.tui.app import DjtuiApp
from djtui.tui.screens.accounts import AccountsScreen, PasswordOnce, PlanDialog, SetRoleDialog
from djtui.tui.widgets.confirm import ConfirmTyped

from .conftest import login, unique


def _config(server: PrivateServer, tmp_path: Path, extra: str = ""):
    return parse_config(
        f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
        f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
        f"state_dir: {tmp_path}/state\n{extra}")


async def _settle(app: DjtuiApp, pilot) -> None:
    """Let loading finish; only for moments when no change dialog is waiting (that worker waits on us)."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def _until(pilot, cond: Callable[[], bool], seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


async def test_screen_lists_users_matrix_and_adds_a_user(server: PrivateServer, service: AccountsService,
                                                         tmp_path: Path, cleanup: Callable[..., None]) -> None:
    service.apply(service.plan_roles_init())
    existing = unique("scr_")
    cleanup(user=existing)
    plan, _ = service.plan_add_user(existing, "collab")
    service.apply(plan)
    new = unique("scrnew_")
    cleanup(user=new)

    app = DjtuiApp(config=_config(server, tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("5")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, AccountsScreen)
        users = screen.query_one("#acct-users", DataTable)
        row = users.get_row(f"{existing}@%")
        assert row[2] == "dj_collab" and row[3] == "✓" and row[4] == "-" and row[5] == "✓"
        matrix = screen.query_one("#acct-matrix", DataTable)
        mrow = matrix.get_row(f"{existing}@%")
        assert mrow[1] == "ALL" and mrow[2] == "R" and mrow[3] == "R"  # own, other, behavior
        await pilot.resize_terminal(160, 50)
        await pilot.pause(0.3)
        heads = [str(c.label) for c in matrix.columns.values()]
        assert heads[:4] == ["user", "own", "other", "behavior"] and "linearization" in heads  # whole
        assert "modules:" not in str(screen.query_one("#acct-matrix-label").render())
        await pilot.resize_terminal(80, 24)  # the eleven modules do not fit: abbreviated, named below
        await pilot.pause(0.3)
        heads = [str(c.label) for c in matrix.columns.values()]
        assert heads[:4] == ["user", "own", "other", "beh"] and "lin" in heads
        label = str(screen.query_one("#acct-matrix-label").render())
        assert "beh behavior" in label and "lin linearization" in label
        assert matrix.fixed_columns == 1  # the user column stays when it scrolls sideways
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.3)

        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#name", Input).value = "bad'name"
        await pilot.click("#ok")
        await pilot.pause()
        assert "not a usable user name" in str(dialog.query_one("#error", Static).render())
        name_input = dialog.query_one("#name", Input)
        name_input.value = new
        name_input.focus()
        await pilot.pause()
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, PlanDialog))
        text = str(app.screen.query_one("#plan-text", Static).render())
        assert f"CREATE USER '{new}'@'%' IDENTIFIED BY '****'" in text
        assert f"SET DEFAULT ROLE `dj_user` FOR '{new}'@'%'" in text
        await pilot.click("#apply")
        await _until(pilot, lambda: isinstance(app.screen, PasswordOnce))
        password = app.screen.password
        await pilot.press("c")  # copied with OSC 52 (Textual's copy_to_clipboard)
        assert app.clipboard == password
        await pilot.click("#close")
        await _settle(app, pilot)
        assert isinstance(app.screen, AccountsScreen)
        assert users.get_row(f"{new}@%")[2] == "dj_user"
    login(server, new, password).close()


async def test_reset_password_needs_typed_name_and_readonly_refuses(server: PrivateServer, service: AccountsService,
                                                                    tmp_path: Path,
                                                                    cleanup: Callable[..., None]) -> None:
    service.apply(service.plan_roles_init())
    name = unique("rst_")
    cleanup(user=name)
    plan, first = service.plan_add_user(name, "guest")
    service.apply(plan)
    app = DjtuiApp(config=_config(server, tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("5")
        await _settle(app, pilot)
        users = app.screen.query_one("#acct-users", DataTable)
        users.move_cursor(row=users.get_row_index(f"{name}@%"))
        await pilot.press("p")
        await _until(pilot, lambda: isinstance(app.screen, ConfirmTyped))
        await pilot.press("escape")
        await _settle(app, pilot)
        login(server, name, first).close()  # cancelled: unchanged
        await pilot.press("p")
        await _until(pilot, lambda: isinstance(app.screen, ConfirmTyped))
        app.screen.query_one(Input).value = name
        app.screen.query_one(Input).focus()
        await pilot.pause()
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, PasswordOnce))
        second = app.screen.password
        await pilot.press("escape")
        await _settle(app, pilot)
    login(server, name, second).close()
    with pytest.raises(pymysql.err.OperationalError):
        login(server, name, first)
    ro = DjtuiApp(config=_config(server, tmp_path, "readonly: true\n"))
    async with ro.run_test(size=(80, 24)) as pilot:
        await _settle(ro, pilot)
        await pilot.press("5")
        await _settle(ro, pilot)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(ro.screen, AccountsScreen)
        assert any("read-only" in n.message for n in ro._notifications)


async def _confirm(app: DjtuiApp, pilot, word: str) -> None:
    await _until(pilot, lambda: isinstance(app.screen, ConfirmTyped))
    assert app.screen.expected == word
    field = app.screen.query_one(Input)
    field.value = word
    field.focus()
    await pilot.pause()
    await pilot.press("enter")


def _cell(users: DataTable, key: str, column: int) -> str:
    return str(users.get_row(key)[column])


def _detail(app: DjtuiApp) -> str:
    return str(app.screen.query_one("#acct-detail", Static).render())


async def test_drift_diff_in_the_detail_pane_and_f_fixes_it(server: PrivateServer, service: AccountsService,
                                                            tmp_path: Path, cleanup: Callable[..., None]) -> None:
    """Issue 13.1 on the screen: a hand-made extra grant shows as ✗ with a count and a +/- diff; f fixes it."""
    service.apply(service.plan_roles_init())
    name = unique("drf_")
    cleanup(user=name, schema=name)
    plan, pw = service.plan_add_user(name, "user")
    service.apply(plan)
    other = unique("notmine_")
    cleanup(schema=other)
    admin = server.connect()
    with admin.cursor() as cur:
        cur.execute(f"GRANT ALL ON *.* TO '{name}'@'%' WITH GRANT OPTION")
        cur.execute("GRANT INSERT, DELETE ON `mocap\\_%`.* TO dj_guest")
    admin.close()
    try:
        app = DjtuiApp(config=_config(server, tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await _settle(app, pilot)
            await pilot.press("5")
            await _settle(app, pilot)
            screen = app.screen
            summary = str(screen.query_one("#acct-summary", Static).render())
            assert "no drift" not in summary
            users = screen.query_one("#acct-users", DataTable)
            assert _cell(users, f"{name}@%", 5) == "✗ 1"
            assert _cell(users, "role:dj_guest", 5) == "✗ 1"
            users.move_cursor(row=users.get_row_index("role:dj_guest"))
            await pilot.pause()
            assert "+ INSERT, DELETE ON `mocap\\_%`.*" in _detail(app)
            users.move_cursor(row=users.get_row_index(f"{name}@%"))
            await pilot.pause()
            text = _detail(app)
            assert "✗ 1 difference(s)" in text and "+ ALL PRIVILEGES ON *.* WITH GRANT OPTION" in text
            await pilot.press("f")
            await _confirm(app, pilot, "FIX")
            await _until(pilot, lambda: isinstance(app.screen, AccountsScreen)
                         and _cell(users, f"{name}@%", 5) == "✓")
            await pilot.pause()
            # the reload keeps the fixed user highlighted: what the pane shows is what was acted on
            assert users.coordinate_to_cell_key(users.cursor_coordinate).row_key.value == f"{name}@%"
            assert "✓ matches its role" in _detail(app)
        conn = login(server, name, pw)
        try:
            with pytest.raises(pymysql.err.OperationalError), conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{other}`")  # the extra privilege is gone
        finally:
            conn.close()
        fixes = [e for e in app.ctx.audit.entries() if e["action"] == "users-fix"]
        assert fixes[0]["target"] == f"{name}@%" and fixes[0]["actor"]["db_user"] == "djadmin"
    finally:
        service.apply(service.plan_fix(["dj_guest"]))


async def test_set_role_lock_unlock_and_drop_from_the_screen(server: PrivateServer, service: AccountsService,
                                                             tmp_path: Path, cleanup: Callable[..., None]) -> None:
    service.apply(service.plan_roles_init())
    name = unique("adm_")
    cleanup(user=name, schema=name)
    plan, pw = service.plan_add_user(name, "guest")
    service.apply(plan)
    app = DjtuiApp(config=_config(server, tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("5")
        await _settle(app, pilot)
        users = app.screen.query_one("#acct-users", DataTable)
        users.move_cursor(row=users.get_row_index(f"{name}@%"))
        await pilot.press("e")
        await _until(pilot, lambda: isinstance(app.screen, SetRoleDialog))
        app.screen.query_one("#kind", Select).value = "collab"
        await pilot.click("#ok")
        await _confirm(app, pilot, name)
        await _until(pilot, lambda: isinstance(app.screen, AccountsScreen)
                     and _cell(users, f"{name}@%", 2) == "dj_collab")
        assert _cell(users, f"{name}@%", 5) == "✓"  # the own schemas came with the role

        users.move_cursor(row=users.get_row_index(f"{name}@%"))
        await pilot.press("l")
        await _confirm(app, pilot, name)
        await _until(pilot, lambda: isinstance(app.screen, AccountsScreen)
                     and _cell(users, f"{name}@%", 4) == "locked")
        with pytest.raises(pymysql.err.OperationalError):
            login(server, name, pw)
        users.move_cursor(row=users.get_row_index(f"{name}@%"))
        await pilot.press("l")
        await _confirm(app, pilot, name)
        await _until(pilot, lambda: isinstance(app.screen, AccountsScreen) and _cell(users, f"{name}@%", 4) == "-")
        conn = login(server, name, pw)
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_ROLE()")
            assert cur.fetchone()[0] == "dj_collab"
        conn.close()

        users.move_cursor(row=users.get_row_index(f"{name}@%"))
        await pilot.press("d")
        await _until(pilot, lambda: isinstance(app.screen, ConfirmTyped))
        await pilot.press("escape")  # cancelled: the user stays
        await _settle(app, pilot)
        login(server, name, pw).close()
        await pilot.press("d")
        await _confirm(app, pilot, f"DROP {name}")
        await _until(pilot, lambda: isinstance(app.screen, AccountsScreen) and users.is_valid_row_index(0)
                     and f"{name}@%" not in [r.value for r in users.rows])
    with pytest.raises(pymysql.err.OperationalError):
        login(server, name, pw)
    actions = [(e["action"], e["event"]) for e in app.ctx.audit.entries() if e.get("target") == f"{name}@%"]
    assert ("users-set-role", "outcome") in actions and ("users-lock", "outcome") in actions
    assert ("users-unlock", "outcome") in actions and ("users-drop", "outcome") in actions


async def test_account_admin_keys_refused_read_only(server: PrivateServer, tmp_path: Path) -> None:
    ro = DjtuiApp(config=_config(server, tmp_path, "readonly: true\n"))
    async with ro.run_test(size=(80, 24)) as pilot:
        await _settle(ro, pilot)
        await pilot.press("5")
        await _settle(ro, pilot)
        users = ro.screen.query_one("#acct-users", DataTable)
        users.move_cursor(row=users.get_row_index("djadmin@%"))
        for key in ("e", "l", "d"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(ro.screen, AccountsScreen), key
        assert sum("read-only" in n.message for n in ro._notifications) == 3
