"""The export's connection and its server settings: the driver, statement time limits, coerced values.

mysqlclient (C) when installed (pymysql spends microseconds of Python on every row, most of an
export's time), pymysql otherwise or when ``DJTUI_SQL_DRIVER=pymysql``. Errors of both drivers are
caught as ``db_errors()``.
"""

from __future__ import annotations

import os
from typing import Any

import pymysql
import pymysql.cursors

from djtui.errors import OperationFailed
from djtui.services.database import ConnectionSettings, describe_error

DRIVER_ENV = "DJTUI_SQL_DRIVER"  # "pymysql" forces the pure-Python driver (tests, benchmarks)


def mysqldb() -> Any | None:
    """The C driver, if installed and not switched off: pymysql spends microseconds of Python on
    every row, which is most of an export's time; mysqlclient reads rows in C."""
    if os.environ.get(DRIVER_ENV, "").strip().lower() == "pymysql":
        return None
    try:
        import MySQLdb
        import MySQLdb.cursors
    except ImportError:
        return None
    return MySQLdb


def driver_name(conn: Any = None) -> str:
    if conn is not None:
        return "pymysql" if isinstance(conn, pymysql.connections.Connection) else "mysqlclient"
    return "mysqlclient" if mysqldb() is not None else "pymysql"


def db_errors() -> tuple[type[BaseException], ...]:
    """The server-error classes of both drivers (for ``except``)."""
    m = mysqldb()
    return (pymysql.err.MySQLError, m.MySQLError) if m is not None else (pymysql.err.MySQLError,)


def connect_export(settings: ConnectionSettings) -> Any:
    """A connection for reading many rows: mysqlclient when present, else pymysql (same settings)."""
    if settings.user is None:
        raise describe_error(Exception(0, "no user configured"), settings)
    m = mysqldb()
    try:
        return m.connect(**settings.pymysql_kwargs()) if m is not None else \
            pymysql.connect(**settings.pymysql_kwargs())
    except db_errors() as exc:
        raise describe_error(exc, settings) from None


def cursor_class(conn: Any, kind: str) -> Any:
    """``plain``, ``dict`` or ``stream`` (unbuffered) cursor class of the connection's driver."""
    if isinstance(conn, pymysql.connections.Connection):
        return {"plain": pymysql.cursors.Cursor, "dict": pymysql.cursors.DictCursor,
                "stream": pymysql.cursors.SSCursor}[kind]
    import MySQLdb.cursors

    return {"plain": MySQLdb.cursors.Cursor, "dict": MySQLdb.cursors.DictCursor,
            "stream": MySQLdb.cursors.SSCursor}[kind]


class CountCancelled(Exception):
    """A leaf count (``counts.LeafCount``) was cancelled (superseded, or its screen left) before it finished."""


STATEMENT_TIMEOUT_S = 300.0  # default time limit of a statement that evaluates a user restriction
TIMEOUT_ERRORS = (1969, 3024)  # MariaDB max_statement_time, MySQL max_execution_time exceeded


def time_limit_sql(mariadb: bool, seconds: float | None) -> str:
    """The session setting that stops a runaway restriction; 0 switches it off.

    MySQL's ``max_execution_time`` covers read-only SELECTs only (``count_leaf``), not the
    cascade's ``INSERT ... SELECT``: on MySQL the cascade has no server-side limit.
    """
    limit = float(seconds or 0)
    if mariadb:
        return f"SET SESSION max_statement_time = {limit:.3f}"
    return f"SET SESSION max_execution_time = {round(limit * 1000)}"


def timeout_failure(label: str, index: int, seconds: float | None) -> OperationFailed:
    return OperationFailed(
        f"the restriction of {label} ran longer than the statement time limit "
        f"({float(seconds or 0):g} s) and was stopped\n"
        "  hint: make the condition cheaper (use indexed key columns), or raise export.statement_timeout_s "
        "(or --statement-timeout)")


def is_mariadb(conn: Any) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION(), @@version_comment")
        version, comment = cur.fetchone()
    return "mariadb" in f"{version} {comment}".lower()


def coerced_values(cur: Any) -> list[str]:
    """The warnings of the statement just run: a value the server coerced instead of refusing
    (``session_date > '2026-13-45'`` compares with a truncated value and matches every row:
    "Truncated incorrect datetime value"). Duplicate keys that INSERT IGNORE skipped are not news."""
    cur.execute("SHOW WARNINGS")
    out = []
    for row in cur.fetchall():
        code, text = row[1], row[2]
        text = text.decode() if isinstance(text, bytes) else str(text)
        if int(code) != 1062 and text not in out:
            out.append(text)
    return out
