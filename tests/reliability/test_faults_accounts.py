"""The database connection KILLed in the middle of a role change: no half-made account, no stray grant.

Roles are server-wide objects (MariaDB lets only holders of a role's ADMIN OPTION grant it), so
these tests run on a private server of their own: `roles init` here must not leave the shared
test server's roles owned by a throwaway user.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from djtui.services.servers.mariadb import PrivateServer

from ._r1_lab import R1Lab, lab_at, wait_for


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServer]:
    srv = PrivateServer(tmp_path_factory.mktemp("r1roles"), buffer_pool_mb=64)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def lab(own_server, tmp_path) -> Iterator[R1Lab]:
    with lab_at(own_server, tmp_path) as lab:
        yield lab


def outcomes(lab: R1Lab, action: str) -> list[dict]:
    return [e for e in lab.audit() if e.get("event") == "outcome" and e.get("action") == action]


def account_exists(lab: R1Lab, user: str) -> bool:
    conn = lab.server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (user,))
            return bool(cur.fetchone()[0])
    finally:
        conn.close()


def grants_of(lab: R1Lab, grantee: str) -> str:
    conn = lab.server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SHOW GRANTS FOR {grantee}")
            return "\n".join(r[0] for r in cur.fetchall())
    finally:
        conn.close()


def test_connection_killed_during_users_add_leaves_no_half_made_account(lab):
    assert lab.cli("roles", "init").returncode == 0
    name = f"r1u{os.getpid() % 10000}"
    proc = lab.start("users", "add", name, "--role", "user", pause=2)
    wait_for(lambda: account_exists(lab, name))  # CREATE USER ran; GRANT of the role has not
    assert lab.kill_connections()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "undone: DROP USER" in err, err
    assert not account_exists(lab, name)  # no account without its role
    (outcome,) = outcomes(lab, "users-add") or outcomes(lab, "accounts")
    error = outcome["details"]["error"]
    assert outcome["status"] == "failed" and ("Lost connection" in error or "2013" in error)
    res = lab.cli("users", "add", name, "--role", "user")  # and the same command now just works
    assert res.returncode == 0, res.stdout + res.stderr
    assert "dj_user" in grants_of(lab, f"'{name}'@'%'")
    conn = lab.server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER '{name}'@'%'")
    finally:
        conn.close()


def test_connection_killed_during_add_module_takes_the_grant_back(lab):
    assert lab.cli("roles", "init").returncode == 0
    module = f"r1m{os.getpid() % 10000}"
    lab.write_config(extra=f"accounts:\n  user_can_create: false\n  shared_prefixes: [{module}]\n")
    lab.config_path.write_text(lab.config_path.read_text().replace("accounts:\n  shared_prefixes: [r1mod]\n", ""))
    proc = lab.start("roles", "add-module", module, pause=2)
    wait_for(lambda: module in grants_of(lab, "dj_user"))  # GRANT ALL ran; REVOKE CREATE has not
    assert lab.kill_connections()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "undone: REVOKE ALL PRIVILEGES" in err, err
    assert module not in grants_of(lab, "dj_user")  # never left holding CREATE on the module
    res = lab.cli("roles", "add-module", module)
    assert res.returncode == 0, res.stdout + res.stderr
    grants = [g for g in grants_of(lab, "dj_user").splitlines() if module in g]
    assert grants and "CREATE," not in grants[0] and "ALL PRIVILEGES" not in grants[0], grants
