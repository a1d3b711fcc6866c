"""The SQL writer on PostgreSQL: ``export.sql`` that ``psql`` loads into an EMPTY database.

The file is laid out as ``pg_dump`` lays out a plain dump, from the export's one snapshot:

1. ``CREATE SCHEMA`` for every schema of the export, and the enum types its columns use
   (``pg_dump --table`` leaves out the objects a table depends on; DataJoint 2.x declares each
   ``enum(...)`` as a type of the schema);
2. the pre-data section of ``pg_dump --schema-only`` of the exported tables (tables, their sequences
   and defaults, generated columns, comments), dumped with ``--snapshot`` while the session computes
   its key sets and split into sections by ``pg_restore --no-owner --no-privileges``;
3. the rows: ``COPY "schema"."table" (columns) FROM stdin`` blocks, parents first, generated
   columns left out (the copy computes them again), then each owned sequence's value;
4. the post-data section: primary keys, unique keys, indexes and the foreign keys, which
   PostgreSQL checks against the loaded rows as each is added, so an incomplete export fails to load.

Rows are COPY text, not INSERT statements: it is pg_dump's own format, each value is the server's
exact text (no SQL literal is built per value), and it loads several times faster. Each table's
manifest checksum hashes its COPY lines (order-independent), which ``verify`` recomputes on the copy.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from djtui.domain.cascade import split_name
from djtui.domain.dialects import POSTGRES
from djtui.services.export.pgsession import TEXT_SETTINGS, PgExportSession
from djtui.services.export.writers.sql import FILES_LIST, MANIFEST, SQL_FILE, TableSum, write_files_list

HEADER = ("-- djtui export (PostgreSQL): load with  psql -v ON_ERROR_STOP=1 --single-transaction -f export.sql\n"
          "-- into an empty database\n"
          + "".join(f"{s};\n" for s in TEXT_SETTINGS)
          + "SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET standard_conforming_strings = on;\n"
            "SET check_function_bodies = false;\nSET client_min_messages = warning;\nSET row_security = off;\n"
            "SELECT pg_catalog.set_config('search_path', '', false);\n\n")

_ENUMS = (
    "SELECT tn.nspname, t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) "
    "FROM pg_type t JOIN pg_namespace tn ON tn.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid "
    "WHERE t.oid IN (SELECT a.atttypid FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attnum > 0 AND NOT a.attisdropped "
    "AND (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))) "
    "GROUP BY tn.nspname, t.typname ORDER BY 1, 2")
_SEQUENCES = (
    "SELECT sn.nspname, s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
    "JOIN pg_namespace sn ON sn.oid = s.relnamespace JOIN pg_class c ON c.oid = d.refobjid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
    "AND (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[])) ORDER BY 1, 2")


def _names(tables: Sequence[str]) -> tuple[list[str], list[str]]:
    pairs = [split_name(t) for t in tables]
    return [s for s, _ in pairs], [t for _, t in pairs]


def schema_ddl(session: PgExportSession) -> str:
    """``CREATE SCHEMA`` of every schema the export's tables and their enum types live in, then the types."""
    enums = session.rows(_ENUMS, _names(session.plan.tables))
    schemas = sorted({split_name(t)[0] for t in session.plan.tables} | {s for s, _n, _v in enums})
    out = [f"CREATE SCHEMA IF NOT EXISTS {POSTGRES.ident(s)};\n" for s in schemas]
    for schema, name, labels in enums:
        values = ", ".join(POSTGRES.literal(v) for v in labels)
        out.append(f"CREATE TYPE {POSTGRES.table(schema, name)} AS ENUM ({values});\n")
    return "".join(out) + "\n"


def sequence_values(session: PgExportSession) -> str:
    """``setval`` of every sequence the exported tables own (serial and identity columns), so the copy
    goes on numbering where the source is (pg_dump writes these with the data, which it did not dump)."""
    out = []
    for schema, name in session.rows(_SEQUENCES, _names(session.plan.tables)):
        seq = POSTGRES.table(schema, name)
        value, called = session.rows(f"SELECT last_value, is_called FROM {seq}")[0]
        flag = "true" if called else "false"
        out.append(f"SELECT pg_catalog.setval({POSTGRES.literal(seq)}, {int(value)}, {flag});\n")
    return "".join(out)


def copy_header(session: PgExportSession, table: str) -> bytes:
    cols = ", ".join(POSTGRES.ident(c) for c in session.columns(table))
    return f"\n-- {table}\nCOPY {POSTGRES.table(*split_name(table))} ({cols}) FROM stdin;\n".encode()


def _copy_table(session: PgExportSession, table: str, fh: IO[bytes]) -> dict[str, Any]:
    """One table's COPY block; its manifest entry (rows, checksum of the lines)."""
    acc = TableSum()
    fh.write(copy_header(session, table))

    def sink(rows: list[bytes]) -> None:
        acc.add(rows)
        fh.write(b"".join(rows))

    session.copy_rows(table, sink)
    fh.write(b"\\.\n")
    return {"table": table, "rows": acc.rows, "checksum": f"{acc.checksum:016x}"}


def write_pg_sql_file(session: PgExportSession, out_dir: Path, *,
                      progress: Callable[[str, int], None] | None = None,
                      meanwhile: Callable[[], Any] | None = None) -> list[dict[str, Any]]:
    """``export.sql`` in ``out_dir`` (see the module docstring); returns each table's manifest entry.
    ``meanwhile`` (the stored-files list) runs on the session's snapshot before the rows are read."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (SQL_FILE + ".part")
    tables_meta = []
    pre, post = session.ddl_sections()
    with open(tmp, "wb") as fh:
        fh.write((HEADER + schema_ddl(session)).encode())
        with open(pre, "rb") as src:
            shutil.copyfileobj(src, fh)
        if meanwhile is not None:
            meanwhile()
        for table in session.plan.tables:
            tables_meta.append(_copy_table(session, table, fh))
            if progress:
                progress(table, tables_meta[-1]["rows"])
        fh.write(b"\n" + sequence_values(session).encode() + b"\n")
        with open(post, "rb") as src:
            shutil.copyfileobj(src, fh)
    os.replace(tmp, out_dir / SQL_FILE)
    return tables_meta


def write_pg_sql(session: PgExportSession, out_dir: Path, *, progress: Callable[[str, int], None] | None = None,
                 stores: Sequence[Any] = ()) -> dict[str, Any]:
    """``export.sql``, ``files.tsv`` and ``manifest.json``; the session must have run its cascade."""
    started = time.monotonic()
    files: dict[str, Any] = {}
    tables_meta = write_pg_sql_file(session, out_dir, progress=progress,
                                    meanwhile=lambda: files.update(write_files_list(session, out_dir, stores)))
    manifest = {
        "format": "sql",
        "backend": session.family,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "leaves": [{"table": lf.table, "restriction": lf.restriction} for lf in session.leaves],
        "files": [SQL_FILE, FILES_LIST],
        "tables": tables_meta,
        "stored_files": files,
        "seconds": round(time.monotonic() - started, 3),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
