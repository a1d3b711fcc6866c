"""Shared fixtures: one private database server for the whole run, real files, real tools."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from djtui.services.servers.mariadb import PrivateServer
from djtui.services.servers.postgres import PrivatePostgres

_counter = itertools.count()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServer]:
    """A private MariaDB/MySQL server started by the suite itself (never the machine's own)."""
    srv = PrivateServer(tmp_path_factory.mktemp("server"), buffer_pool_mb=256)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server started by the suite itself (never the machine's own cluster)."""
    srv = PrivatePostgres(tmp_path_factory.mktemp("pgserver"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(params=["mariadb", "postgresql"])
def db_server(request: pytest.FixtureRequest) -> PrivateServer | PrivatePostgres:
    """Each backend in turn: a capability test that takes this runs on MariaDB and on PostgreSQL.

    ``db_server.settings`` connects as the admin (``settings.backend`` says which family);
    ``db_server.backend`` is ``"mysql"`` or ``"postgresql"``."""
    return request.getfixturevalue("server" if request.param == "mariadb" else "pg_server")


@pytest.fixture
def admin_conn(server: PrivateServer) -> Iterator[pymysql.connections.Connection]:
    conn = server.connect()
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def schema_name(server: PrivateServer) -> Iterator[str]:
    """A fresh, unique schema name; dropped (with any schema it prefixes) afterwards."""
    name = f"t{os.getpid()}_{next(_counter)}"
    yield name
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                        (name.replace("_", "\\_") + "%",))
            for (db,) in cur.fetchall():
                cur.execute(f"DROP DATABASE `{db}`")
    finally:
        conn.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3 server (moto) on a free loopback port, for the whole run; yields ``127.0.0.1:PORT``.

    Tests keep apart by bucket name (each makes its own)."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        srv.stop()


def write_config(path: Path, text: str) -> Path:
    """Write a config file as a careful admin would (0600: it may hold a password)."""
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def config_writer():
    """``write_config`` as a fixture, for test modules in sub-folders."""
    return write_config


# the Spyglass lab, built once per run by Spyglass itself (tests/conformance/spyglass_lab.py); registered
# here, at the root, so the conformance suite and the Export screen's test share one build
from tests.conformance.spyglass_lab import spyglass_lab  # noqa: E402, F401
