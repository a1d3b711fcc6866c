"""What the orphan scans read from the server's catalog, in one place.

Tables, columns, keys and foreign keys come from the database's backend (``db.backend``: across
every schema on the server, so a renamed foreign key counts like any other); what the backend does
not cover (the packet size of DataJoint 0.14's stores, MySQL-only) is read here. Every function
takes the :class:`~djtui.services.database.Database`.
"""

from __future__ import annotations

from typing import Any

from djtui.errors import UserError

ForeignKeys = list[tuple[str, str, list[tuple[str, str]]]]  # (child schema, child table, [(child col, parent col)])


def foreign_keys_to(db: Any, schema: str, table: str) -> ForeignKeys:
    """Every foreign key onto ``schema.table``, with its column pairs in order."""
    return [(fk.schema, fk.table, list(fk.columns)) for fk in db.backend.foreign_keys_to(schema, table)]


def primary_key(db: Any, schema: str, table: str) -> list[str]:
    """The primary key's columns; a clear error when the table is missing or has none."""
    pk = db.backend.primary_key(schema, table)
    if not pk:
        if not db.backend.table_exists(schema, table):
            raise UserError(f"table {schema}.{table} does not exist", where="orphans.tables",
                            hint="list existing `db.table` names")
        raise UserError(f"table {schema}.{table} has no primary key", where="orphans.tables")
    return pk


def has_column(db: Any, schema: str, table: str, column: str) -> bool:
    return any(c.name == column for c in db.backend.columns(schema, table))


def external_tables(db: Any) -> list[tuple[str, str]]:
    """(schema, store) of every DataJoint 0.14 ``~external_<store>`` table on the server."""
    return [(s, t[len("~external_"):]) for s, t in db.backend.tables(like="~external\\_%")]


def blocking_triggers(db: Any, tables: list[tuple[str, str]]) -> tuple[str, ...]:
    """Triggers that refuse inserts/deletes on these tables: often left behind by a cleanup."""
    return db.backend.blocking_triggers(tables)


def json_columns(db: Any) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every JSON column (MariaDB's longtext with a ``json_valid()`` check too)."""
    return db.backend.json_columns()


def external_references(db: Any, schema: str, table: str) -> list[tuple[str, str]]:
    """(column, ``~external_<store>`` table) of the foreign keys from ``schema.table`` onto its stores."""
    return [(col, fk.ref_table) for fk in db.backend.foreign_keys_from(schema, table)
            if fk.ref_schema == schema and fk.ref_table.startswith("~external_") for col, _ref in fk.columns]


def table_rows_estimate(cur: Any, schema: str, table: str) -> tuple[int, int]:
    """(``max_allowed_packet``, the catalog's row estimate of the table) on an open cursor."""
    cur.execute("SELECT @@max_allowed_packet, (SELECT table_rows FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = %s)", (schema, table))
    packet, est = cur.fetchone()
    return int(packet), int(est or 0)


def not_exists(dialect: Any, fks: ForeignKeys, alias: str = "p") -> str:
    """SQL: no child row references the parent row ``alias`` (TRUE when nothing references the table)."""
    parts = []
    for s, t, cols in fks:
        cond = " AND ".join(f"c.{dialect.ident(c)} = {alias}.{dialect.ident(r)}" for c, r in cols)
        parts.append(f"NOT EXISTS (SELECT 1 FROM {dialect.table(s, t)} c WHERE {cond})")
    return " AND ".join(parts) or "TRUE"
