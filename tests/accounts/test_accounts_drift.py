"""Drift both ways (issue 13.1): privileges granted by hand beyond a role's definition are found, shown as
a diff, and `users fix` takes them back; proven by logging in as the fixed user."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pymysql
import pytest

from djtui.cli import main
from djtui.domain import grants as g
from djtui.errors import OperationFailed
from djtui.services.accounts import AccountsService
from djtui.services.servers.mariadb import PrivateServer
from tests.conftest import write_config

from .conftest import login, unique


@pytest.fixture(scope="module")
def cfg(server: PrivateServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("acct_drift")
    return write_config(tmp / "djtui.yaml", (
        f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
        f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
        f"state_dir: {tmp}/state\n"))


@pytest.fixture(scope="module", autouse=True)
def roles_ready(service: AccountsService) -> Iterator[None]:
    service.apply(service.plan_fix([r for r in g.ROLE_OF_KIND.values()]))
    yield
    service.apply(service.plan_fix([r for r in g.ROLE_OF_KIND.values()]))  # leave the roles as defined


def run(cfg: Path, *argv: str) -> int:
    return main(["--config", str(cfg), *argv])


def sql(server: PrivateServer, *statements: str) -> None:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s)
    finally:
        conn.close()


def allowed(server: PrivateServer, user: str, pw: str, statement: str) -> bool:
    conn = login(server, user, pw)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
        return True
    except pymysql.err.MySQLError as exc:
        assert exc.args[0] in (1044, 1142, 1143, 1227, 1045, 1370), exc
        return False
    finally:
        conn.close()


def new_user(service: AccountsService, cleanup: Callable[..., None], kind: str, stem: str) -> tuple[str, str]:
    name = unique(stem)
    cleanup(user=name, schema=name)
    plan, pw = service.plan_add_user(name, kind)
    service.apply(plan)
    return name, pw


def check(cfg: Path, capsys) -> tuple[int, dict]:
    code = run(cfg, "users", "check", "--json")
    return code, json.loads(capsys.readouterr().out)


def test_extra_global_privileges_are_drift_and_fix_takes_them_back(server: PrivateServer, service: AccountsService,
                                                                   cfg: Path, capsys,
                                                                   cleanup: Callable[..., None]) -> None:
    """The issue's first case: GRANT ALL ON *.* ... WITH GRANT OPTION to a dj_user user was "no drift"."""
    name, pw = new_user(service, cleanup, "user", "alice_")
    other = unique("elsewhere_")
    cleanup(schema=other)
    assert not allowed(server, name, pw, f"CREATE DATABASE `{other}`")
    sql(server, f"GRANT ALL ON *.* TO '{name}'@'%' WITH GRANT OPTION")
    assert allowed(server, name, pw, f"CREATE DATABASE `{other}`")  # the extra privilege is real

    code, report = check(cfg, capsys)
    assert code == 1
    (mine,) = [u for u in report["users"] if u["user"] == name]
    assert mine["diff"] == ["+ ALL PRIVILEGES ON *.* WITH GRANT OPTION"]
    own = f"ALL PRIVILEGES ON `{name.replace('_', chr(92) + '_')}\\_%`.*"
    assert mine["expected"] == [own]  # the definition and what the server holds, both whole
    assert mine["actual"] == ["ALL PRIVILEGES ON *.* WITH GRANT OPTION", own]
    assert f"user {name}@%: + ALL PRIVILEGES ON *.* WITH GRANT OPTION" in report["drift"]
    assert run(cfg, "users", "check") == 1
    out = capsys.readouterr().out
    assert f"✗ user {name}@% (dj_user): 1 difference(s)" in out
    assert "    + ALL PRIVILEGES ON *.* WITH GRANT OPTION" in out

    assert run(cfg, "users", "fix", name, "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"REVOKE ALL PRIVILEGES ON *.* FROM '{name}'@'%';" in out
    assert f"REVOKE GRANT OPTION ON *.* FROM '{name}'@'%';" in out and "dry run: nothing was changed" in out
    assert check(cfg, capsys)[1]["users"]  # still drifting after the dry run

    assert run(cfg, "users", "fix", name, "--confirm", "fix") == 2  # the word is typed exactly
    assert run(cfg, "users", "fix", name, "--confirm", "FIX") == 0
    capsys.readouterr()
    sql(server, f"DROP DATABASE `{other}`")
    assert not allowed(server, name, pw, f"CREATE DATABASE `{other}`")  # logged in again: gone
    assert allowed(server, name, pw, f"CREATE DATABASE `{name}_own`")  # what the role gives stays
    assert not [u for u in check(cfg, capsys)[1]["users"] if u["user"] == name]


def test_extra_on_mysql_tables_columns_and_roles_beside_the_role(server: PrivateServer, service: AccountsService,
                                                                  cfg: Path, capsys,
                                                                  cleanup: Callable[..., None]) -> None:
    name, pw = new_user(service, cleanup, "guest", "bob_")
    schema = unique("zzt_")
    cleanup(schema=schema)
    sql(server, f"CREATE DATABASE `{schema}`", f"CREATE TABLE `{schema}`.t (a INT, b INT)",
        f"GRANT DELETE ON mysql.* TO '{name}'@'%'",
        f"GRANT SELECT (a), UPDATE (b) ON `{schema}`.t TO '{name}'@'%'",
        f"GRANT INSERT ON `{schema}`.t TO '{name}'@'%'",
        f"GRANT dj_admin TO '{name}'@'%'")
    assert allowed(server, name, pw, "DELETE FROM mysql.help_topic WHERE 1 = 0")
    assert allowed(server, name, pw, f"UPDATE `{schema}`.t SET b = 2")
    code, report = check(cfg, capsys)
    assert code == 1
    (mine,) = [u for u in report["users"] if u["user"] == name]
    assert mine["diff"] == ["+ ROLE dj_admin", "+ DELETE ON `mysql`.*",
                            f"+ SELECT (`a`), INSERT, UPDATE (`b`) ON `{schema}`.`t`"], mine["diff"]
    assert mine["extra_roles"] == ["dj_admin"]
    assert run(cfg, "users", "fix", name, "--confirm", "FIX") == 0
    out = capsys.readouterr().out
    assert f"REVOKE `dj_admin` FROM '{name}'@'%';" in out
    assert f"REVOKE SELECT (`a`), INSERT, UPDATE (`b`) ON `{schema}`.`t` FROM '{name}'@'%';" in out
    assert not allowed(server, name, pw, "DELETE FROM mysql.help_topic WHERE 1 = 0")
    assert not allowed(server, name, pw, f"INSERT INTO `{schema}`.t VALUES (1, 1)")
    assert not allowed(server, name, pw, f"UPDATE `{schema}`.t SET b = 2")  # the column grant went too
    assert service.read().find(name)[0].drift == ()


def test_role_extra_and_missing_are_drift_and_fixed(server: PrivateServer, service: AccountsService, cfg: Path,
                                                    capsys, cleanup: Callable[..., None]) -> None:
    """The issue's second case (dj_guest given INSERT, DELETE on mocap\\_%), and a missing grant."""
    guest, pw = new_user(service, cleanup, "guest", "gst_")
    schema = unique("mocap_drift")
    cleanup(schema=schema)
    sql(server, f"CREATE DATABASE `{schema}`", f"CREATE TABLE `{schema}`.t (a INT)",
        "GRANT INSERT, DELETE ON `mocap\\_%`.* TO dj_guest", "REVOKE SELECT ON `%\\_%`.* FROM dj_collab")
    assert allowed(server, guest, pw, f"INSERT INTO `{schema}`.t VALUES (1)")
    code, report = check(cfg, capsys)
    assert code == 1
    roles = {r["name"]: r for r in report["roles"]}
    assert roles["dj_guest"]["diff"] == ["+ INSERT, DELETE ON `mocap\\_%`.*"]
    assert roles["dj_collab"]["diff"] == ["- SELECT ON `%\\_%`.*"]
    assert run(cfg, "users", "check") == 1
    out = capsys.readouterr().out
    assert "✗ role dj_guest: 1 difference(s)" in out and "    + INSERT, DELETE ON `mocap\\_%`.*" in out
    assert "✗ role dj_collab: 1 difference(s)" in out and "    - SELECT ON `%\\_%`.*" in out

    assert run(cfg, "users", "fix", "dj_guest", "dj_collab", "--confirm", "FIX") == 0
    out = capsys.readouterr().out
    assert "REVOKE INSERT, DELETE ON `mocap\\_%`.* FROM `dj_guest`;" in out
    assert "GRANT SELECT ON `%\\_%`.* TO `dj_collab`;" in out
    assert not allowed(server, guest, pw, f"INSERT INTO `{schema}`.t VALUES (2)")
    assert allowed(server, guest, pw, f"SELECT * FROM `{schema}`.t")
    state = service.read()
    assert state.role("dj_guest").drift == () and state.role("dj_collab").drift == ()


def test_fix_rechecks_at_the_moment_of_action(server: PrivateServer, service: AccountsService,
                                              cleanup: Callable[..., None]) -> None:
    """A grant made by hand between the plan and the confirmation: nothing runs, the new plan is shown."""
    name, _pw = new_user(service, cleanup, "collab", "race_")
    sql(server, f"GRANT DELETE ON mysql.* TO '{name}'@'%'")
    plan = service.plan_fix([name])
    assert [s.sql for s in plan.statements] == [f"REVOKE DELETE ON `mysql`.* FROM '{name}'@'%'"]
    sql(server, f"GRANT SHUTDOWN ON *.* TO '{name}'@'%'")
    with pytest.raises(OperationFailed, match="changed since the plan was shown") as info:
        service.apply(plan, recheck=lambda: service.plan_fix([name]))
    assert f"REVOKE SHUTDOWN ON *.* FROM '{name}'@'%'" in str(info.value)
    drift = service.read().find(name)[0].drift
    assert "+ DELETE ON `mysql`.*" in drift and "+ SHUTDOWN ON *.*" in drift  # nothing ran
    service.apply(service.plan_fix([name]))
    assert service.read().find(name)[0].drift == ()


def test_fix_refuses_the_account_djtui_runs_as(server: PrivateServer, service: AccountsService, tmp_path: Path,
                                               capsys, cleanup: Callable[..., None]) -> None:
    name, pw = new_user(service, cleanup, "admin", "self_")
    sql(server, f"GRANT ALL ON *.* TO '{name}'@'%' WITH GRANT OPTION")  # an admin who runs djtui, drifted
    me = write_config(tmp_path / "me.yaml", (
        f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: {name}\n"
        f"  password: {pw}\n  use_datajoint_config: false\nstate_dir: {tmp_path}/state\n"))
    assert main(["--config", str(me), "users", "fix", name, "--confirm", "FIX"]) == 2
    err = capsys.readouterr().err
    assert "is the account djtui runs as" in err and "another admin account" in err
    assert main(["--config", str(me), "users", "fix", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"left out {name}@%: djtui runs as it" in out and f"FROM '{name}'@'%'" not in out
    assert allowed(server, name, pw, "SELECT 1")
    service.apply(service.plan_fix([name]))  # as djadmin: fine


def test_unmanaged_account_and_unknown_names(any_server, capsys) -> None:
    cfg = any_server.cfg
    assert run(cfg, "users", "fix", "djadmin") == 2
    assert "holds no djtui role" in capsys.readouterr().err
    assert run(cfg, "users", "fix", unique("nobody_")) == 2
    assert "there is no user" in capsys.readouterr().err
    assert run(cfg, "users", "fix", "o'brien") == 2
    assert "not a usable user name" in capsys.readouterr().err


# -- the grants as text: MySQL 8 cannot be installed here, so its spelling is tested as text ------------

MYSQL8_ALICE = [
    "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, SHUTDOWN, PROCESS, FILE, REFERENCES, INDEX, "
    "ALTER, SHOW DATABASES, SUPER, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, "
    "REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER, "
    "CREATE TABLESPACE, CREATE ROLE, DROP ROLE ON *.* TO `alice`@`%` WITH GRANT OPTION",
    "GRANT BACKUP_ADMIN,BINLOG_ADMIN,ROLE_ADMIN ON *.* TO `alice`@`%` WITH GRANT OPTION",
    "GRANT ALL PRIVILEGES ON `alice\\_%`.* TO `alice`@`%`",
    "GRANT INSERT, DELETE ON `mocap\\_%`.* TO `alice`@`%`",
    "GRANT `dj_user`@`%`,`dj_guest`@`%` TO `alice`@`%`",
]


def test_mysql8_show_grants_are_read_whole() -> None:
    held = g.held_privs(MYSQL8_ALICE, "MySQL", ("alice", "%"))
    expected = g.expected_privs(g.user_own_grants("user", "alice", "%"), "MySQL")
    extra, missing = g.diff_privs(expected, held)
    assert missing == frozenset()
    diff = g.GrantDiff("alice@%", extra, missing, ("dj_guest",))
    lines = diff.lines("MySQL")
    assert lines[0] == "+ ROLE dj_guest"
    assert lines[1].startswith("+ SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD") \
        and "BACKUP_ADMIN" in lines[1] and "ROLE_ADMIN" in lines[1] and lines[1].endswith(" ON *.* WITH GRANT OPTION")
    assert lines[2] == "+ INSERT, DELETE ON `mocap\\_%`.*"
    d = g.Dialect("MySQL", (8, 0, 36))
    stmts = [s.sql for s in g.fix_privs_statements(d, d.account("alice", "%"),
                                                   g.user_own_grants("user", "alice", "%"), diff)]
    assert stmts[0] == "REVOKE 'dj_guest' FROM 'alice'@'%'"  # a MySQL role is an account: quoted as a string
    assert stmts[1].startswith("REVOKE SELECT, INSERT") and stmts[1].endswith(" ON *.* FROM 'alice'@'%'")
    assert stmts[2] == "REVOKE GRANT OPTION ON *.* FROM 'alice'@'%'"
    assert stmts[3] == "REVOKE INSERT, DELETE ON `mocap\\_%`.* FROM 'alice'@'%'"


def test_only_the_grantees_own_lines_count() -> None:
    """MariaDB's SHOW GRANTS FOR a role also lists the grants of the roles granted to it."""
    lines = ["GRANT `r2` TO `dj_guest`", "GRANT USAGE ON *.* TO `dj_guest`", "GRANT SELECT ON `%\\_%`.* TO `dj_guest`",
             "GRANT USAGE ON *.* TO `r2`", "GRANT DELETE ON `x`.* TO `r2`"]
    assert g.held_privs(lines, "MariaDB", ("dj_guest", None)) == {g.Priv("`%\\_%`.*", "SELECT")}


def test_whole_all_is_revoked_and_the_definition_granted_again() -> None:
    """ALL PRIVILEGES on *.* where the definition wants SELECT on *.* (MySQL, partial_revokes ON)."""
    d = g.Dialect("MySQL", (8, 0, 36), partial_revokes=True)
    expected = g.role_grants("guest", (), read=("*",))
    held = g.held_privs(["GRANT ALL PRIVILEGES ON *.* TO `dj_guest`@`%`"], "MySQL", ("dj_guest", "%"))
    extra, missing = g.diff_privs(g.expected_privs(expected, "MySQL"), held)
    assert missing == frozenset() and extra == {g.Priv("*.*", "ALL PRIVILEGES")}
    stmts = [s.sql for s in g.fix_privs_statements(d, d.role("dj_guest"), expected, g.GrantDiff("dj_guest", extra))]
    assert stmts == ["REVOKE ALL PRIVILEGES ON *.* FROM 'dj_guest'", "GRANT SELECT ON *.* TO 'dj_guest'"]


def test_account_admin_sql_on_both_flavors() -> None:
    for flavor, version in (("MariaDB", (10, 11)), ("MySQL", (8, 0, 36))):
        d = g.Dialect(flavor, version)
        assert d.lock("al", "%") == "ALTER USER 'al'@'%' ACCOUNT LOCK"
        assert d.lock("al", "%", locked=False) == "ALTER USER 'al'@'%' ACCOUNT UNLOCK"
        assert d.drop_user("al", "10.0.%") == "DROP USER 'al'@'10.0.%'"
    assert "mysql.global_priv" in g.Dialect("MariaDB", (10, 11)).locked_accounts_sql()
    assert g.Dialect("MySQL", (8, 0)).locked_accounts_sql() == \
        "SELECT User, Host FROM mysql.user WHERE account_locked = 'Y'"


def test_missing_is_granted_before_extras_are_revoked() -> None:
    """Moving a role from `%` to `%\\_%`: never a moment where it reads nothing."""
    d = g.Dialect("MariaDB", (10, 11))
    expected = g.role_grants("guest", (), read=(g.LAB_SCHEMAS,))
    held = g.held_privs(["GRANT SELECT ON `%`.* TO `dj_guest`"], "MariaDB", ("dj_guest", None))
    extra, missing = g.diff_privs(g.expected_privs(expected, "MariaDB"), held)
    stmts = [s.sql for s in g.fix_privs_statements(d, d.role("dj_guest"), expected,
                                                   g.GrantDiff("dj_guest", extra, missing))]
    assert stmts == ["GRANT SELECT ON `%\\_%`.* TO `dj_guest`", "REVOKE SELECT ON `%`.* FROM `dj_guest`"]
