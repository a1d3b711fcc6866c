"""PostgreSQL: double-quoted identifiers, standard single-quoted literals (``standard_conforming_strings``)."""

from __future__ import annotations

from dataclasses import dataclass

from djtui.errors import UserError

NAMEDATALEN = 64  # PostgreSQL's compiled-in default: a name keeps at most NAMEDATALEN - 1 bytes
MAX_IDENT_BYTES = NAMEDATALEN - 1


@dataclass(frozen=True)
class PostgresDialect:
    name: str = "postgresql"

    def ident(self, name: str) -> str:
        """A double-quoted identifier; a double quote inside is doubled.

        A name over 63 bytes (UTF-8) is refused: PostgreSQL would silently cut it to 63 bytes, so
        two names that differ only after byte 63 (two DataJoint tables, two roles) would be one."""
        if "\x00" in name:
            raise ValueError("an identifier cannot hold a NUL character")
        size = len(name.encode("utf-8"))
        if size > MAX_IDENT_BYTES:
            raise UserError(
                f"the PostgreSQL name {name!r} is {size} bytes long; PostgreSQL keeps at most "
                f"{MAX_IDENT_BYTES} bytes of a schema, table, column or role name (NAMEDATALEN - 1) and would "
                f"silently cut it to {name.encode('utf-8')[:MAX_IDENT_BYTES].decode('utf-8', 'ignore')!r}",
                hint=f"shorten the name to at most {MAX_IDENT_BYTES} bytes (multi-byte characters count as "
                     "several)")
        return '"' + name.replace('"', '""') + '"'

    def table(self, schema: str, table: str) -> str:
        return f"{self.ident(schema)}.{self.ident(table)}"

    def literal(self, value: str) -> str:
        """An escape-string literal (``E'...'``): safe whether or not standard_conforming_strings is on."""
        if "\x00" in value:
            raise ValueError("a PostgreSQL text value cannot hold a NUL character")
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


POSTGRES = PostgresDialect()
