"""MySQL and MariaDB: backtick identifiers, single-quoted literals with backslashes escaped."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MySQLDialect:
    name: str = "mysql"

    def ident(self, name: str) -> str:
        """A backtick-quoted identifier; a backtick inside is doubled."""
        return "`" + name.replace("`", "``") + "`"

    def table(self, schema: str, table: str) -> str:
        return f"{self.ident(schema)}.{self.ident(table)}"

    def literal(self, value: str) -> str:
        """A single-quoted literal, safe whatever the sql_mode (backslash and quote escaped)."""
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


MYSQL = MySQLDialect()
