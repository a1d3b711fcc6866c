"""No credential anywhere on a PostgreSQL lab (issue 15): argv (ps), the environment of every dump and
client tool djtui starts (``/proc/<pid>/environ``), stdout, stderr, the command log, a failed
connection's message, and every file the runs left.

The lab's login role has the password ``Pw-Xy7#secret$zz``, given through ``database.password_env`` as on
the MariaDB lab (test_secrets.py). The dump and client tools are caught while they run by wrappers on
PATH that wait a moment before exec'ing the real program.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from djtui.config import Secret
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.backends.postgres import find_client_tool
from djtui.services.database import Database
from tests.names import unique

from ._r3_lab import PASSWORD, PASSWORD_ENV, ProcessWatch, files_containing

TOOLS = ("pg_dump", "pg_dumpall", "psql", "pg_restore")


@dataclass
class PgLab:
    root: Path
    server: object  # PrivatePostgres
    user: str
    schema: str
    config_path: Path
    env: dict[str, str]

    def cli(self, *argv: str, config: Path | None = None, ok: tuple[int, ...] = (0,),
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "djtui", "--config", str(config or self.config_path), *argv],
                           capture_output=True, text=True, env=self.env, input=stdin, timeout=240, cwd=self.root)
        assert r.returncode in ok, f"{argv}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def write_config(self, name: str, *, port: int | None = None, host: str = "127.0.0.1",
                     password_line: str | None = None) -> Path:
        r = self.root
        cfg = r / name
        cfg.write_text(f"""database:
  backend: postgresql
  name: {self.server.dbname}
  host: {host}
  port: {port or self.server.port}
  user: {self.user}
{password_line or f"  password_env: {PASSWORD_ENV}"}
  use_datajoint_config: false
  connect_timeout: 3
export:
  out_dir: {r}/exports
  schema_prefixes: [{self.schema}]
dbbackup:
  out_dir: {r}/backups
  parallel: 2
state_dir: {r}/state
audit_log: {r}/audit.jsonl
""")
        cfg.chmod(0o600)
        return cfg


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def lab(pg_server, tmp_path_factory) -> Iterator[PgLab]:
    root = tmp_path_factory.mktemp("r3pgsecrets")
    user, schema = unique("r3pgadm"), unique("r3pglab")
    conn = pg_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {_q(user)} LOGIN SUPERUSER PASSWORD %s", (PASSWORD,))
            cur.execute(f"CREATE SCHEMA {_q(schema)} AUTHORIZATION {_q(user)}")
            cur.execute(f"CREATE TABLE {_q(schema)}.subject (subject_id int PRIMARY KEY, name text)")
            cur.execute(f"CREATE TABLE {_q(schema)}.session (subject_id int REFERENCES {_q(schema)}.subject, "
                        "session_id int, PRIMARY KEY (subject_id, session_id))")
            cur.execute(f"ALTER TABLE {_q(schema)}.subject OWNER TO {_q(user)}")
            cur.execute(f"ALTER TABLE {_q(schema)}.session OWNER TO {_q(user)}")
            cur.executemany(f"INSERT INTO {_q(schema)}.subject VALUES (%s, %s)", [(i, f"m{i}") for i in range(5)])
            cur.executemany(f"INSERT INTO {_q(schema)}.session VALUES (%s, %s)", [(i % 5, i) for i in range(20)])
    finally:
        conn.close()
    for sub in ("exports", "backups", "state", "wrap"):
        (root / sub).mkdir()
    for tool in TOOLS:
        real = find_client_tool(tool)
        (root / "wrap" / tool).write_text(f"#!/bin/sh\nsleep 0.4\nexec {real} \"$@\"\n")
        (root / "wrap" / tool).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "PG"))}
    env[PASSWORD_ENV] = PASSWORD
    env["HOME"] = str(root)
    env["PATH"] = f"{root / 'wrap'}:{env['PATH']}"
    lab = PgLab(root, pg_server, user, schema, root / "djtui.yaml", env)
    lab.write_config("djtui.yaml")
    try:
        yield lab
    finally:
        conn = pg_server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (schema,))
                for (name,) in cur.fetchall():
                    cur.execute(f"DROP SCHEMA {_q(name)} CASCADE")
                cur.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (user,))
                for (name,) in cur.fetchall():
                    cur.execute(f"DROP OWNED BY {_q(name)} CASCADE")
                    cur.execute(f"DROP ROLE {_q(name)}")
        finally:
            conn.close()


def test_cli_paths_on_postgresql_leave_no_password(lab: PgLab) -> None:
    runs: list[tuple[str, subprocess.CompletedProcess[str]]] = []
    leaf = f"{lab.schema}.session:session_id = 3"
    with ProcessWatch(environ_of=tuple(t.encode() for t in TOOLS)) as watch:
        runs.append(("doctor", lab.cli("doctor", ok=(0, 1))))
        runs.append(("export plan", lab.cli("export", "plan", "--leaf", leaf)))
        for fmt in ("sql", "script", "docker"):
            runs.append((f"export write {fmt}", lab.cli("export", "write", "--leaf", leaf, "--format", fmt,
                                                         "--out", str(lab.root / "exports" / fmt))))
        runs.append(("export verify", lab.cli("export", "verify", str(lab.root / "exports" / "sql"))))
        r = lab.cli("dbbackup", "run", "--no-copy")
        runs.append(("dbbackup run", r))
        backup_dir = Path(r.stdout.strip().splitlines()[-1])
        runs.append(("dbbackup verify", lab.cli("dbbackup", "verify", str(backup_dir))))
        runs.append(("dbbackup list", lab.cli("dbbackup", "list")))
        runs.append(("users list", lab.cli("users", "list", ok=(0, 1))))
        bad_port = lab.write_config("bad-port.yaml", port=1)
        r = lab.cli("export", "plan", "--leaf", leaf, config=bad_port, ok=(2,))
        runs.append(("wrong port", r))
        assert "cannot connect" in r.stderr
        wrong_pw = lab.write_config("wrong-pw.yaml", password_line=f'  password: "{PASSWORD}-not"')
        r = lab.cli("users", "list", config=wrong_pw, ok=(2,))
        runs.append(("wrong password", r))
        assert "password authentication failed" in r.stderr and "hint:" in r.stderr
        inline = lab.write_config("inline.yaml", password_line=f'  password: "{PASSWORD}"', host="no-such-host.invalid")
        runs.append(("wrong host, inline password", lab.cli("doctor", config=inline, ok=(1, 2))))

    leaked = [f"{name}: {where}" for name, r in runs for where, text in (("stdout", r.stdout), ("stderr", r.stderr))
              if PASSWORD in text]
    assert leaked == []
    assert not [name for name, r in runs if "Traceback" in r.stderr]
    seen = {t for t in TOOLS if watch.saw(t.encode()) or any(t.encode() in c for c in watch.environs)}
    assert {"pg_dump", "psql"} <= seen, f"the watch never caught the tools: {seen}"
    assert watch.leaks(PASSWORD) == []
    assert watch.environ_leaks(PASSWORD) == []
    ours = {c: env for c, env in watch.environs.items() if f"HOME={lab.root}\0".encode() in env}  # not others'
    assert ours, "no tool of these runs was caught with its environment"
    assert not [c for c, env in ours.items() if b"PGPASSWORD=" in env]
    assert files_containing(lab.root, PASSWORD, exclude=(inline, wrong_pw)) == []


def test_the_command_log_and_a_failed_connection_hide_the_password(lab: PgLab) -> None:
    """In process: the command log of a session that connected, queried and failed to connect holds no
    password, and the failed connection's message (libpq's words) names the user and the fix only."""
    good = replace(lab.server.settings, user=lab.user, password=Secret(PASSWORD))
    db = Database(good)
    try:
        assert db.query("SELECT current_user") == [(lab.user,)]
        db.query("SELECT %s::text", (PASSWORD,))  # a parameter that happens to be the password
    finally:
        db.close()
    wrong = Secret(PASSWORD + "-wrong")
    bad = Database(replace(good, password=wrong))
    try:
        with pytest.raises(UserError) as err:
            bad.query("SELECT 1")
        text = err.value.render()
        assert "password authentication failed" in text and "hint:" in text
        assert PASSWORD not in text and wrong.reveal() not in text
        assert "check the user name and password" in text
    finally:
        bad.close()
    entries = "\n".join(e.text for e in commandlog.entries())
    assert "SELECT current_user" in entries
    assert PASSWORD not in entries


async def test_every_screen_and_the_connection_error_on_postgresql_hide_the_password(lab: PgLab,
                                                                                      monkeypatch) -> None:
    from djtui.config import load_config
    from djtui.tui.app import ConnectionErrorScreen, DjtuiApp

    from .test_secrets import screen_text

    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    shown: dict[str, str] = {}
    app = DjtuiApp(config=load_config(lab.config_path))
    async with app.run_test(size=(160, 50)) as pilot:
        for _ in range(200):
            if app.ctx.db is not None:
                break
            await pilot.pause(0.05)
        assert app.ctx.db is not None, app.ctx.db_error
        assert "PostgreSQL" in screen_text(app)
        for key in "123456":
            await pilot.press(key)
            await pilot.pause(0.3)
            await app.workers.wait_for_complete()
            await pilot.pause()
            shown[f"screen {key}"] = screen_text(app)
        await pilot.press("L")
        await pilot.pause()
        shown["command log"] = screen_text(app)
        shown["notifications"] = "\n".join(n.message for n in app._notifications)
    assert "Command log" in shown["command log"]
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    cfg = lab.write_config("tui-wrong-pw.yaml", password_line=f'  password: "{PASSWORD}x"')
    app = DjtuiApp(config=load_config(cfg))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            if isinstance(app.screen, ConnectionErrorScreen):
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, ConnectionErrorScreen)
        for _ in range(100):
            await pilot.pause(0.05)
            text = screen_text(app)
            if "Cannot reach the database" in text:
                break
        shown["connection error"] = text
        assert "password authentication failed" in text
    assert [name for name, text in shown.items() if PASSWORD in text] == []
