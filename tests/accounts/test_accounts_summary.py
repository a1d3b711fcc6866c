"""Issue 16: the drift count says what it is made of (missing roles are nobody's user drift)."""

from __future__ import annotations

import pytest

from djtui.services.accounts import AccountState, RoleState, ServerAccounts


def _user(name: str, drift: tuple[str, ...] = (), kind: str | None = None) -> AccountState:
    return AccountState(name, "%", kind, (), (), False, {}, {}, drift)


def _state(roles, users) -> ServerAccounts:
    return ServerAccounts("MariaDB", "10.11.6", (), tuple(roles), tuple(users), ())


def test_four_missing_roles_are_said_as_missing_roles_not_drift():
    missing = [RoleState(n, False, drift=("role does not exist (run `djtui roles init`)",))
               for n in ("dj_guest", "dj_collab", "dj_user", "dj_admin")]
    state = _state(missing, [_user("alice"), _user("bob")])
    assert len(state.drift) == 4  # the count is unchanged; its words are not
    assert state.missing_roles == ["dj_guest", "dj_collab", "dj_user", "dj_admin"]
    assert state.drift_summary() == "4 roles missing"


def test_summary_names_each_kind_of_difference():
    roles = [RoleState("dj_guest", False, drift=("role does not exist",)),
             RoleState("dj_user", True, drift=("+ INSERT ON `x`.*", "- SELECT ON `%`.*")),
             RoleState("dj_admin", True)]
    users = [_user("alice", ("+ ROLE dj_admin",), "user"), _user("bob", (), "user"),
             _user("carol", ("- DEFAULT ROLE dj_user",), "user")]
    state = _state(roles, users)
    assert state.drift_summary() == "1 role missing, 1 role drifted, 2 users drifted"
    assert _state([RoleState("dj_admin", True)], [_user("bob")]).drift_summary() == "no drift"


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
async def test_screen_on_a_server_without_the_roles_says_roles_missing_and_where(tmp_path, backend: str):
    """A fresh server of its own (no djtui roles yet): the summary says what the count is, the role rows
    say `missing`, and the users show `-` (no djtui role, so no drift of theirs)."""
    from textual.widgets import DataTable, Static

    from djtui.config import parse_config
    from djtui.services.servers.mariadb import PrivateServer
    from djtui.services.servers.postgres import PrivatePostgres
    from djtui.tui.app import DjtuiApp
    from djtui.tui.screens.accounts import AccountsScreen

    server_class = PrivateServer if backend == "mariadb" else PrivatePostgres
    with server_class(tmp_path / "srv") as srv:
        config = parse_config(
            f"database:\n  backend: {srv.backend}\n  host: 127.0.0.1\n  port: {srv.port}\n  user: djadmin\n"
            f"  password: {srv.password.reveal()}\n  use_datajoint_config: false\nstate_dir: {tmp_path}/state\n")
        app = DjtuiApp(config=config)
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(3):
                await app.workers.wait_for_complete()
                await pilot.pause()
            await pilot.press("5")
            for _ in range(3):
                await app.workers.wait_for_complete()
                await pilot.pause()
            assert isinstance(app.screen, AccountsScreen)
            summary = str(app.screen.query_one("#acct-summary", Static).render())
            assert "4 roles missing" in summary and "4 drift" not in summary, summary
            users = app.screen.query_one("#acct-users", DataTable)
            for role in ("dj_guest", "dj_collab", "dj_user", "dj_admin"):
                assert str(users.get_row(f"role:{role}")[5]) == "✗ missing"
            admin = next(k.value for k in users.rows if k.value.partition("@")[0] == "djadmin")
            assert str(users.get_row(admin)[5]) == "-"
