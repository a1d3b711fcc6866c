"""``export verify`` of a PostgreSQL export: load it with ``psql`` into a fresh private PostgreSQL,
then compare each table's rows and checksum with the manifest (COPY text, as the writer hashed it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg2

from djtui.domain.cascade import split_name
from djtui.domain.dialects import POSTGRES
from djtui.services.database import Database
from djtui.services.export.catalog import table_columns
from djtui.services.export.loading import TableCheck, load_sql
from djtui.services.export.pgsession import TEXT_SETTINGS, copy_out
from djtui.services.export.writers.sql import TableSum
from djtui.services.servers.postgres import PrivatePostgres


def table_sum(conn: Any, copy: Database, table: str) -> TableSum:
    """Rows and checksum of a whole table of the loaded copy (generated columns left out, as written)."""
    cols = ", ".join(POSTGRES.ident(c.name) for c in table_columns(copy, table))
    out = TableSum()
    copy_out(conn, f"COPY (SELECT {cols} FROM {POSTGRES.table(*split_name(table))}) TO STDOUT", out.add)
    return out


def verify_pg(manifest: dict[str, Any], sql_file: Path, *, server_dir: Path | None = None) -> list[TableCheck]:
    """Load ``sql_file`` into a private PostgreSQL and check every table of the manifest."""
    with PrivatePostgres(server_dir) as srv:
        load_sql(srv.settings, sql_file)
        copy = Database(srv.settings)
        conn = copy.connect()
        try:
            with conn.raw.cursor() as cur:
                for sql in (*TEXT_SETTINGS, "SET statement_timeout = 0"):
                    cur.execute(sql)
            checks = []
            for entry in manifest["tables"]:
                try:
                    got: TableSum | None = table_sum(conn, copy, entry["table"])
                except psycopg2.Error:
                    got = None
                checks.append(TableCheck(entry["table"], int(entry["rows"]), got.rows if got else None,
                                         entry["checksum"], f"{got.checksum:016x}" if got else None))
        finally:
            conn.close()
            copy.close()
    return checks
