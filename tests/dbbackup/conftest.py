"""Fixtures of the database-backup tests: a small lab schema and a config pointing at the test server."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# -- both backends (issue 15): the same lab on MariaDB and on PostgreSQL ---------------------------

_labs = itertools.count()

ODD = {"mysql": "odd`name", "postgresql": 'odd"name'}  # a table name the dump must quote


@dataclass
class Lab:
    server: Any  # PrivateServer | PrivatePostgres
    db: Database
    schema: str

    @property
    def backend(self) -> str:
        return self.server.backend  # "mysql" | "postgresql"

    @property
    def odd(self) -> str:
        return ODD[self.backend]

    def sql(self, *statements: str) -> None:
        conn = self.server.connect()
        try:
            with conn.cursor() as cur:
                for s in statements:
                    cur.execute(s)
            conn.commit()
        finally:
            conn.close()

    def rows(self, schema: str, table: str) -> list[tuple]:
        q = self.db.dialect.table(schema, table)
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                for r in self.db.query(f"SELECT * FROM {q} ORDER BY 1")]


def _make_pg_lab(conn, s: str) -> None:
    q = '"' + s.replace('"', '""') + '"'
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {q}")
        cur.execute(f"CREATE TABLE {q}.subject (id int PRIMARY KEY, name varchar(40))")
        cur.execute(f'CREATE TABLE {q}."odd""name" (id int PRIMARY KEY, data bytea)')
        cur.execute(f"CREATE TABLE {q}.audit (n int)")
        cur.execute(f"CREATE FUNCTION {q}.trg() RETURNS trigger LANGUAGE plpgsql AS "
                    f"$$ BEGIN INSERT INTO {q}.audit VALUES (NEW.id); RETURN NEW; END $$")
        cur.execute(f"CREATE TRIGGER trg AFTER INSERT ON {q}.subject FOR EACH ROW EXECUTE FUNCTION {q}.trg()")
        cur.executemany(f"INSERT INTO {q}.subject VALUES (%s, %s)", [(i, f"mouse {i}") for i in range(37)])
        cur.executemany(f'INSERT INTO {q}."odd""name" VALUES (%s, %s)',
                        [(i, bytes(range(256)) * 4) for i in range(5)])


def _drop_pg(conn, prefix: str) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,))
        for (name,) in cur.fetchall():
            cur.execute('DROP SCHEMA "{}" CASCADE'.format(name.replace('"', '""')))


@pytest.fixture
def lab(db_server) -> Iterator[Lab]:
    """The lab of ``lab_schema`` on each backend in turn (audit 37, odd name 5, subject 37 rows)."""
    name = f"t{os.getpid()}_{next(_labs)}_{'pg' if db_server.backend == 'postgresql' else 'my'}"
    conn = db_server.connect()
    try:
        if db_server.backend == "postgresql":
            _make_pg_lab(conn, name)
        else:
            _make_my_lab(conn, name)
            conn.commit()
    finally:
        conn.close()
    db = Database(db_server.settings)
    try:
        yield Lab(db_server, db, name)
    finally:
        db.close()
        conn = db_server.connect()
        try:
            if db_server.backend == "postgresql":
                _drop_pg(conn, name)
            else:
                with conn.cursor() as cur:
                    cur.execute("SET SESSION foreign_key_checks = 0")
                    cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                                (name.replace("_", "\\_") + "%",))
                    for (s,) in cur.fetchall():
                        cur.execute(f"DROP DATABASE `{s}`")
        finally:
            conn.close()


def _make_my_lab(conn, s: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{s}`")
        cur.execute(f"CREATE TABLE `{s}`.subject (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{s}`.`odd``name` (id INT PRIMARY KEY, data LONGBLOB) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{s}`.audit (n INT) ENGINE=InnoDB")
        cur.execute(f"CREATE TRIGGER `{s}`.trg AFTER INSERT ON `{s}`.subject "
                    f"FOR EACH ROW INSERT INTO `{s}`.audit VALUES (NEW.id)")
        cur.executemany(f"INSERT INTO `{s}`.subject VALUES (%s, %s)", [(i, f"mouse {i}") for i in range(37)])
        cur.executemany(f"INSERT INTO `{s}`.`odd``name` VALUES (%s, %s)",
                        [(i, bytes(range(256)) * 4) for i in range(5)])


def config_text(server, tmp_path: Path, extra: str = "") -> str:
    """A djtui.yaml for ``server`` (MariaDB or PostgreSQL) with the backups under ``tmp_path``."""
    pg = getattr(server, "backend", "") == "postgresql"
    backend = f"  backend: postgresql\n  name: {server.dbname}\n" if pg else ""
    return f"""
database:
{backend}  host: 127.0.0.1
  port: {server.port}
  user: djadmin
  password: "{server.password.reveal()}"
dbbackup:
  out_dir: "{tmp_path / 'backups'}"
  keep_daily: 2
  keep_weekly: 1
  keep_monthly: 1
  parallel: 2
{extra}audit_log: "{tmp_path / 'audit.jsonl'}"
state_dir: "{tmp_path / 'state'}"
"""


@pytest.fixture
def lab_config(lab: Lab, tmp_path: Path, config_writer) -> Path:
    """``cli_config`` for the lab's backend."""
    return config_writer(tmp_path / "djtui.yaml", config_text(lab.server, tmp_path))


@contextmanager
def serving_pg(server: Any, base: str) -> Iterator[Lab]:
    """The lab whose PostgreSQL schemas start with ``base`` (made by the caller), with a Database on it;
    its schemas are dropped afterwards."""
    db = Database(server.settings)
    try:
        yield Lab(server, db, base)
    finally:
        db.close()
        conn = server.connect()
        try:
            _drop_pg(conn, base)
        finally:
            conn.close()
