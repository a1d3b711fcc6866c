"""Fixtures of the database-backup tests: a small lab schema and a config pointing at the test server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from djtui.services.database import Database


@pytest.fixture
def lab_schema(server, admin_conn, schema_name: str) -> str:
    """A schema with a few tables, a BLOB column, a trigger and known row counts."""
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema_name}`")
        cur.execute(f"CREATE TABLE `{schema_name}`.subject (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{schema_name}`.`odd``name` (id INT PRIMARY KEY, data LONGBLOB) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{schema_name}`.audit (n INT) ENGINE=InnoDB")
        cur.execute(f"CREATE TRIGGER `{schema_name}`.trg AFTER INSERT ON `{schema_name}`.subject "
                    f"FOR EACH ROW INSERT INTO `{schema_name}`.audit VALUES (NEW.id)")
        cur.executemany(f"INSERT INTO `{schema_name}`.subject VALUES (%s, %s)",
                        [(i, f"mouse {i}") for i in range(37)])
        cur.executemany(f"INSERT INTO `{schema_name}`.`odd``name` VALUES (%s, %s)",
                        [(i, bytes(range(256)) * 4) for i in range(5)])
    return schema_name


@pytest.fixture
def db(server) -> Iterator[Database]:
    d = Database(server.settings)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def cli_config(server, tmp_path: Path, config_writer) -> Path:
    text = f"""
database:
  host: 127.0.0.1
  port: {server.port}
  user: djadmin
  password: "{server.password.reveal()}"
dbbackup:
  out_dir: "{tmp_path / 'backups'}"
  keep_daily: 2
  keep_weekly: 1
  keep_monthly: 1
  parallel: 2
audit_log: "{tmp_path / 'audit.jsonl'}"
state_dir: "{tmp_path / 'state'}"
"""
    return config_writer(tmp_path / "djtui.yaml", text)
