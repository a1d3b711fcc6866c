"""`djtui roles|users|passwd` end to end on the private server: plans, exit codes, nothing changed on bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from djtui.cli import main
from djtui.services.accounts import AccountsService
from djtui.services.servers.mariadb import PrivateServer
from tests.conftest import write_config

from .conftest import login, unique


@pytest.fixture(scope="module")
def cfg(server: PrivateServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("acct_cli")
    return write_config(tmp / "djtui.yaml", (
        f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
        f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
        f"accounts:\n  password_expiry_days: 180\n"
        f"state_dir: {tmp}/state\n"))


@pytest.fixture(scope="module", autouse=True)
def roles_ready(service: AccountsService) -> None:
    service.apply(service.plan_roles_init())


def run(cfg: Path, *argv: str) -> int:
    return main(["--config", str(cfg), *argv])


def test_roles_init_dry_run_and_idempotent(any_server, capsys) -> None:
    cfg = any_server.cfg
    assert run(cfg, "roles", "init", "--dry-run") == 0
    assert "nothing to do" in capsys.readouterr().out
    assert run(cfg, "roles", "init") == 0


def test_users_add_prints_plan_then_password_once(server: PrivateServer, cfg: Path, capsys,
                                                  cleanup: Callable[..., None]) -> None:
    name = unique("cli_")
    cleanup(user=name)
    assert run(cfg, "users", "add", name, "--role", "collab", "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"CREATE USER '{name}'@'%' IDENTIFIED BY '****' PASSWORD EXPIRE INTERVAL 180 DAY;" in out
    assert f"SET DEFAULT ROLE `dj_collab` FOR '{name}'@'%';" in out
    assert "dry run: nothing was changed" in out
    assert run(cfg, "users", "list", "--json") == 0
    assert name not in [u["user"] for u in json.loads(capsys.readouterr().out)["users"]]

    assert run(cfg, "users", "add", name, "--role", "collab") == 0
    out = capsys.readouterr().out
    pw = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(f"password for {name}:"))
    assert out.index("CREATE USER") < out.index("password for")
    assert out.count(pw) == 1
    login(server, name, pw).close()
    assert run(cfg, "users", "list", "--json") == 0
    row = next(u for u in json.loads(capsys.readouterr().out)["users"] if u["user"] == name)
    assert row["role"] == "dj_collab" and row["default_role_active"] and row["drift"] == []
    audit = (cfg.parent / "state" / "audit.jsonl").read_text()
    assert name in audit and pw not in audit

    assert run(cfg, "users", "add", name, "--role", "guest") == 2
    assert "already exists" in capsys.readouterr().err


def test_password_stdin_and_reset(server: PrivateServer, cfg: Path, capsys, monkeypatch,
                                  cleanup: Callable[..., None]) -> None:
    name = unique("stdin_")
    cleanup(user=name)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Typed-by-admin-77\n"))
    assert run(cfg, "users", "add", name, "--role", "guest", "--password-stdin") == 0
    out = capsys.readouterr().out
    assert "Typed-by-admin-77" not in out and "password for" not in out
    login(server, name, "Typed-by-admin-77").close()
    assert run(cfg, "users", "reset-password", name) == 0
    out = capsys.readouterr().out
    assert f"ALTER USER '{name}'@'%' IDENTIFIED BY '****';" in out
    new = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(f"password for {name}:"))
    login(server, name, new).close()


@pytest.mark.parametrize("bad", ["o'brien", "a`b", "wild%", "x y", "dj_admin"])
def test_hostile_names_exit_2_and_change_nothing(any_server, capsys, bad: str) -> None:
    cfg = any_server.cfg
    assert run(cfg, "users", "list", "--json") == 0
    before = json.loads(capsys.readouterr().out)["users"]
    assert run(cfg, "users", "add", bad, "--role", "user") == 2
    err = capsys.readouterr().err
    assert "not a usable user name" in err or "name of a djtui role" in err
    if bad != "dj_admin":  # a fine module prefix, only not a user name
        assert run(cfg, "roles", "add-module", bad) == 2
    assert run(cfg, "users", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out)["users"] == before


def test_bad_host_exit_2(any_server, capsys) -> None:
    cfg = any_server.cfg
    assert run(cfg, "users", "add", unique("h_"), "--role", "guest", "--host", "x'@'%") == 2
    assert "--host" in capsys.readouterr().err


def test_readonly_refuses_writes(any_server, capsys) -> None:
    cfg = any_server.cfg
    assert main(["--config", str(cfg), "--readonly", "users", "add", unique("ro_"), "--role", "guest"]) == 2
    assert "read-only" in capsys.readouterr().err
    assert main(["--config", str(cfg), "--readonly", "roles", "add-module", "newmod"]) == 2
    assert main(["--config", str(cfg), "--readonly", "users", "add", unique("ro_"), "--role", "guest",
                 "--dry-run"]) == 0


def test_users_check_exit_1_on_drift(server: PrivateServer, cfg: Path, capsys,
                                     cleanup: Callable[..., None]) -> None:
    name = unique("chk_")
    cleanup(user=name)
    assert run(cfg, "users", "add", name, "--role", "user") == 0
    capsys.readouterr()
    admin = server.connect()
    try:
        with admin.cursor() as cur:
            cur.execute(f"GRANT DROP ON `common\\_%`.* TO '{name}'@'%'")  # beside the role: drift too
            cur.execute(f"REVOKE ALL PRIVILEGES ON `{name.replace('_', chr(92) + '_')}\\_%`.* FROM '{name}'@'%'")
        assert run(cfg, "users", "check", "--json") == 1
        report = json.loads(capsys.readouterr().out)
        mine = [d for d in report["drift"] if name in d]
        own = name.replace("_", "\\_")
        assert mine == [f"user {name}@%: - ALL PRIVILEGES ON `{own}\\_%`.*", f"user {name}@%: + DROP ON `common\\_%`.*"]
        (entry,) = [u for u in report["users"] if u["user"] == name]
        assert entry["missing"][0].endswith(f"ON `{own}\\_%`.*") and entry["extra"] == ["DROP ON `common\\_%`.*"]
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER '{name}'@'%'")
        admin.close()


def test_passwd_without_terminal_and_no_echo(any_server, tmp_path: Path) -> None:
    """`djtui passwd` for the configured user; the new password never shows in argv or output."""
    name = unique("own_")
    any_server.create_login(name, "First-pass-123")
    svc_cfg = any_server.config_for(name, "First-pass-123", tmp_path / "me.yaml")
    proc = subprocess.run([sys.executable, "-m", "djtui", "--config", str(svc_cfg), "passwd"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "--password-stdin" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "djtui", "--config", str(svc_cfg), "passwd", "--password-stdin"],
                          capture_output=True, text=True, timeout=60, input="Second-pass-456\n")
    assert proc.returncode == 0, proc.stderr
    assert "Second-pass-456" not in proc.stdout + proc.stderr
    assert any_server.can_login(name, "Second-pass-456")
    assert not any_server.can_login(name, "First-pass-123")


def test_account_without_rights_gets_a_clear_error(server: PrivateServer, tmp_path: Path, capsys,
                                                   cleanup: Callable[..., None]) -> None:
    name = unique("norole_")
    cleanup(user=name)
    admin = server.connect()
    with admin.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'No-rights-123'")
    admin.close()
    me = write_config(tmp_path / "me.yaml", (
        f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: {name}\n"
        f"  password: No-rights-123\n  use_datajoint_config: false\nstate_dir: {tmp_path}/state\n"))
    assert main(["--config", str(me), "users", "list"]) == 2
    err = capsys.readouterr().err
    assert "may not read users and grants" in err and "admin" in err
