"""MariaDB role admin: the account that ran `roles init` is not the only one that may grant the roles.

On MariaDB only holders of a role's ADMIN OPTION may grant it (ALL PRIVILEGES WITH GRANT OPTION is not
enough), and CREATE ROLE gives it to the creator alone. These tests drop accounts that hold role admin,
so they run on a private server of their own, never the suite's shared one.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pymysql
import pytest

from djtui.services.servers.mariadb import PrivateServer


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("roleadmin")
    srv = PrivateServer(root / "srv", buffer_pool_mb=64)
    srv.start()
    try:
        yield {"server": srv, "root": root}
    finally:
        srv.stop()


def make_admin(srv: PrivateServer, name: str) -> None:
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (name, f"{name}-Pass-123"))
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{name}'@'%' WITH GRANT OPTION")
    finally:
        conn.close()


def drop(srv: PrivateServer, name: str) -> None:
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("DROP USER %s@'%%'", (name,))
    finally:
        conn.close()


def cli(own: dict, as_user: str, *argv: str, extra: str = "") -> subprocess.CompletedProcess[str]:
    srv, root = own["server"], own["root"]
    cfg = root / f"{as_user}.yaml"
    cfg.write_text(f"database:\n  host: 127.0.0.1\n  port: {srv.port}\n  user: {as_user}\n"
                   f"  password: \"{as_user}-Pass-123\"\n  use_datajoint_config: false\n"
                   f"state_dir: {root}/state\naudit_log: {root}/audit.jsonl\n{extra}")
    cfg.chmod(0o600)
    return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), *argv], capture_output=True,
                          text=True, timeout=120)


def exists(srv: PrivateServer, name: str) -> bool:
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (name,))
            return bool(cur.fetchone()[0])
    finally:
        conn.close()


def test_other_admins_can_add_users_after_the_creator_is_dropped(own: dict) -> None:
    srv = own["server"]
    if srv.flavor != "MariaDB":
        pytest.skip("MySQL grants roles with ROLE_ADMIN, part of ALL PRIVILEGES")
    make_admin(srv, "adminA")
    make_admin(srv, "adminB")
    init = cli(own, "adminA", "roles", "init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert "GRANT `dj_user` TO 'adminB'@'%' WITH ADMIN OPTION;" in init.stdout
    assert "GRANT `dj_user` TO 'adminA'@'%' WITH ADMIN OPTION;" not in init.stdout  # the creator holds it
    drop(srv, "adminA")
    for n, kind in enumerate(("guest", "collab", "user", "admin")):
        res = cli(own, "adminB", "users", "add", f"fromb{n}", "--role", kind)
        assert res.returncode == 0, res.stdout + res.stderr
    check = cli(own, "adminB", "users", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ADMIN OPTION" not in check.stderr


def test_refused_role_grant_says_who_holds_admin_and_how_to_fix(own: dict) -> None:
    """An admin made after `roles init` is refused with a reason, not a bare (1698) Access denied."""
    srv = own["server"]
    if srv.flavor != "MariaDB":
        pytest.skip("MariaDB's role admin rule")
    make_admin(srv, "adminC")
    res = cli(own, "adminC", "users", "add", "fromc", "--role", "user")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "(1698)" in res.stderr
    assert "only accounts holding ADMIN OPTION on dj_user may grant it" in res.stderr, res.stderr
    assert "adminB@%" in res.stderr  # who holds it
    assert "GRANT `dj_user` TO 'adminC'@'%' WITH ADMIN OPTION" in res.stderr  # the fix
    assert "undone: DROP USER" in res.stderr and not exists(srv, "fromc")  # nothing half-made
    # `users list` as adminC warns nothing is wrong with the roles themselves; roles init by a holder fixes it
    fix = cli(own, "adminB", "roles", "init")
    assert fix.returncode == 0 and "TO 'adminC'@'%' WITH ADMIN OPTION" in fix.stdout, fix.stdout + fix.stderr
    assert cli(own, "adminB", "roles", "init", "--dry-run").stdout.count("WITH ADMIN OPTION") == 0
    res = cli(own, "adminC", "users", "add", "fromc", "--role", "user")
    assert res.returncode == 0, res.stdout + res.stderr


def test_role_nobody_may_grant_is_warned_with_the_recovery(own: dict) -> None:
    """Every holder of ADMIN OPTION dropped: `users check` warns, and the advised recovery works."""
    srv = own["server"]
    if srv.flavor != "MariaDB":
        pytest.skip("MariaDB's role admin rule")
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT User, Host FROM mysql.roles_mapping WHERE Role = 'dj_guest' AND Admin_option = 'Y'")
            holders = cur.fetchall()
            for user, host in holders:  # as if every holder had been dropped; this connection's account last
                if (user, host) != ("djadmin", "%"):
                    cur.execute("REVOKE dj_guest FROM %s@%s", (user, host))
            cur.execute("REVOKE dj_guest FROM 'djadmin'@'%'")
    finally:
        conn.close()
    make_admin(srv, "adminD")
    check = cli(own, "adminD", "users", "check")
    assert "nobody holds ADMIN OPTION on dj_guest" in check.stderr, check.stdout + check.stderr
    assert "INSERT INTO mysql.roles_mapping" in check.stderr
    refused = cli(own, "adminD", "users", "add", "fromd", "--role", "guest")
    assert refused.returncode == 1 and "no account at all" in refused.stderr, refused.stderr
    # the recovery the message gives, run as the server's admin
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO mysql.roles_mapping (Host, User, Role, Admin_option) "
                        "VALUES ('%', 'adminD', 'dj_guest', 'Y')")
            cur.execute("FLUSH PRIVILEGES")
    finally:
        conn.close()
    fix = cli(own, "adminD", "roles", "init")
    assert fix.returncode == 0, fix.stdout + fix.stderr
    res = cli(own, "adminB", "users", "add", "fromd", "--role", "guest")
    assert res.returncode == 0, res.stdout + res.stderr
    try:
        pymysql.connect(host="127.0.0.1", port=srv.port, user="adminD", password="adminD-Pass-123").close()
    except pymysql.err.MySQLError as exc:  # pragma: no cover - the account must still log in
        raise AssertionError(exc) from None


def test_read_scope_as_a_list_of_prefixes(own: dict) -> None:
    """`read_scope: [alice]`: roles read alice_* and the shared modules (added ones too), nothing else."""
    srv = own["server"]
    extra = "accounts:\n  read_scope: [alice]\n  shared_prefixes: [common]\n"
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            for schema in ("alice_a", "bob_b", "common_c", "newmod_d"):
                cur.execute(f"CREATE DATABASE {schema}")
                cur.execute(f"CREATE TABLE {schema}.t (i INT)")
    finally:
        conn.close()
    init = cli(own, "adminB", "roles", "init", extra=extra)
    assert init.returncode == 0, init.stdout + init.stderr
    assert "GRANT SELECT ON `alice\\_%`.* TO `dj_guest`;" in init.stdout
    assert "REVOKE SELECT ON `%\\_%`.* FROM `dj_guest`;" in init.stdout
    assert "bob_b" in init.stdout  # named: guests will no longer read it
    add = cli(own, "adminB", "roles", "add-module", "newmod", extra=extra)
    assert add.returncode == 0, add.stdout + add.stderr
    assert "GRANT SELECT ON `newmod\\_%`.* TO `dj_guest`;" in add.stdout
    res = subprocess.run([sys.executable, "-m", "djtui", "--config", str(own["root"] / "adminB.yaml"),
                          "users", "add", "listguest", "--role", "guest", "--password-stdin"],
                         input="List-guest-123\n", capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    guest = pymysql.connect(host="127.0.0.1", port=srv.port, user="listguest", password="List-guest-123",
                            autocommit=True)
    reads = {}
    try:
        for schema in ("alice_a", "bob_b", "common_c", "newmod_d", "mysql"):
            try:
                with guest.cursor() as cur:
                    cur.execute(f"SELECT * FROM {schema}.{'user' if schema == 'mysql' else 't'}")
                reads[schema] = True
            except pymysql.err.OperationalError:
                reads[schema] = False
    finally:
        guest.close()
    assert reads == {"alice_a": True, "bob_b": False, "common_c": True, "newmod_d": True, "mysql": False}
    check = cli(own, "adminB", "users", "check", extra=extra)
    assert check.returncode == 0, check.stdout + check.stderr
