"""Fixtures of the export tests: a Database on the suite's private server."""

from __future__ import annotations

from collections.abc import Iterator

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
