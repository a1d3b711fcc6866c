"""Issue 16: the drift count says what it is made of (missing roles are nobody's user drift)."""

from __future__ import annotations

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
