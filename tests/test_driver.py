"""The export's driver: the C one (MySQLdb, from the mysqlclient-static wheel) wherever djtui's dependency
marker says a wheel exists, pymysql as the fallback elsewhere or when switched off."""

from __future__ import annotations

import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pymysql
import pytest
from packaging.requirements import Requirement

from djtui.services.export import DRIVER_ENV, connect_export, driver_name

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _static_requirement() -> Requirement:
    deps = [Requirement(d) for d in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]]
    found = [r for r in deps if r.name == "mysqlclient-static"]
    assert found, "pyproject.toml no longer depends on mysqlclient-static: installs lose the C driver"
    return found[0]


def test_the_c_driver_is_a_dependency_only_where_its_wheel_exists():
    marker = _static_requirement().marker
    assert marker is not None, "without a marker pip fails where no wheel exists (there is no source release)"
    linux = {"platform_python_implementation": "CPython", "python_version": "3.11", "sys_platform": "linux",
             "platform_machine": "x86_64"}
    assert marker.evaluate(linux)
    assert marker.evaluate({**linux, "sys_platform": "darwin", "platform_machine": "arm64"})
    for other in ({"platform_machine": "aarch64"}, {"sys_platform": "win32", "platform_machine": "AMD64"},
                  {"sys_platform": "darwin"}, {"python_version": "3.15"},
                  {"platform_python_implementation": "PyPy"}):
        assert not marker.evaluate({**linux, **other}), other


def test_exports_use_the_c_driver_where_djtui_installs_it(server, monkeypatch):
    monkeypatch.delenv(DRIVER_ENV, raising=False)
    marker = _static_requirement().marker
    if not marker.evaluate():
        pytest.skip(f"no mysqlclient-static wheel for this platform ({sys.platform}); pymysql is the driver")
    # installed (./dev setup or pip install .) and the module djtui imports really is that wheel's
    assert importlib.metadata.version("mysqlclient-static")
    import MySQLdb

    assert driver_name() == "mysqlclient"
    conn = connect_export(server.settings)
    try:
        assert not isinstance(conn, pymysql.connections.Connection)
        assert isinstance(conn, MySQLdb.connections.Connection)
        assert driver_name(conn) == "mysqlclient"
        cur = conn.cursor()
        cur.execute("SELECT 1 + 1")
        assert cur.fetchone() == (2,)
    finally:
        conn.close()


def test_pymysql_when_switched_off_or_missing(server, monkeypatch):
    monkeypatch.setenv(DRIVER_ENV, "pymysql")
    assert driver_name() == "pymysql"
    conn = connect_export(server.settings)
    try:
        assert isinstance(conn, pymysql.connections.Connection)
    finally:
        conn.close()
    monkeypatch.delenv(DRIVER_ENV)
    # a platform without the wheel: MySQLdb does not import (None in sys.modules makes import fail)
    monkeypatch.setitem(sys.modules, "MySQLdb", None)
    monkeypatch.setitem(sys.modules, "MySQLdb.cursors", None)
    assert driver_name() == "pymysql"
    conn = connect_export(server.settings)
    try:
        assert isinstance(conn, pymysql.connections.Connection)
    finally:
        conn.close()


def test_postgresql_connections_are_psycopg2_with_the_session_limits(pg_server):
    """On PostgreSQL the driver is psycopg2 (as DataJoint 2.x's): a connection of the Database is autocommit,
    names itself djtui, and carries the statement limit and the gone-client check on the server."""
    import dataclasses

    import psycopg2.extensions

    from djtui.services.backends.postgres import PgConnection
    from djtui.services.database import Database

    db = Database(dataclasses.replace(pg_server.settings, statement_timeout_s=7))
    try:
        conn = db.connect()
        try:
            assert isinstance(conn, PgConnection) and isinstance(conn.raw, psycopg2.extensions.connection)
            assert conn.raw.autocommit and conn.open
            with conn.raw.cursor() as cur:
                cur.execute("SELECT current_setting('statement_timeout'), "
                            "current_setting('client_connection_check_interval'), "
                            "current_setting('application_name')")
                assert cur.fetchone() == ("7s", "2s", "djtui")
            assert pg_server.password.reveal() not in conn.raw.dsn  # psycopg2 shows it as xxx
        finally:
            conn.close()
        assert not conn.open
    finally:
        db.close()
