"""Users created through djtui's CLI reach exactly their role's schemas, and nothing of `mysql`.

tests/accounts/test_accounts_live.py proves the role matrix through the service (read/write a shared
schema, create in own / shared / another's prefix). This file strengthens it where it was thin:
the users are made by the real `djtui roles init`, `roles add-module` and `users add` commands (the
operator's path), a module grant is included, reads and writes of ANOTHER user's existing schema are
checked (not only CREATE), and so is the `mysql` system schema, where password hashes live: with
the default `accounts.read_scope: lab` no non-admin role reads it; `read_scope: all` (Spyglass's `%`)
does, and is tested on a server of its own because it changes the roles server-wide.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from djtui.services.servers.mariadb import PrivateServer

from ._r3_lab import unique

KINDS = ("guest", "collab", "user", "admin")
DENIED = (1044, 1045, 1142, 1143, 1227, 1370)


def _can(conn: pymysql.connections.Connection, sql: str) -> bool:
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
        return True
    except pymysql.err.MySQLError as exc:
        assert exc.args[0] in DENIED, (sql, exc)
        return False


@pytest.fixture(scope="module")
def world(server, tmp_path_factory) -> Iterator[dict]:
    root: Path = tmp_path_factory.mktemp("r3roles")
    module = unique("r3mod")
    owner = unique("r3own")  # another user's prefix, with an existing schema and row
    names = {k: unique(f"r3{k}") for k in KINDS}
    passwords = {k: f"Role-{k}-Pw9!" for k in KINDS}
    cfg = root / "djtui.yaml"
    cfg.write_text(f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
                   f"  password: \"{server.password.reveal()}\"\n  use_datajoint_config: false\n"
                   f"state_dir: {root}/state\naudit_log: {root}/audit.jsonl\n")
    cfg.chmod(0o600)

    def cli(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), *argv], capture_output=True,
                           text=True, input=stdin, timeout=120)
        assert r.returncode == 0, f"{argv}: {r.stdout}\n{r.stderr}"
        return r

    cli("roles", "init")
    cli("roles", "add-module", module)
    for kind in KINDS:
        cli("users", "add", names[kind], "--role", kind, "--password-stdin", stdin=passwords[kind] + "\n")
    admin = server.connect()
    schemas = {"module": f"{module}_data", "other": f"{owner}_data"}
    with admin.cursor() as cur:
        for s in schemas.values():
            cur.execute(f"CREATE DATABASE `{s}`")
            cur.execute(f"CREATE TABLE `{s}`.t (id INT PRIMARY KEY)")
            cur.execute(f"INSERT INTO `{s}`.t VALUES (1)")
    admin.close()
    yield {"server": server, "names": names, "passwords": passwords, "schemas": schemas, "module": module}
    admin = server.connect()
    with admin.cursor() as cur:
        for kind in KINDS:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (names[kind],))
        cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'r3%'")
        for (s,) in cur.fetchall():
            if s.startswith((*names.values(), module, owner)):
                cur.execute(f"DROP DATABASE `{s}`")
        cur.execute(f"REVOKE ALL PRIVILEGES ON `{module.replace('_', chr(92) + '_')}\\_%`.* FROM dj_user")
    admin.close()


# (own prefix: select, insert, create) (another user's schema: select, insert, create in their prefix)
# (module: select, insert, create) (mysql schema: select user table, insert)
EXPECTED = {
    "guest": dict(own=(False, False, False), other=(True, False, False), module=(True, False, False),
                  mysql=(False, False)),
    "collab": dict(own=(True, True, True), other=(True, False, False), module=(True, False, False),
                   mysql=(False, False)),
    "user": dict(own=(True, True, True), other=(True, False, False), module=(True, True, True),
                 mysql=(False, False)),
    "admin": dict(own=(True, True, True), other=(True, True, True), module=(True, True, True),
                  mysql=(True, True)),
}


@pytest.mark.parametrize("kind", KINDS)
def test_role_reach(world, kind: str) -> None:
    srv = world["server"]
    name, pw = world["names"][kind], world["passwords"][kind]
    s = world["schemas"]
    conn = pymysql.connect(host="127.0.0.1", port=srv.port, user=name, password=pw, autocommit=True,
                           connect_timeout=5)
    own = f"{name}_mine"
    n = 10 + KINDS.index(kind)
    try:
        created_own = _can(conn, f"CREATE DATABASE `{own}`") and _can(conn, f"CREATE TABLE `{own}`.t (id INT)")
        got = dict(
            own=(_can(conn, f"SELECT * FROM `{own}`.t") if created_own else False,
                 _can(conn, f"INSERT INTO `{own}`.t VALUES ({n})") if created_own else False,
                 created_own),
            other=(_can(conn, f"SELECT * FROM `{s['other']}`.t"),
                   _can(conn, f"INSERT INTO `{s['other']}`.t VALUES ({n})"),
                   _can(conn, f"CREATE TABLE `{s['other']}`.t{kind} (id INT)")),
            module=(_can(conn, f"SELECT * FROM `{s['module']}`.t"),
                    _can(conn, f"INSERT INTO `{s['module']}`.t VALUES ({n})"),
                    _can(conn, f"CREATE TABLE `{s['module']}`.t{kind} (id INT)")),
            mysql=(None,
                   _can(conn, "INSERT INTO mysql.db (Host, Db, User) VALUES ('%', 'r3x', 'r3x')")),
        )
    finally:
        conn.close()
        admin = srv.connect()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{own}`")
            cur.execute("DELETE FROM mysql.db WHERE Db = 'r3x'")
        admin.close()
    mysql = got.pop("mysql")
    expected = dict(EXPECTED[kind])
    assert mysql[1] == expected.pop("mysql")[1], f"{kind}: INSERT into mysql.db: {mysql[1]}"
    assert got == expected, f"{kind}: got {got}"


@pytest.mark.parametrize("kind", ("guest", "collab", "user"))
def test_non_admin_cannot_read_password_hashes(world, kind: str) -> None:
    """Issue #7: with the default `accounts.read_scope: lab` the roles read `%\\_%`, not `%`: no `mysql`."""
    srv = world["server"]
    conn = pymysql.connect(host="127.0.0.1", port=srv.port, user=world["names"][kind],
                           password=world["passwords"][kind], autocommit=True, connect_timeout=5)
    try:
        tables = ("mysql.global_priv", "mysql.user") if srv.flavor == "MariaDB" else ("mysql.user",)
        readable = [t for t in tables if _can(conn, f"SELECT * FROM {t}")]
        lab_schema = _can(conn, f"SELECT * FROM `{world['schemas']['other']}`.t")
    finally:
        conn.close()
    assert not readable, f"{kind} can read {readable}"
    assert lab_schema  # and still reads the lab's schemas


def test_admin_still_reads_account_tables(world) -> None:
    """The check above can fail: the same query as dj_admin succeeds."""
    srv = world["server"]
    conn = pymysql.connect(host="127.0.0.1", port=srv.port, user=world["names"]["admin"],
                           password=world["passwords"]["admin"], autocommit=True, connect_timeout=5)
    try:
        assert _can(conn, "SELECT * FROM mysql.user")
    finally:
        conn.close()


# -- the Spyglass-compatible mode, on a server of its own (it changes the roles server-wide) -------------


@pytest.fixture(scope="module")
def compat(tmp_path_factory) -> Iterator[dict]:
    root: Path = tmp_path_factory.mktemp("r3compat")
    srv = PrivateServer(root / "srv", buffer_pool_mb=64)
    srv.start()

    def cli(scope: str, *argv: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        cfg = root / f"djtui-{scope}.yaml"
        cfg.write_text(f"database:\n  host: 127.0.0.1\n  port: {srv.port}\n  user: djadmin\n"
                       f"  password: \"{srv.password.reveal()}\"\n  use_datajoint_config: false\n"
                       f"accounts:\n  read_scope: {scope}\n"
                       f"state_dir: {root}/state\naudit_log: {root}/audit.jsonl\n")
        cfg.chmod(0o600)
        r = subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), *argv], capture_output=True,
                           text=True, input=stdin, timeout=120)
        if ok:
            assert r.returncode == 0, f"{argv}: {r.stdout}\n{r.stderr}"
        return r

    try:
        admin = srv.connect()
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE nounderscore")  # a schema only `%` covers
            cur.execute("CREATE TABLE nounderscore.t (id INT)")
        admin.close()
        yield {"server": srv, "cli": cli}
    finally:
        srv.stop()


def _guest_reads(srv: PrivateServer, table: str) -> bool:
    conn = pymysql.connect(host="127.0.0.1", port=srv.port, user="compatguest", password="Compat-guest-9!",
                           autocommit=True, connect_timeout=5)
    try:
        return _can(conn, f"SELECT * FROM {table}")
    finally:
        conn.close()


def test_compatible_read_scope_exposes_hashes_and_says_so(compat) -> None:
    """`read_scope: all` keeps Spyglass's `%`: the exposure is documented here, and every tool warns."""
    srv, cli = compat["server"], compat["cli"]
    init = cli("all", "roles", "init")
    assert "GRANT SELECT ON `%`.* TO `dj_guest`" in init.stdout
    assert "every account's password hash" in init.stdout  # the plan says what `%` means
    cli("all", "users", "add", "compatguest", "--role", "guest", "--password-stdin", stdin="Compat-guest-9!\n")
    table = "mysql.global_priv" if srv.flavor == "MariaDB" else "mysql.user"
    assert _guest_reads(srv, table)  # the exposure, as Spyglass has it
    assert _guest_reads(srv, "nounderscore.t")
    check = cli("all", "users", "check")
    assert "dj_guest can SELECT from `mysql`" in check.stderr, check.stderr
    listed = cli("all", "users", "list", "--json")
    assert any("dj_collab can SELECT from `mysql`" in w for w in json.loads(listed.stdout)["warnings"])
    doctor = cli("all", "doctor", ok=False)
    assert "dj_user can SELECT from `mysql`" in doctor.stdout + doctor.stderr

    # switching to the safe scope: roles init shows the new grant before the revoke, and names what is lost
    plan = cli("lab", "roles", "init", "--dry-run")
    sql = plan.stdout
    assert sql.index("GRANT SELECT ON `%\\_%`.* TO `dj_guest`") < sql.index("REVOKE SELECT ON `%`.* FROM `dj_guest`")
    assert "nounderscore" in sql  # the schemas guests will no longer read
    assert cli("lab", "users", "check", ok=False).returncode == 1  # `%` is drift under `lab`
    cli("lab", "roles", "init")
    assert not _guest_reads(srv, table)
    assert not _guest_reads(srv, "nounderscore.t")  # the price of the safe scope, named by the plan above
    assert _guest_reads(srv, "information_schema.schemata")
    check = cli("lab", "users", "check")
    assert "can SELECT from `mysql`" not in check.stderr + check.stdout
