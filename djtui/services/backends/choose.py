"""The backend of a server family by name (``database.backend``): imports only the driver it needs."""

from __future__ import annotations

from typing import Any

from djtui.services.backends import Backend, Querier

BACKEND_NAMES = ("mysql", "postgresql")


def make_backend(name: str, db: Querier) -> Backend:
    """``mysql`` (MySQL and MariaDB, pymysql) or ``postgresql`` (psycopg2, as DataJoint 2.x uses)."""
    backend: Any
    if name == "postgresql":
        from djtui.services.backends.postgres import PostgresBackend

        backend = PostgresBackend(db)
    elif name == "mysql":
        from djtui.services.backends.mysql import MySQLBackend

        backend = MySQLBackend(db)
    else:
        raise ValueError(f"unknown database backend {name!r}: one of {', '.join(BACKEND_NAMES)}")
    return backend
