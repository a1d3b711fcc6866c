"""PostgreSQL: double-quoted identifiers, standard single-quoted literals (``standard_conforming_strings``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PostgresDialect:
    name: str = "postgresql"

    def ident(self, name: str) -> str:
        """A double-quoted identifier; a double quote inside is doubled."""
        if "\x00" in name:
            raise ValueError("an identifier cannot hold a NUL character")
        return '"' + name.replace('"', '""') + '"'

    def table(self, schema: str, table: str) -> str:
        return f"{self.ident(schema)}.{self.ident(table)}"

    def literal(self, value: str) -> str:
        """An escape-string literal (``E'...'``): safe whether or not standard_conforming_strings is on."""
        if "\x00" in value:
            raise ValueError("a PostgreSQL text value cannot hold a NUL character")
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


POSTGRES = PostgresDialect()
