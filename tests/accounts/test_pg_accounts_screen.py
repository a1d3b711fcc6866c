"""The Accounts screen on PostgreSQL with the Pilot: roles, users without a host, the grant matrix, and a
user's drift read from the catalogs; adding a user through the screen, proven by logging in with psql."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from djtui.config import AccountSettings, parse_config
from djtui.services.accounts import AccountsService
from djtui.services.servers.postgres import PrivatePostgres
from djtui.tui.app import DjtuiApp
from djtui.tui.screens.accounts import AccountsScreen, PasswordOnce, PlanDialog
from djtui.tui.widgets.confirm import ConfirmTyped

from .conftest import unique
from .pg import PgLab, config_text, pg_lab


@pytest.fixture(scope="module")
def lab(pg_server: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgLab]:
    tmp = tmp_path_factory.mktemp("pg_acct_screen")
    with pg_lab(pg_server, tmp, unique("acctscr_")) as lab:
        lab.sql("CREATE SCHEMA common_scr", "CREATE TABLE common_scr.t (id int PRIMARY KEY)",
                "INSERT INTO common_scr.t VALUES (1)")
        db = lab.database()
        try:
            service = AccountsService(db, AccountSettings())
            service.apply(service.plan_roles_init())
        finally:
            db.close()
        yield lab


async def _settle(app: DjtuiApp, pilot) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def _until(pilot, cond: Callable[[], bool], seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


async def test_screen_shows_roles_and_drift_on_postgres(lab: PgLab, tmp_path: Path) -> None:
    db = lab.database()
    try:
        service = AccountsService(db, AccountSettings())
        name = unique("scrpg_")
        lab.users.append(name)
        plan, _pw = service.plan_add_user(name, "collab")
        service.apply(plan)
    finally:
        db.close()
    lab.sql(f'GRANT INSERT ON common_scr.t TO "{name}"')  # drift: held beyond its definition
    app = DjtuiApp(config=parse_config(config_text(lab.server, lab.dbname, tmp_path)))
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("5")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, AccountsScreen)
        summary = str(screen.query_one("#acct-summary", Static).render())
        assert "PostgreSQL 15" in summary and "1 user drifted" in summary
        users = screen.query_one("#acct-users", DataTable)
        for role in ("dj_guest", "dj_collab", "dj_user", "dj_admin"):
            assert users.get_row(f"role:{role}")[5] == "✓"
        row = users.get_row(name)  # keyed by its name alone: no host on PostgreSQL
        assert row[1] == "" and row[2] == "dj_collab" and row[3] == "✓" and row[5] == "✗ 1"
        matrix = screen.query_one("#acct-matrix", DataTable)
        mrow = matrix.get_row(name)
        assert mrow[1] == "ALL" and mrow[2] == "R" and mrow[3] == "R"  # own, other, common
        users.move_cursor(row=users.get_row_index(name))
        await pilot.pause()
        detail = str(screen.query_one("#acct-detail", Static).render())
        assert '+ INSERT ON TABLE "common_scr"."t"' in detail
        await pilot.press("f")  # fix the highlighted user's drift, after the typed word
        await _until(pilot, lambda: isinstance(app.screen, ConfirmTyped))
        assert app.screen.expected == "FIX"
        field = app.screen.query_one(Input)
        field.value = "FIX"
        field.focus()
        await pilot.pause()
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, AccountsScreen) and str(users.get_row(name)[5]) == "✓")
        assert lab.sql(f"SELECT has_table_privilege('{name}', 'common_scr.t', 'INSERT')") == [(False,)]
        fixes = [e for e in app.ctx.audit.entries() if e["action"] == "users-fix"]
        assert fixes and fixes[-1]["target"] == name

        new = unique("scrnew_")
        lab.users.append(new)
        await pilot.press("a")
        await pilot.pause()
        assert not app.screen.query("#host")  # a PostgreSQL role has no host: the dialog asks for none
        name_input = app.screen.query_one("#name", Input)
        name_input.value = new
        name_input.focus()
        await pilot.pause()
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, PlanDialog))
        text = str(app.screen.query_one("#plan-text", Static).render())
        assert f"CREATE ROLE \"{new}\" LOGIN INHERIT PASSWORD '****'" in text
        await pilot.click("#apply")
        await _until(pilot, lambda: isinstance(app.screen, PasswordOnce))
        password = app.screen.password
        await pilot.click("#close")
        await _settle(app, pilot)
        assert users.get_row(new)[2] == "dj_user"
    res = lab.psql(new, password, "INSERT INTO common_scr.t VALUES (2) RETURNING id")
    assert res.returncode == 0 and res.stdout.strip() == "2", res.stderr
