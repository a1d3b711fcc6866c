"""Accounts fixtures: djtui's service on the suite's private server, and cleanup of what tests create."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pymysql
import pytest

from djtui.config import AccountSettings
from djtui.services.accounts import AccountsService
from djtui.services.database import Database
from djtui.services.servers.mariadb import PrivateServer
from tests.names import unique  # noqa: F401 (re-exported to the tests)


def login(server: PrivateServer, user: str, password: str, database: str | None = None
          ) -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=server.settings.port, user=user, password=password,
                           database=database, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="module")
def acct_db(server: PrivateServer) -> Iterator[Database]:
    db = Database(server.settings)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture(scope="module")
def service(acct_db: Database) -> AccountsService:
    return AccountsService(acct_db, AccountSettings())


@pytest.fixture(scope="module")
def cleanup(server: PrivateServer) -> Iterator[Callable[..., None]]:
    """Register users (name) and schemas (name) to drop when the module ends."""
    users: list[str] = []
    schemas: list[str] = []

    def add(*, user: str | None = None, schema: str | None = None) -> None:
        if user:
            users.append(user)
        if schema:
            schemas.append(schema)

    yield add
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            for name in users:
                cur.execute("SELECT Host FROM mysql.user WHERE User = %s", (name,))
                for (host,) in cur.fetchall():
                    cur.execute("DROP USER %s@%s", (name, host))
            for stem in schemas:
                cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                            (stem.replace("_", "\\_") + "%",))
                for (db,) in cur.fetchall():
                    cur.execute("DROP DATABASE `" + db.replace("`", "``") + "`")
    finally:
        conn.close()


# -- either backend: for the tests whose behaviour MariaDB and PostgreSQL share ---------------------------


@pytest.fixture(scope="module", params=["mariadb", "postgresql"])
def any_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The suite's MariaDB, or a database of the module's own on the suite's PostgreSQL, with a djtui config
    (``.cfg``) and the roles initialised; ``.key(name)`` is how a user is keyed (``name@%`` or ``name``)."""
    from .both import either_server

    srv = request.getfixturevalue("server" if request.param == "mariadb" else "pg_server")
    with either_server(srv, tmp_path_factory.mktemp(f"acct_{request.param}")) as lab:
        yield lab
