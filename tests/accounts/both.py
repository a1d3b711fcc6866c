"""One face for the accounts tests that run on MariaDB and on PostgreSQL alike: a config for the CLI,
logging in, plain login accounts made by hand, and cleanup of what the tests made."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pymysql

from djtui.config import AccountSettings
from djtui.services.accounts import AccountsService
from djtui.services.database import Database
from tests.conftest import write_config

from .pg import config_text, pg_lab


@dataclasses.dataclass
class EitherServer:
    backend: str  # "mysql" | "postgresql"
    server: object
    cfg: Path
    tmp: Path
    settings: object
    dbname: str | None = None
    made: list[str] = dataclasses.field(default_factory=list)

    def key(self, name: str) -> str:
        return f"{name}@%" if self.backend == "mysql" else name

    def config_for(self, user: str, password: str, path: Path) -> Path:
        """A config that connects as ``user`` (the `passwd` and rights tests)."""
        text = self.cfg.read_text()
        text = text.replace("  user: djadmin\n", f"  user: {user}\n")
        text = text.replace(f"  password: {self.server.password.reveal()}\n", f"  password: {password}\n")
        return write_config(path, text)

    def can_login(self, user: str, password: str) -> bool:
        try:
            if self.backend == "mysql":
                pymysql.connect(host="127.0.0.1", port=self.server.port, user=user, password=password,
                                connect_timeout=5).close()
            else:
                psycopg2.connect(host="127.0.0.1", port=self.server.port, user=user, password=password,
                                 dbname=self.dbname, connect_timeout=5).close()
            return True
        except (pymysql.err.OperationalError, psycopg2.OperationalError):
            return False

    def create_login(self, user: str, password: str) -> None:
        """A login account with no djtui role, made by hand."""
        self.made.append(user)
        if self.backend == "mysql":
            conn = self.server.connect()
            with conn.cursor() as cur:
                cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        else:
            conn = self.server.connect(self.dbname)
            with conn.cursor() as cur:
                cur.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD %s', (password,))
        conn.close()

    def drop_made(self) -> None:
        for user in self.made:
            if self.backend == "mysql":
                conn = self.server.connect()
                with conn.cursor() as cur:
                    cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
            else:
                conn = self.server.connect(self.dbname)
                with conn.cursor() as cur:
                    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
                    if cur.fetchall():
                        cur.execute(f'REASSIGN OWNED BY "{user}" TO CURRENT_USER; DROP OWNED BY "{user}"; '
                                    f'DROP ROLE "{user}"')
            conn.close()


def _init_roles(settings: object) -> None:
    db = Database(settings)
    try:
        service = AccountsService(db, AccountSettings())
        service.apply(service.plan_roles_init())
    finally:
        db.close()


@contextmanager
def either_server(srv: object, tmp: Path) -> Iterator[EitherServer]:
    if getattr(srv, "backend", "mysql") == "postgresql":
        from .conftest import unique
        with pg_lab(srv, tmp, unique("either_")) as lab:  # type: ignore[arg-type]
            lab.sql("CREATE SCHEMA common_either", "CREATE TABLE common_either.t (id int PRIMARY KEY)")
            either = EitherServer("postgresql", srv, lab.cfg, tmp, lab.settings, lab.dbname)
            _init_roles(either.settings)
            try:
                yield either
            finally:
                either.drop_made()
        return
    text = config_text(srv, "unused", tmp).replace("  backend: postgresql\n  name: unused\n", "")  # type: ignore[arg-type]
    either = EitherServer("mysql", srv, write_config(tmp / "djtui.yaml", text), tmp, srv.settings)  # type: ignore[attr-defined]
    _init_roles(either.settings)
    try:
        yield either
    finally:
        either.drop_made()
