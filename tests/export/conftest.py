"""Fixtures of the export tests: a Database on the suite's private server."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from djtui.services.database import Database


@pytest.fixture
def db(server) -> Iterator[Database]:
    database = Database(server.settings)
    try:
        yield database
    finally:
        database.close()


def config_text(server, tmp_path) -> str:
    return (f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
            f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
            f"state_dir: {tmp_path}/state\n")


@pytest.fixture
def schema(server, schema_name) -> Iterator[str]:
    """``schema_name``, whose databases are dropped with foreign-key checks off (cross-database FKs)."""
    yield schema_name
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                        (schema_name.replace("_", "\\_") + "%",))
            for (name,) in cur.fetchall():
                cur.execute(f"DROP DATABASE `{name}`")
    finally:
        conn.close()


_labs = itertools.count()


@dataclass
class BackendLab:
    """A test's own schemas on one backend: ``conn`` (the admin's, autocommit on PostgreSQL), ``db``,
    ``prefix`` (every schema the test makes starts with it) and the server's ``dialect``."""

    conn: Any
    db: Database
    prefix: str

    @property
    def dialect(self) -> Any:
        return self.db.dialect


@pytest.fixture
def backend_lab(db_server) -> Iterator[BackendLab]:
    """``db_server`` (MariaDB, then PostgreSQL) with a fresh schema prefix, dropped afterwards."""
    prefix = f"b{os.getpid()}_{next(_labs)}"
    conn = db_server.connect()
    db = Database(db_server.settings)
    try:
        yield BackendLab(conn, db, prefix)
    finally:
        db.close()
        with conn.cursor() as cur:
            if db_server.backend == "postgresql":
                cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (prefix + "%",))
                for (name,) in cur.fetchall():
                    cur.execute(f'DROP SCHEMA "{name}" CASCADE')
            else:
                cur.execute("SET FOREIGN_KEY_CHECKS = 0")
                cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                            (prefix + "%",))
                for (name,) in cur.fetchall():
                    cur.execute(f"DROP DATABASE `{name}`")
        conn.close()
