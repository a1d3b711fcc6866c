"""How a database server spells SQL: identifier and literal quoting, table names.

Pure text, no I/O. One module per server family (``mysql.py`` covers MySQL and MariaDB, and
``mysql_grants.py`` how they spell roles, grants and accounts); a second backend adds its modules
here and a ``Backend`` in ``services/backends`` and touches no capability.
Services reach the dialect of the server they talk to as
``db.dialect``; domain code that writes SQL takes a ``dialect`` argument.
"""

from __future__ import annotations

from typing import Protocol

from djtui.domain.dialects.mysql import MYSQL, MySQLDialect


class SqlDialect(Protocol):
    """The quoting every capability needs; grants, catalogs and dump tools live on the backend."""

    name: str  # "mysql"

    def ident(self, name: str) -> str:
        """A quoted identifier (schema, table or column)."""

    def table(self, schema: str, table: str) -> str:
        """A quoted, schema-qualified table name."""

    def literal(self, value: str) -> str:
        """A quoted string literal, safe whatever the server's SQL mode."""


__all__ = ["MYSQL", "MySQLDialect", "SqlDialect"]
