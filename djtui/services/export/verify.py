"""``export verify``: load an export into a fresh private server and compare each table's rows and
checksum with its manifest (the server's own text of every row, as the writer hashed it).
A PostgreSQL export (``"backend": "postgresql"`` in its manifest) is checked by ``pgverify``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from djtui.domain.cascade import split_name
from djtui.domain.dialects import SqlDialect
from djtui.domain.rowsql import Column, literal_row_expression
from djtui.errors import UserError
from djtui.services.database import Database
from djtui.services.export.catalog import table_columns
from djtui.services.export.driver import connect_export, db_errors
from djtui.services.export.loading import LOAD_FLAGS, TableCheck, load_sql
from djtui.services.export.rows import stream_literal_rows
from djtui.services.export.writers.sql import MANIFEST, SQL_FILE, TableSum
from djtui.services.servers.mariadb import PrivateServer


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError("no manifest.json here: this is not a djtui export directory", where=str(directory),
                        hint="pass the --out directory of `djtui export write`") from None
    except ValueError as exc:
        raise UserError(f"manifest.json is not valid JSON: {exc}", where=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("tables"), list):
        raise UserError("manifest.json has no table list", where=str(path))
    return data


def find_client() -> str:
    for name in ("mariadb", "mysql"):
        exe = shutil.which(name)
        if exe:
            return exe
    raise UserError("no mariadb/mysql client is installed to load the export",
                    hint="apt-get install mariadb-client")


def verify_export(directory: Path, *, server_dir: Path | None = None) -> list[TableCheck]:
    """Load the export into a fresh private server and compare counts and checksums per table."""
    manifest = read_manifest(directory)
    sql_file = directory / str(manifest.get("sql_file", SQL_FILE))
    if not sql_file.is_file():
        hint = ("run ./export.sh first (its first lines say which credentials file): it writes export.sql"
                if manifest.get("format") == "script" else "the export is incomplete; write it again")
        raise UserError(f"{SQL_FILE} is missing", where=str(directory), hint=hint)
    if manifest.get("backend") == "postgresql":
        from djtui.services.export.pgverify import verify_pg

        return verify_pg(manifest, sql_file, server_dir=server_dir)
    with PrivateServer(server_dir) as srv:
        load_sql(srv.settings, sql_file)
        conn = connect_export(srv.settings)
        copy = Database(srv.settings)
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION time_zone = '+00:00'")
            checks = []
            for entry in manifest["tables"]:
                try:
                    got: TableSum | None = table_sum(conn, entry["table"], table_columns(copy, entry["table"]),
                                                        copy.dialect)
                except db_errors():
                    got = None
                checks.append(TableCheck(entry["table"], int(entry["rows"]), got.rows if got else None,
                                         entry["checksum"], f"{got.checksum:016x}" if got else None))
        finally:
            copy.close()
            conn.close()
    return checks


def table_sum(conn: Any, table: str, columns: list[Column], dialect: SqlDialect) -> TableSum:
    """Count and checksum of a whole table, as ``verify`` sees the loaded copy (generated columns
    left out, as in the export's INSERTs: the copy computes them again)."""
    out = TableSum()
    expr = literal_row_expression(columns, "t", dialect)
    for rows in stream_literal_rows(conn, expr, f"{dialect.table(*split_name(table))} AS t", 5000):
        out.add(rows)
    return out



__all__ = ["LOAD_FLAGS", "TableCheck", "find_client", "load_sql", "read_manifest", "table_sum", "verify_export"]
