"""PostgreSQL helpers for the accounts tests: a database of the module's own on the suite's private
PostgreSQL, a config file for the CLI, cleanup of roles, and logging in with the real ``psql``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from djtui.domain.dialects import POSTGRES
from djtui.services.backends.postgres import find_client_tool
from djtui.services.database import Database
from djtui.services.servers.postgres import PrivatePostgres
from tests.conftest import write_config


@dataclasses.dataclass
class PgLab:
    """A database of its own (privileges and default privileges are per database; roles are not)."""

    server: PrivatePostgres
    dbname: str
    cfg: Path
    tmp: Path
    users: list[str] = dataclasses.field(default_factory=list)

    @property
    def settings(self):
        return dataclasses.replace(self.server.settings, dbname=self.dbname)

    def database(self) -> Database:
        return Database(self.settings)

    def sql(self, *statements: str) -> list:
        """Run statements as the superuser in the lab's database; the rows of the last one."""
        conn = self.server.connect(self.dbname)
        try:
            with conn.cursor() as cur:
                for st in statements:
                    cur.execute(st)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def psql(self, user: str, password: str, sql: str) -> subprocess.CompletedProcess:
        """``psql`` as ``user``; the password comes from a 0600 PGPASSFILE, never argv."""
        passfile = self.tmp / f"pgpass_{user}"
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            esc = password.replace("\\", "\\\\").replace(":", "\\:")
            fh.write(f"127.0.0.1:{self.server.port}:{self.dbname}:{user}:{esc}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGPASSFILE"] = str(passfile)
        argv = [find_client_tool("psql") or "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", "127.0.0.1", "-p", str(self.server.port), "-U", user, "-d", self.dbname,
                "-w", "-c", sql]
        assert password not in " ".join(argv)
        try:
            return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
        finally:
            passfile.unlink()


def config_text(server: PrivatePostgres, dbname: str, tmp: Path) -> str:
    return (f"database:\n  backend: postgresql\n  name: {dbname}\n  host: 127.0.0.1\n  port: {server.port}\n"
            f"  user: djadmin\n  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
            f"state_dir: {tmp}/state\naudit_log: {tmp}/audit.jsonl\n")


@contextmanager
def pg_lab(server: PrivatePostgres, tmp: Path, dbname: str) -> Iterator[PgLab]:
    server.create_database(dbname)
    lab = PgLab(server, dbname, write_config(tmp / "djtui.yaml", config_text(server, dbname, tmp)), tmp)
    try:
        yield lab
    finally:
        drop_users(lab, lab.users)
        conn = server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        finally:
            conn.close()


def drop_users(lab: PgLab, names: list[str]) -> None:
    """REASSIGN and DROP OWNED in the lab's database, then DROP ROLE (what `users drop` does)."""
    conn = lab.server.connect(lab.dbname)
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
                if not cur.fetchall():
                    continue
                who = POSTGRES.ident(name)
                cur.execute(f"REASSIGN OWNED BY {who} TO CURRENT_USER; DROP OWNED BY {who}; DROP ROLE {who}")
    finally:
        conn.close()
