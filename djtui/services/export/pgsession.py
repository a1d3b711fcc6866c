"""The export session on PostgreSQL: key sets in temporary tables, rows by ``COPY``, one snapshot.

PostgreSQL reads never lock (MVCC), so where MySQL needs two phases (nonlocking key sets at READ
COMMITTED, then a snapshot for the rows) the whole export here runs in ONE transaction,
``REPEATABLE READ, READ ONLY``: the key sets are computed from the same snapshot the rows are read
from, and ``pg_dump`` writes the tables' DDL from it too (``pg_export_snapshot``). So an export is
exactly the cascade run on one moment of the database, whatever the lab writes meanwhile.

Temporary tables are created before the transaction starts (a READ ONLY transaction may not
create tables, but may fill temporary ones). Rows are read with ``COPY (SELECT ...) TO STDOUT``
in COPY's text format: the server formats each value as ``pg_dump`` does, and the text loads back
byte for byte with ``COPY ... FROM stdin``; the session pins the settings that text depends on
(``TEXT_SETTINGS``), so the writer and ``verify`` hash the same lines.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras

from djtui.domain.cascade import ForeignKey, split_name
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.export.driver import timeout_failure
from djtui.services.export.pgddl import DdlDump
from djtui.services.export.session import ExportResult, ExportSession

# the session settings COPY's text of a value depends on (pg_dump pins the same ones)
TEXT_SETTINGS = ("SET client_encoding = 'UTF8'", "SET TimeZone = 'UTC'", "SET DateStyle = 'ISO, YMD'",
                 "SET IntervalStyle = 'postgres'", "SET extra_float_digits = 3", "SET bytea_output = 'hex'")
QUERY_CANCELED = "57014"
READ_ONLY_TRANSACTION = "25006"


class _Batches:
    """The file object ``copy_expert`` writes to: psycopg2 calls ``write`` once per row (one COPY
    message each); rows are handed on ``size`` at a time."""

    def __init__(self, sink: Callable[[list[bytes]], None], size: int):
        self.sink = sink
        self.size = size
        self.rows: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.rows.append(data)
        if len(self.rows) >= self.size:
            self.sink(self.rows)
            self.rows = []

    def flush(self) -> None:
        if self.rows:
            self.sink(self.rows)
            self.rows = []


def copy_out(conn: Any, sql: str, sink: Callable[[list[bytes]], None], batch: int = 5000) -> None:
    """Run ``COPY (...) TO STDOUT`` and hand its lines (each ending in a newline) to ``sink`` in batches."""
    commandlog.record("sql", sql, None)
    raw = getattr(conn, "raw", conn)
    out = _Batches(sink, max(1, int(batch)))
    with raw.cursor() as cur:
        cur.copy_expert(sql, out)
    out.flush()


class PgExportSession(ExportSession):
    """The export on PostgreSQL (see the module docstring); ``family.open_session`` makes one when
    ``db.backend.name`` is ``postgresql``."""

    family = "postgresql"

    def __enter__(self) -> PgExportSession:
        self.conn = self.db.connect()
        # a stopped server or Cancel-wait ends the session's blocked statement (it runs with no time limit)
        self._watch: Any = self.db.watched(self.conn, "the export's session")
        self._watch.__enter__()
        self._mariadb = False
        self._snapshot: str | None = None
        self._ddl: DdlDump | None = None
        try:
            for sql in (*TEXT_SETTINGS, "SET statement_timeout = 0", "SET temp_buffers = '64MB'"):
                self._exec(sql)
        except BaseException:
            self.__exit__(*sys.exc_info())  # no watch outlives a session that failed to open
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._unwatch(*exc)  # may raise DatabaseNotAnswering in place of the driver's error
        finally:
            self.close()

    def _unwatch(self, *exc: Any) -> None:
        watch, self._watch = getattr(self, "_watch", None), None
        if watch is not None:
            watch.__exit__(*exc) if exc and exc[0] is not None else watch.__exit__(None, None, None)

    def close(self) -> None:
        self._unwatch()
        if self._ddl is not None:
            self._ddl.stop()  # no pg_dump outlives the session
        if self.conn is not None:
            try:
                self._exec("ROLLBACK")  # READ ONLY: nothing but the temporary key sets was written
            except Exception:
                pass
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None

    def _exec(self, sql: str, args: Any = None) -> int:
        assert self.conn is not None
        commandlog.record("sql", sql, args)
        with self.conn.raw.cursor() as cur:
            cur.execute(sql, args)
            return max(cur.rowcount, 0)

    def run(self, progress: Callable[[str], None] | None = None) -> ExportResult:
        """Make the key tables, then compute every key set in the export's one snapshot."""
        self._check_readable()
        self._exec("BEGIN")
        for n, t in enumerate(self.plan.tables):
            name = f"djtui_keys_{n}"
            cols = ", ".join(self._ident(c) for c in self.pk(t))
            self._exec(f"CREATE TEMPORARY TABLE {name} AS SELECT {cols} FROM {self._table(t)} LIMIT 0")
            self._exec(f"ALTER TABLE pg_temp.{name} ADD PRIMARY KEY ({cols})")
            self._temp[t] = f"pg_temp.{name}"
        self._exec("COMMIT")
        self._exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if self.want_ddl:
            self._start_ddl_dump()  # pg_dump works on the DDL while the server computes the key sets
        self.result.counts = self._rounds(progress)
        for t in self.plan.tables:  # the planner's row counts for the joins that read the rows
            self._exec(f"ANALYZE {self._temp[t]}")
        return self.result

    def _check_readable(self) -> None:
        """Every table of the export must be readable: PostgreSQL's catalogs show tables of schemas the
        user may not use, so a missing grant would otherwise surface mid-cascade as a driver error."""
        pairs = [split_name(t) for t in self.plan.tables]
        rows = self.rows("SELECT s, t, has_schema_privilege(s, 'USAGE') AND has_table_privilege("
                         "quote_ident(s) || '.' || quote_ident(t), 'SELECT') "
                         "FROM unnest(%s::text[], %s::text[]) AS x(s, t)",
                         ([s for s, _ in pairs], [t for _, t in pairs]))
        hidden = [f"{s}.{t}" for s, t, ok in rows if not ok]
        if hidden:
            leaves = {leaf.table for leaf in self.leaves}
            what = "a leaf" if hidden[0] in leaves else "an ancestor of the export"
            raise UserError(f"table {hidden[0]} is {what}, but djtui cannot read it (no USAGE on its schema or "
                            "no SELECT on it)" + (f"; {len(hidden) - 1} more" if len(hidden) > 1 else ""),
                            hint="grant the export's user USAGE on the schema and SELECT on its tables "
                                 "(an export needs every ancestor)")

    def _leaf(self, table: str, index: int, restr: str) -> None:
        cols = ", ".join(self._ident(c) for c in self.pk(table))
        where = f" WHERE ({restr})" if restr.strip() else ""
        limited = bool(where and self.statement_timeout)
        label = self.leaves[index].label(index)
        try:
            if limited:
                self._exec(f"SET statement_timeout = {max(1, round(float(self.statement_timeout or 0) * 1000))}")
            self._into(table, lambda: f"SELECT {cols} FROM {self._table(table)}{where}")
            if limited:
                self._exec("SET statement_timeout = 0")
        except psycopg2.Error as exc:
            if exc.pgcode == QUERY_CANCELED:
                raise timeout_failure(label, index, self.statement_timeout) from None
            msg = (exc.diag.message_primary or str(exc)).strip() if exc.diag else str(exc).strip()
            hint = ("restrictions run read-only: they can only select" if exc.pgcode == READ_ONLY_TRANSACTION
                    else 'fix the condition; it is used as WHERE (...) on that table (PostgreSQL quotes names '
                         'with "double quotes" and text with \'single quotes\')')
            raise UserError(f"the restriction of {label} fails: {msg}", where=f"leaf {index + 1}",
                            hint=hint) from None

    def _into(self, table: str, select: Callable[[], str]) -> int:
        return self._exec(f"INSERT INTO {self._temp[table]} {select()} ON CONFLICT DO NOTHING")

    def _up(self, fk: ForeignKey) -> None:
        """The parent rows the child's key set references. When the foreign key's columns are part of the
        child's primary key (DataJoint's usual case) the key set holds them already: the child table
        itself is not read (every key set row is a row of this snapshot)."""
        if not set(a for a, _b in fk.columns) <= set(self.pk(fk.child)):
            return super()._up(fk)
        on = " AND ".join(f"p.{self._ident(b)} = k.{self._ident(a)}" for a, b in fk.columns)
        cols = ", ".join(f"p.{self._ident(c)}" for c in self.pk(fk.parent))
        self._into(fk.parent, lambda: f"SELECT DISTINCT {cols} FROM {self._temp[fk.child]} AS k "
                                      f"JOIN {self._table(fk.parent)} AS p ON {on}")
        return None

    def _self(self, fk: ForeignKey) -> None:
        """A table that references itself: add its key set's parent rows until none is new."""
        t = fk.child
        on = " AND ".join(f"c.{self._ident(a)} = p.{self._ident(b)}" for a, b in fk.columns)
        keys = " AND ".join(f"c.{self._ident(c)} = k.{self._ident(c)}" for c in self.pk(t))
        pcols = ", ".join(f"p.{self._ident(c)}" for c in self.pk(t))
        while self._into(t, lambda: f"SELECT DISTINCT {pcols} FROM {self._temp[t]} AS k "
                                    f"JOIN {self._table(t)} AS c ON {keys} JOIN {self._table(t)} AS p ON {on}"):
            pass

    # -- reading back ---------------------------------------------------------

    def snapshot(self) -> str:
        """The export's snapshot, for ``pg_dump --snapshot`` (valid while the session is open)."""
        if self._snapshot is None:
            self._snapshot = str(self._scalar("SELECT pg_export_snapshot()"))
        return self._snapshot

    def _start_ddl_dump(self) -> None:
        """The tables' DDL by pg_dump and pg_restore from the export's snapshot, in the background (``pgddl``)."""
        self._ddl = DdlDump(self.db, self.snapshot(), self.plan.tables)

    def ddl_sections(self) -> tuple[Path, Path]:
        """The pre-data and post-data SQL of the exported tables (waits for the tools)."""
        if self._ddl is None:
            self._start_ddl_dump()
        assert self._ddl is not None
        return self._ddl.sections()

    def dict_rows(self, sql: str) -> list[dict[str, Any]]:
        assert self.conn is not None
        with self.conn.raw.cursor() as cur:
            for register in (psycopg2.extras.register_default_json, psycopg2.extras.register_default_jsonb):
                register(cur, loads=str)  # JSON as text: decoded only where it names an object
            cur.execute(sql)
            names = [d.name for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def json_candidate(self, column: str) -> str:
        """Only values that mention ``"path"`` are fetched (the server skips the rest of a large table)."""
        return f"{column}::text LIKE '%\"path\"%'"

    def rows(self, sql: str, args: Any = None) -> list[tuple]:
        """Rows of ``sql`` in the export's snapshot."""
        assert self.conn is not None
        commandlog.record("sql", sql, args)
        with self.conn.raw.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def copy_sql(self, table: str) -> str:
        """``COPY`` of the exported rows of ``table`` (generated columns left out, as in the file)."""
        cols = ", ".join(f"t.{self._ident(c)}" for c in self.columns(table))
        keys = " AND ".join(f"t.{self._ident(c)} = k.{self._ident(c)}" for c in self.pk(table))
        return (f"COPY (SELECT {cols} FROM {self._temp[table]} AS k JOIN {self._table(table)} AS t ON {keys}) "
                "TO STDOUT")

    def copy_rows(self, table: str, sink: Callable[[list[bytes]], None], batch: int = 5000) -> None:
        """The exported rows of ``table`` as COPY text lines (each ending in a newline), in batches."""
        copy_out(self.conn, self.copy_sql(table), sink, batch)

    def iter_literal_rows(self, table: str, batch: int = 1000) -> Iterator[list[bytes]]:
        """The exported rows as COPY text lines, ``batch`` at a time (read whole first: tests, small tables;
        the writers stream with ``copy_rows``)."""
        got: list[list[bytes]] = []
        self.copy_rows(table, got.append, batch)
        yield from got

    def show_create_table(self, table: str) -> str:
        raise NotImplementedError("PostgreSQL has no SHOW CREATE TABLE: the writers take pg_dump's DDL")

    def show_create_database(self, db: str) -> str:
        raise NotImplementedError("PostgreSQL schemas are created by the writer (CREATE SCHEMA)")
