"""Proof on the live private MariaDB: users made by djtui can do what their role allows, nothing more."""

from __future__ import annotations

from collections.abc import Callable

import pymysql
import pytest

from djtui.config import AccountSettings
from djtui.domain import grants as g
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.accounts import AccountsService
from djtui.services.audit import AuditLog
from djtui.services.database import Database
from djtui.services.servers.mariadb import PrivateServer

from .conftest import login, unique

KINDS = ("guest", "collab", "user", "admin")


def _ok(conn: pymysql.connections.Connection, sql: str) -> bool:
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
        return True
    except pymysql.err.MySQLError as exc:
        assert exc.args[0] in (1044, 1142, 1045, 1227, 1370, 1064) or "denied" in str(exc), exc
        return False


@pytest.fixture(scope="module")
def lab(server: PrivateServer, service: AccountsService, cleanup: Callable[..., None], tmp_path_factory):
    """Roles initialised, a shared schema with a table, and one user of each kind made through djtui."""
    state_dir = tmp_path_factory.mktemp("acct_state")
    audit = AuditLog(state_dir / "audit.jsonl")
    service.apply(service.plan_roles_init(), audit=audit, state_dir=state_dir, action="roles-init")
    shared = unique("common_acct")  # a schema under the shared `common` prefix
    cleanup(schema=shared)
    admin = server.connect()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{shared}`")
        cur.execute(f"CREATE TABLE `{shared}`.t (id INT PRIMARY KEY)")
        cur.execute(f"INSERT INTO `{shared}`.t VALUES (1)")
    admin.close()
    users: dict[str, tuple[str, str]] = {}
    for kind in KINDS:
        name = unique(f"{kind}_")  # names with `_`, whose prefix pattern must be escaped
        cleanup(user=name, schema=name)
        plan, pw = service.plan_add_user(name, kind)
        assert service.apply(plan, audit=audit, state_dir=state_dir, action="users-add") == len(plan.statements)
        users[kind] = (name, pw)
    return {"shared": shared, "users": users, "audit": audit, "state_dir": state_dir}


def _grants_only(plan: g.Plan) -> list[str]:
    """The plan's grants; role ADMIN OPTION for admin accounts other tests made since is left out."""
    return [s.sql for s in plan.statements if not s.sql.endswith("WITH ADMIN OPTION")]


def test_roles_init_is_idempotent(service: AccountsService, lab) -> None:
    plan = service.plan_roles_init()
    assert _grants_only(plan) == [], plan.render()
    state = service.read()
    assert all(r.exists and not r.drift for r in state.roles)
    assert not any("can SELECT from `mysql`" in w for w in state.warnings)  # the default scope is safe
    assert all(r.reads_system == () for r in state.roles)


def test_each_role_active_at_login(server: PrivateServer, lab) -> None:
    for kind, (name, pw) in lab["users"].items():
        conn = login(server, name, pw)
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_ROLE()")
            assert cur.fetchone()[0] == f"dj_{kind}"
        conn.close()


# what each kind may do: read shared, write shared, create in own prefix, in shared prefix, in another's prefix
ALLOWED = {
    "guest": (True, False, False, False, False),
    "collab": (True, False, True, False, False),
    "user": (True, True, True, True, False),
    "admin": (True, True, True, True, True),
}


@pytest.mark.parametrize("kind", KINDS)
def test_user_can_do_exactly_what_the_role_allows(server: PrivateServer, lab, kind: str,
                                                  cleanup: Callable[..., None]) -> None:
    name, pw = lab["users"][kind]
    other = lab["users"]["collab" if kind != "collab" else "user"][0]
    shared = lab["shared"]
    new_shared = unique("common_new")
    cleanup(schema=new_shared)
    conn = login(server, name, pw)
    try:
        got = (
            _ok(conn, f"SELECT * FROM `{shared}`.t"),
            _ok(conn, f"INSERT INTO `{shared}`.t VALUES ({100 + KINDS.index(kind)})"),
            _ok(conn, f"CREATE DATABASE `{name}_own`") and _ok(conn, f"CREATE TABLE `{name}_own`.x (i INT)"),
            _ok(conn, f"CREATE DATABASE `{new_shared}`") and _ok(conn, f"CREATE TABLE `{new_shared}`.x (i INT)"),
            _ok(conn, f"CREATE DATABASE `{other}_theirs`"),
        )
    finally:
        conn.close()
        cleanup(schema=f"{other}_theirs")
    assert got == ALLOWED[kind], f"{kind}: read, write, own, shared, other's = {got}"


def test_underscore_in_user_name_is_literal(server: PrivateServer, lab) -> None:
    """``collab_NNN`` owns ``collab\\_NNN\\_%``, not ``collab_NNN_%`` (where `_` matches any character)."""
    name, pw = lab["users"]["collab"]
    lookalike = name.replace("_", "X", 1) + "_z"
    conn = login(server, name, pw)
    try:
        assert not _ok(conn, f"CREATE DATABASE `{lookalike}`")
        assert _ok(conn, f"CREATE DATABASE `{name}_z`")
    finally:
        conn.close()


def test_users_list_shows_roles_default_and_no_drift(service: AccountsService, lab) -> None:
    state = service.read()
    for kind, (name, _pw) in lab["users"].items():
        [acct] = state.find(name)
        assert acct.kind == kind and acct.host == "%"
        assert acct.default_active and acct.drift == ()
        assert acct.level_on(lab["shared"]) == {"guest": "R", "collab": "R", "user": "ALL", "admin": "ALL"}[kind]
        assert acct.level_on(f"{name}_x") == ("R" if kind == "guest" else "ALL")
    assert lab["users"]["user"][0] + "@%" in state.role("dj_user").holders


def test_drift_is_found_and_reported(server: PrivateServer, service: AccountsService, lab) -> None:
    name, _ = lab["users"]["collab"]
    admin = server.connect()
    try:
        with admin.cursor() as cur:
            cur.execute(f"REVOKE ALL PRIVILEGES ON `{g.prefix_pattern(name)}`.* FROM '{name}'@'%'")
        [acct] = service.read().find(name)
        assert acct.drift == (f"- ALL PRIVILEGES ON `{g.prefix_pattern(name)}`.*",), acct.drift
        with admin.cursor() as cur:
            cur.execute(f"GRANT ALL PRIVILEGES ON `{g.prefix_pattern(name)}`.* TO '{name}'@'%'")
            cur.execute("SET DEFAULT ROLE NONE FOR %s@'%%'", (name,))
        [acct] = service.read().find(name)
        assert not acct.default_active
        assert acct.drift == ("- DEFAULT ROLE dj_collab (the role is inactive at login)",)
    finally:
        with admin.cursor() as cur:
            cur.execute("SET DEFAULT ROLE `dj_collab` FOR %s@'%%'", (name,))
        admin.close()
    assert service.read().find(name)[0].drift == ()


def test_mariadb_role_inactive_without_default_role(server: PrivateServer, service: AccountsService,
                                                    cleanup: Callable[..., None], lab) -> None:
    """The Spyglass bug: GRANT role without SET DEFAULT ROLE leaves the role off at login."""
    name = unique("nodef_")
    cleanup(user=name)
    plan, pw = service.plan_add_user(name, "user")
    without_default = g.Plan("no default", tuple(s for s in plan.statements if "DEFAULT ROLE" not in s.sql))
    service.apply(without_default)
    conn = login(server, name, pw)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_ROLE()")
            assert cur.fetchone()[0] is None
        assert not _ok(conn, f"INSERT INTO `{lab['shared']}`.t VALUES (500)")
    finally:
        conn.close()
    d = service.dialect()
    service.apply(g.Plan("default", (g.Statement(d.set_default_role("dj_user", name, "%")),)))
    conn = login(server, name, pw)
    try:
        assert _ok(conn, f"INSERT INTO `{lab['shared']}`.t VALUES (501)")
    finally:
        conn.close()


def test_user_without_create_on_shared(server: PrivateServer, acct_db: Database, lab,
                                       cleanup: Callable[..., None]) -> None:
    """``user_can_create: false`` (as production labs run): dj_user writes rows but creates no tables."""
    strict = AccountsService(acct_db, AccountSettings(user_can_create=False))
    plan = strict.plan_roles_init()
    assert _grants_only(plan) == [
        f"REVOKE CREATE ON `{g.prefix_pattern(p)}`.* FROM `dj_user`" for p in AccountSettings().shared_prefixes]
    strict.apply(plan)
    name, pw = lab["users"]["user"]
    new_shared = unique("common_nocreate")
    cleanup(schema=new_shared)
    conn = login(server, name, pw)
    try:
        assert not _ok(conn, f"CREATE DATABASE `{new_shared}`")
        assert _ok(conn, f"INSERT INTO `{lab['shared']}`.t VALUES (600)")
    finally:
        conn.close()
        loose = AccountsService(acct_db, AccountSettings())
        loose.apply(loose.plan_roles_init())
    assert _grants_only(AccountsService(acct_db, AccountSettings()).plan_roles_init()) == []


def test_add_module_with_underscore(server: PrivateServer, service: AccountsService, lab,
                                    cleanup: Callable[..., None]) -> None:
    module = unique("mod_")
    cleanup(schema=module, )
    cleanup(schema=module.replace("_", "Q", 1))
    plan = service.plan_add_module(module)
    assert [s.sql for s in plan.statements] == [f"GRANT ALL PRIVILEGES ON `{g.prefix_pattern(module)}`.* TO `dj_user`"]
    service.apply(plan)
    try:
        assert service.plan_add_module(module).empty
        name, pw = lab["users"]["user"]
        conn = login(server, name, pw)
        try:
            assert _ok(conn, f"CREATE DATABASE `{module}_x`")
            assert not _ok(conn, f"CREATE DATABASE `{module.replace('_', 'Q', 1)}_x`")
        finally:
            conn.close()
        assert module in service.read().modules
    finally:
        admin = server.connect()
        with admin.cursor() as cur:
            cur.execute(f"REVOKE ALL PRIVILEGES ON `{g.prefix_pattern(module)}`.* FROM `dj_user`")
        admin.close()


def test_reset_password_and_passwd(server: PrivateServer, service: AccountsService, lab,
                                   cleanup: Callable[..., None]) -> None:
    name = unique("pw_")
    cleanup(user=name)
    plan, first = service.plan_add_user(name, "guest")
    service.apply(plan)
    plan, second = service.plan_reset_password(name)
    assert plan.statements[0].sql == f"ALTER USER '{name}'@'%' IDENTIFIED BY '****'"
    service.apply(plan)
    with pytest.raises(pymysql.err.OperationalError):
        login(server, name, first)
    login(server, name, second).close()
    # the user changes their own password through djtui, on a connection of their own
    own = Database(server.settings.__class__(host="127.0.0.1", port=server.settings.port, user=name,
                                             password=server.settings.password.__class__(second)))
    try:
        mine = AccountsService(own, AccountSettings())
        plan = mine.plan_passwd("Brand-new-pass-42")
        assert plan.statements[0].sql == "SET PASSWORD = PASSWORD('****')"
        mine.apply(plan)
    finally:
        own.close()
    login(server, name, "Brand-new-pass-42").close()
    with pytest.raises(UserError):
        service.plan_reset_password(unique("nobody_"))


def test_passwords_never_reach_the_logs(service: AccountsService, lab) -> None:
    for _name, pw in lab["users"].values():
        assert all(pw not in e.text for e in commandlog.entries())
        assert pw not in lab["audit"].path.read_text()
    assert "IDENTIFIED BY '****'" in lab["audit"].path.read_text()


def test_hostile_names_are_refused_or_escaped(server: PrivateServer, service: AccountsService, lab,
                                              cleanup: Callable[..., None]) -> None:
    for bad in ("x'; DROP USER djadmin; --", "a`b", "ev%l", "ev_l%"):
        with pytest.raises(UserError):
            service.plan_add_user(bad, "guest")
    # the quoting itself holds even for names validation would refuse: the server stores them verbatim
    weird = "q'`%" + unique("w")
    cleanup(user=weird)
    d = service.dialect()
    service.apply(g.Plan("weird", (g.Statement(d.create_user(weird, "%", None), password="Weird-pass-1234"),
                                   g.Statement(d.grant("SELECT", g.prefix_pattern(weird), d.account(weird, "%"))))))
    assert service.user_exists(weird) == ["%"]
    assert service.user_exists("q") == []
    [acct] = service.read().find(weird)
    assert acct.own == {g.prefix_pattern(weird): frozenset({"SELECT"})}
    assert not g.like_match(g.prefix_pattern(weird), "qXY_x")


def test_existing_user_and_missing_role_are_user_errors(service: AccountsService, lab) -> None:
    name, _ = lab["users"]["guest"]
    with pytest.raises(UserError, match="already exists"):
        service.plan_add_user(name, "guest")
    with pytest.raises(UserError, match="not a role"):
        service.plan_add_user(unique("r_"), "boss")
    with pytest.raises(UserError, match="shorter"):
        service.plan_add_user(unique("r_"), "guest", password="short")
