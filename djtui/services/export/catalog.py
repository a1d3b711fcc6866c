"""Export's reads of the server's catalog, through the ``Backend`` protocol (``db.backend``).

Tables, primary keys and foreign keys for the cascade's graph; the columns an export writes and
the ones that may reference stored objects; row estimates (which key sets live in memory, which
tables are read table-first); Spyglass's export-log tables. One query stays here because the
backend has no call for it yet: the tables whose primary key holds a BLOB or TEXT column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from djtui.domain.cascade import ForeignKey, TableInfo, build_graph, split_name
from djtui.domain.rowsql import Column
from djtui.services.database import Database


def text(value: Any) -> str:
    """A value the driver returned as text (some columns come back as bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value or "")


def load_graph(db: Database, prefixes: Sequence[str] = ()) -> Any:
    """Tables, primary keys and foreign keys of the server (or of the schema prefixes), in three queries,
    as the cascade's networkx graph.

    With prefixes, the schemas their tables reference are loaded too (three queries per round),
    until no foreign key leads out of what is loaded: an export needs every ancestor to load.
    """
    be = db.backend
    todo: list[str] | None = None  # None: every schema but the server's own
    if prefixes:
        todo = [s for s in be.schemas() if s.startswith(tuple(prefixes))]
    tables: list[tuple[str, str]] = []
    pks: dict[tuple[str, str], list[str]] = {}
    fks = []
    loaded: set[str] = set()
    while True:
        got = be.tables(todo)
        tables += got
        pks.update(be.primary_keys(todo))  # type: ignore[arg-type]
        fks += be.foreign_keys(todo)
        loaded |= {s for s, _t in got} | set(todo or ())
        missing = sorted({fk.ref_schema for fk in fks} - loaded)
        if not missing:
            break
        todo = missing  # asked once, even if it shows no tables (no privilege on it)
    infos = [TableInfo(f"{s}.{t}", tuple(pks.get((s, t), ()))) for s, t in tables]
    keys = [ForeignKey(name=fk.name, child=f"{fk.schema}.{fk.table}", parent=f"{fk.ref_schema}.{fk.ref_table}",
                       columns=fk.columns) for fk in fks]
    return build_graph(infos, keys)


def table_columns(db: Database, table: str) -> list[Column]:
    """The columns an export reads and INSERTs, in table order: every column but the generated
    ones (VIRTUAL, STORED, PERSISTENT), which MySQL 8 and strict mode refuse a value for and the
    loaded copy computes again; mysqldump leaves them out too. ``verify`` reads the same ones.
    (MySQL 8's ``DEFAULT_GENERATED``, a column with a DEFAULT expression, is written.)"""
    return [Column(c.name, c.data_type, c.nullable) for c in db.backend.columns(*split_name(table))
            if not c.generated]


def column_comments(db: Database, table: str) -> list[tuple[str, str, str]]:
    """(name, data type, comment) of every column: the stored-object columns are found by them."""
    return [(c.name, c.data_type, c.comment) for c in db.backend.columns(*split_name(table))]


def row_estimates(db: Database, schemas: Sequence[str]) -> dict[str, int]:
    """The server's row estimate of every table of ``schemas`` (``db.table`` -> rows)."""
    return {f"{s}.{t}": n for (s, t), n in db.backend.row_estimates(schemas).items()}


def row_estimate(db: Database, table: str) -> int:
    return db.backend.row_estimate(*split_name(table))


def long_key_tables(db: Database, schemas: Sequence[str]) -> set[str]:
    """Tables of ``schemas`` with a BLOB or TEXT primary-key column (a MEMORY table cannot hold one).
    The backend has no call for key column types yet: this query is export's own."""
    rows = db.query("SELECT DISTINCT table_schema, table_name FROM information_schema.columns "
                    f"WHERE table_schema IN ({', '.join(['%s'] * len(schemas))}) AND column_key = 'PRI' "
                    "AND (data_type LIKE '%%blob%%' OR data_type LIKE '%%text%%')", list(schemas))
    return {f"{text(s)}.{text(n)}" for s, n in rows}


def has_tables(db: Database, schema: str, names: Sequence[str]) -> bool:
    """Does ``schema`` hold every table of ``names``?"""
    return all(db.backend.table_exists(schema, name) for name in names)


def referenced_column(db: Database, schema: str, table: str, *, besides: str) -> tuple[str, str, str, str] | None:
    """The first foreign key of ``schema.table`` that references another table than ``besides``:
    (column, referenced schema, referenced table, referenced column), or None."""
    for fk in db.backend.foreign_keys_from(schema, table):
        if fk.ref_table != besides:
            column, rcolumn = fk.columns[0]
            return column, fk.ref_schema, fk.ref_table, rcolumn
    return None
