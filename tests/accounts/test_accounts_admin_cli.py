"""`users set-role|lock|unlock|drop` (issue 13.9): plan, typed confirmation, apply, audit; proven by logging in."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pymysql
import pytest

from djtui.cli import main
from djtui.services.accounts import AccountsService
from djtui.services.servers.mariadb import PrivateServer
from tests.conftest import write_config

from .conftest import login, unique


@pytest.fixture(scope="module")
def cfg(server: PrivateServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("acct_admin")
    return write_config(tmp / "djtui.yaml", (
        f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
        f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
        f"state_dir: {tmp}/state\n"))


def run(cfg: Path, *argv: str) -> int:
    return main(["--config", str(cfg), *argv])


@pytest.fixture
def guest(service: AccountsService, cleanup: Callable[..., None]) -> tuple[str, str]:
    service.apply(service.plan_roles_init())
    name = unique("adm_")
    cleanup(user=name, schema=name)
    plan, pw = service.plan_add_user(name, "guest")
    service.apply(plan)
    return name, pw


def _role_at_login(server: PrivateServer, name: str, pw: str) -> str | None:
    conn = login(server, name, pw)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_ROLE()")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_set_role_changes_what_the_user_can_do(server: PrivateServer, cfg: Path, capsys, guest) -> None:
    name, pw = guest
    assert run(cfg, "users", "set-role", name, "user", "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"REVOKE `dj_guest` FROM '{name}'@'%';" in out and f"GRANT `dj_user` TO '{name}'@'%';" in out
    assert f"SET DEFAULT ROLE `dj_user` FOR '{name}'@'%';" in out
    assert f"GRANT ALL PRIVILEGES ON `{name.replace('_', chr(92) + '_')}\\_%`.* TO '{name}'@'%';" in out
    assert _role_at_login(server, name, pw) == "dj_guest"  # the dry run changed nothing
    assert run(cfg, "users", "set-role", name, "user", "--confirm", "someone") == 2
    assert "does not match" in capsys.readouterr().err
    assert run(cfg, "users", "set-role", name, "user", "--confirm", name) == 0
    capsys.readouterr()
    assert _role_at_login(server, name, pw) == "dj_user"
    conn = login(server, name, pw)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}_own`")  # the own prefix came with the role
    finally:
        conn.close()
    assert run(cfg, "users", "check", "--json") in (0, 1)
    report = json.loads(capsys.readouterr().out)
    assert not [u for u in report["users"] if u["user"] == name]  # no drift after the change
    assert run(cfg, "users", "set-role", name, "guest", "--confirm", name) == 0
    assert f"REVOKE ALL PRIVILEGES ON `{name.replace('_', chr(92) + '_')}\\_%`.*" in capsys.readouterr().out
    assert _role_at_login(server, name, pw) == "dj_guest"


def test_lock_and_unlock(server: PrivateServer, cfg: Path, capsys, guest) -> None:
    name, pw = guest
    assert run(cfg, "users", "lock", name, "--confirm", name) == 0
    assert f"ALTER USER '{name}'@'%' ACCOUNT LOCK;" in capsys.readouterr().out
    with pytest.raises(pymysql.err.OperationalError):
        login(server, name, pw)
    assert run(cfg, "users", "list", "--json") == 0
    (row,) = [u for u in json.loads(capsys.readouterr().out)["users"] if u["user"] == name]
    assert row["locked"] is True
    assert run(cfg, "users", "lock", name) == 0  # already locked: nothing to do, no confirmation asked
    assert "already locked" in capsys.readouterr().out
    assert run(cfg, "users", "unlock", name, "--confirm", name) == 0
    assert f"ALTER USER '{name}'@'%' ACCOUNT UNLOCK;" in capsys.readouterr().out
    login(server, name, pw).close()


def test_drop_needs_drop_name_and_keeps_schemas(server: PrivateServer, cfg: Path, capsys, guest) -> None:
    name, pw = guest
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}_data`")
    conn.close()
    assert run(cfg, "users", "drop", name, "--confirm", name) == 2  # the word is `DROP <name>`
    login(server, name, pw).close()
    capsys.readouterr()
    assert run(cfg, "users", "drop", name, "--confirm", f"DROP {name}") == 0
    out = capsys.readouterr().out
    assert f"DROP USER '{name}'@'%';" in out and f"its 1 schema(s) stay: {name}_data" in out
    with pytest.raises(pymysql.err.OperationalError):
        login(server, name, pw)
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s", (f"{name}_data",))
        assert cur.fetchone()[0] == 1
    conn.close()
    audit = [json.loads(line) for line in (cfg.parent / "state" / "audit.jsonl").read_text().splitlines()]
    (intent,) = [e for e in audit if e["action"] == "users-drop" and e["event"] == "intent"
                 and e["target"] == f"{name}@%"]
    assert intent["actor"]["db_user"] == "djadmin" and intent["details"]["user"] == name


def test_the_account_djtui_runs_as_is_refused(cfg: Path, capsys) -> None:
    for argv in (("drop", "djadmin", "--host", "%", "--confirm", "DROP djadmin"),
                 ("lock", "djadmin", "--host", "%", "--confirm", "djadmin"),
                 ("set-role", "djadmin", "guest", "--host", "%", "--confirm", "djadmin")):
        assert run(cfg, "users", *argv) == 2, argv
        err = capsys.readouterr().err
        assert "is the account djtui runs as" in err and "another admin account" in err, err
    assert run(cfg, "users", "drop", "djadmin", "--confirm", "DROP djadmin") == 2
    assert "several hosts" in capsys.readouterr().err
    assert run(cfg, "users", "drop", unique("ghost_"), "--confirm", "DROP x") == 2
    assert "there is no user" in capsys.readouterr().err


def test_a_server_named_by_datajoint_variables_is_announced_before_acting(
        server: PrivateServer, tmp_path: Path, monkeypatch, capsys, guest) -> None:
    """djtui's config names no host: DJ_* (DataJoint's, not djtui's) chose the server, so before a grant
    changes anything djtui says which server answered; a dry run and djtui's own config say nothing."""
    name, _pw = guest
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for k, v in (("DJ_HOST", "127.0.0.1"), ("DJ_PORT", str(server.port)), ("DJ_USER", "djadmin"),
                 ("DJ_PASS", server.password.reveal())):
        monkeypatch.setenv(k, v)
    own = write_config(tmp_path / "djtui.yaml", f"state_dir: {tmp_path}/state\n")
    assert run(own, "users", "lock", name, "--dry-run") == 0
    assert "acting on server" not in capsys.readouterr().err
    assert run(own, "users", "lock", name, "--confirm", name) == 0
    err = capsys.readouterr().err
    assert f"acting on server 127.0.0.1:{server.port} (MariaDB" in err and "user djadmin@" in err, err
    assert "named by environment (DJ_*)" in err and server.password.reveal() not in err
    monkeypatch.delenv("DJ_HOST")
    monkeypatch.delenv("DJ_PORT")
    with_host = write_config(tmp_path / "own.yaml", f"database:\n  host: 127.0.0.1\n  port: {server.port}\n"
                                                    f"state_dir: {tmp_path}/state\n")
    assert run(with_host, "users", "unlock", name, "--confirm", name) == 0
    assert "acting on server" not in capsys.readouterr().err
