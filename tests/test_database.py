"""Connections honour DataJoint's conventions; the server's flavor and version are detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from djtui.config import parse_config
from djtui.errors import UserError
from djtui.services.backends.mysql import parse_server_version
from djtui.services.database import Database, resolve_connection


def _db(text: str = ""):
    return parse_config(text).database


def test_defaults(tmp_path):
    s = resolve_connection(_db(), env={}, cwd=tmp_path, home=tmp_path)
    assert (s.host, s.port, s.user, s.password) == ("localhost", 3306, None, None)


def test_precedence_of_every_source(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    (proj / ".git").mkdir()
    (home / ".datajoint_config.json").write_text(json.dumps(
        {"database.host": "home-host", "database.user": "home-user", "database.password": "home-pw"}))
    s = resolve_connection(_db(), env={}, cwd=proj / "sub", home=home)
    assert (s.host, s.user, s.password.reveal()) == ("home-host", "home-user", "home-pw")

    (proj / "sub" / "dj_local_conf.json").write_text(json.dumps({"database.host": "local-host",
                                                                   "database.port": 3307}))
    s = resolve_connection(_db(), env={}, cwd=proj / "sub", home=home)
    assert (s.host, s.port, s.user) == ("local-host", 3307, "home-user")

    # DataJoint 2.x: datajoint.json found upward (stops at .git), secrets beside it
    (proj / "datajoint.json").write_text(json.dumps({"database": {"host": "dj2-host", "user": "dj2-user"}}))
    (proj / ".secrets").mkdir()
    (proj / ".secrets" / "database.password").write_text("secret-pw\n")
    s = resolve_connection(_db(), env={}, cwd=proj / "sub", home=home)
    assert (s.host, s.user, s.password.reveal()) == ("dj2-host", "dj2-user", "secret-pw")

    env = {"DJ_HOST": "env-host", "DJ_USER": "env-user", "DJ_PASS": "env-pw", "DJ_PORT": "3310"}
    s = resolve_connection(_db(), env=env, cwd=proj / "sub", home=home)
    assert (s.host, s.port, s.user, s.password.reveal()) == ("env-host", 3310, "env-user", "env-pw")

    s = resolve_connection(_db("database:\n  host: cfg-host\n  user: cfg-user\n  password_env: MYPW\n"),
                           env={**env, "MYPW": "from-var"}, cwd=proj / "sub", home=home)
    assert (s.host, s.port, s.user, s.password.reveal()) == ("cfg-host", 3310, "cfg-user", "from-var")
    assert any("config file" in src for src in s.sources)

    s = resolve_connection(_db("database:\n  use_datajoint_config: false\n"), env=env, cwd=proj / "sub", home=home)
    assert (s.host, s.user) == ("localhost", None)


def test_missing_password_env_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="NOPE is not set"):
        resolve_connection(_db("database:\n  password_env: NOPE\n"), env={}, cwd=tmp_path, home=tmp_path)


def test_broken_datajoint_json_is_a_user_error(tmp_path):
    (tmp_path / "dj_local_conf.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot read DataJoint config"):
        resolve_connection(_db(), env={}, cwd=tmp_path, home=tmp_path)


@pytest.mark.parametrize(("version", "comment", "flavor", "number"), [
    ("10.11.19-MariaDB-0+deb12u1", "Debian 12", "MariaDB", "10.11.19"),
    ("8.0.36", "MySQL Community Server - GPL", "MySQL", "8.0.36"),
    ("8.4.2-log", "Source distribution", "MySQL", "8.4.2"),
    ("5.5.5-10.6.12-MariaDB", "mariadb.org binary distribution", "MariaDB", "5.5.5"),
])
def test_parse_server_version(version, comment, flavor, number):
    assert parse_server_version(version, comment) == (flavor, number)


def test_server_info_from_live_server(server):
    db = Database(server.settings)
    try:
        info = db.server_info()
        assert info.flavor == server.flavor
        assert info.version_tuple >= (5,)
        assert info.current_user.startswith("djadmin@")
        assert "mysql" not in db.schemas()
    finally:
        db.close()


async def test_async_queries_run_off_the_loop(server):
    import threading
    db = Database(server.settings)
    try:
        loop_thread = threading.get_ident()
        seen = await db.run(threading.get_ident)
        assert seen != loop_thread
        rows = await db.aquery("SELECT %s + 1", (41,))
        assert rows[0][0] == 42
    finally:
        db.close()


def test_wrong_password_is_clear_and_masked(server):
    from dataclasses import replace

    from djtui.config import Secret
    bad = Database(replace(server.settings, password=Secret("wrong-password-xyz")))
    with pytest.raises(UserError) as info:
        bad.server_info()
    text = info.value.render()
    assert "cannot connect" in text and "hint:" in text
    assert "wrong-password-xyz" not in text
    bad.close()


def test_datajoint_is_not_imported_by_the_cli_or_app_shell():
    import subprocess
    import sys
    code = ("import sys, djtui.cli, djtui.tui.app, djtui.services.database; "
            "print('datajoint' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "False", out.stderr
