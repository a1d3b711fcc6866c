"""The export session: the cascade run on the server (key sets), then the rows read back from one snapshot.

Key sets live in temporary tables on one dedicated connection (never in WHERE strings). The work
runs in two phases, so that an export never blocks the lab's writers:

1. **Key sets** (``run``): a ``READ ONLY`` transaction at READ COMMITTED. Each ``INSERT ... SELECT``
   into a key table is then a consistent *nonlocking* read of the newest committed rows (at
   REPEATABLE READ InnoDB would take shared locks on every source row until the export ends, and
   the lab's inserts would fail with lock wait timeouts). So each statement sees the database at
   its own moment, not at one snapshot. User restrictions still cannot write (READ ONLY), and the
   statements that evaluate them have a time limit (``statement_timeout``). Checked on MariaDB
   10.11 with the binary log off, MIXED and ROW; under STATEMENT logging the key tables use Aria
   (MyISAM on MySQL), because the server refuses to log InnoDB writes at READ COMMITTED there.
   MySQL 8 documents the same nonlocking read for ``INSERT ... SELECT`` at READ COMMITTED.
2. **Rows** (everything after ``run``): one ``READ ONLY`` transaction ``WITH CONSISTENT SNAPSHOT``
   at REPEATABLE READ, taken after the last key-set statement. Counts, files and the rows a writer
   streams are plain SELECTs of that snapshot joined to the key sets: nonlocking too.

What holds, by construction:

- Every exported row is a row of the snapshot and its key is in the table's key set: all values
  come from one moment; rows inserted after a table's key set was computed are not exported.
- With concurrent inserts and updates of non-key columns (ingestion), the export equals the
  cascade run on the moment of each key-set statement, and is referentially complete: a parent's
  key set is computed from its children's finished key sets, a committed child row always has its
  parent, and a parent cannot disappear while its children exist (foreign keys).
- With concurrent deletes: rows deleted before the snapshot are missing from the export (the
  manifest counts what was written; ``plan`` counts the key sets). Deleting a child never breaks
  the export; a parent can only be deleted together with its children. The one case the export
  cannot rule out is a row whose foreign-key columns change while the cascade runs (a row
  deleted and inserted again with another parent, or an update of a secondary foreign key): its
  new parent may be missing. The SQL file loads with foreign-key checks on, so such an export
  fails to load (and ``verify`` fails) instead of being silently incomplete; write it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql

from djtui.domain.cascade import CascadePlan, ForeignKey, Leaf, TableInfo, plan_cascade, split_name
from djtui.domain.rowsql import Column, literal_row_expression
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.database import Database
from djtui.services.export import catalog
from djtui.services.export.driver import (
    STATEMENT_TIMEOUT_S,
    TIMEOUT_ERRORS,
    coerced_values,
    connect_export,
    db_errors,
    is_mariadb,
    mysqldb,
    time_limit_sql,
    timeout_failure,
)
from djtui.services.export.rows import grouped_literal_rows, stream_literal_rows


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int
    sources: tuple[str, ...]  # "leaf 1", "child a.b via fk_x", "master a.m"

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows, "restriction": "; ".join(self.sources)}


@dataclass
class ExportResult:
    plan: CascadePlan
    counts: dict[str, int] = field(default_factory=dict)
    rounds: int = 0
    warnings: list[str] = field(default_factory=list)  # values the server coerced in a leaf's restriction

    def table_counts(self) -> list[TableCount]:
        out = []
        for t in self.plan.tables:
            s = self.plan.step(t)
            src = [f"leaf {i + 1}: {r or 'all rows'}" for i, r in s.leaves]
            src += [f"from {fk.child}" + (f" ({', '.join(f'{a}→{b}' for a, b in fk.columns)})" if fk.renamed else "")
                    for fk in s.from_children]
            src += [f"parts of {chain[0].parent}" + (f" (through {', '.join(fk.parent for fk in chain[1:])})"
                                                      if len(chain) > 1 else "") for chain in s.from_master[:1]]
            out.append(TableCount(t, self.counts.get(t, 0), tuple(src)))
        return out
# Key sets held in server memory: at most KEY_MEMORY_TABLES tables (the largest) of KEY_MEMORY_BYTES each,
# so an export never takes more than 512 MB of the lab server's memory; MEMORY rows are fixed-width
# (a VARCHAR(255) key costs about 1 kB), and a key set that outgrows its share moves to disk.
KEY_MEMORY_BYTES = 32 << 20
KEY_MEMORY_TABLES = 16


def _key_engine(conn: Any, mariadb: bool) -> str:
    """InnoDB, except under statement-based binary logging: there the server refuses to log an
    InnoDB write at READ COMMITTED (error 1665), so the key sets use the non-transactional engine."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@log_bin, @@binlog_format")
        log_bin, fmt = cur.fetchone()
    if int(log_bin or 0) and catalog.text(fmt).upper() == "STATEMENT":
        return "Aria" if mariadb else "MyISAM"
    return "InnoDB"


class ExportSession:
    """One dedicated connection holding the key sets; use as a context manager.

    ``statement_timeout`` (seconds; None or 0: none) limits each statement that evaluates a leaf's
    restriction, so ``SLEEP()`` or a condition that scans for hours ends with a clear error.
    This class speaks to MySQL and MariaDB; ``pgsession.PgExportSession`` to PostgreSQL;
    ``family.open_session`` picks the one of the database's server family.
    """

    family = "mysql"  # the backend name (``db.backend.name``) this session speaks to
    want_ddl = False  # a writer follows: a session that dumps DDL with a tool starts it early (PostgreSQL)

    def __init__(self, db: Database, graph: Any, leaves: list[Leaf], *, complete_parts: bool = True,
                 statement_timeout: float | None = STATEMENT_TIMEOUT_S):
        if db.backend.name != self.family:
            raise UserError(f"this export session speaks to {self.family}, the database is {db.backend.name}",
                            hint="open it with djtui.services.export.family.open_session")
        self.db = db
        self._ident = db.dialect.ident
        self._table = lambda full: db.dialect.table(*split_name(full))
        self.graph = graph
        self.leaves = leaves
        self.statement_timeout = statement_timeout
        self._mariadb = True
        self._engine = "InnoDB"
        try:
            self.plan = plan_cascade(graph, leaves, complete_parts=complete_parts)
        except ValueError as exc:
            raise UserError(str(exc), where="--leaf",
                            hint="check the table name (db.table) and the schema prefixes") from None
        for t in self.plan.tables:
            self.pk(t)  # every table the export reaches must be readable and keyed: say which is not, now
        self.conn: Any = None  # a mysqlclient or pymysql connection (see connect_export)
        self._temp: dict[str, str] = {}
        self._driven: dict[str, bool] = {}
        self._columns: dict[str, list[Column]] = {}
        self.result = ExportResult(self.plan)
        self.group_concat_limit: int | None = None  # None: the server's max_allowed_packet (tests lower it)
        self.memory_limit = KEY_MEMORY_BYTES  # per in-memory key table; a fuller one moves to disk (tests lower it)
        self._in_memory: set[str] = set()
        self._staged: set[str] = set()
        self._estimates: dict[str, int] = {}  # the server's row estimates, read once before the cascade
        self._catalog: threading.Thread | None = None  # reads the columns while the server runs the cascade

    def __enter__(self) -> ExportSession:
        self.conn = connect_export(self.db.settings) if mysqldb() is not None else self.db.connect()
        self._exec("SET SESSION time_zone = '+00:00'")
        self._mariadb = is_mariadb(self.conn)
        self._engine = _key_engine(self.conn, self._mariadb)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the transaction with COMMIT: it is READ ONLY, so nothing but key sets was written."""
        if self._catalog is not None:  # its reads end in milliseconds; none outlives the session
            self._catalog.join()
        if self.conn is not None:
            try:
                self.conn.commit()
            except Exception:
                try:
                    self.conn.rollback()
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
        with self.conn.cursor() as cur:
            return cur.execute(sql, args)

    def _scalar(self, sql: str) -> Any:
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]

    def pk(self, table: str) -> tuple[str, ...]:
        info: TableInfo = self.graph.nodes[table]["info"]
        if not info.loaded:
            raise UserError(f"table {table} is an ancestor of the export, but djtui cannot read its definition",
                            hint="grant the export's user SELECT on it (an export needs every ancestor)")
        if not info.primary_key:
            raise UserError(f"table {table} has no primary key, so its rows cannot be keyed in an export",
                            hint="add a primary key, or leave it out of the export's leaves and ancestry")
        return info.primary_key

    def key_table(self, table: str) -> str:
        return self._temp[table]

    def run(self, progress: Callable[[str], None] | None = None) -> ExportResult:
        """Materialize every key set; repeat the plan until no set grows (master/part completion).

        Key sets are computed at READ COMMITTED (nonlocking), then the snapshot the rows are read
        from is opened (see the module docstring for what that guarantees).
        """
        assert self.conn is not None
        self.conn.select_db(split_name(self.leaves[0].table)[0])  # temporary tables need a current database
        self._exec("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        self._exec("SET SESSION max_heap_table_size = %s", (self.memory_limit,))
        in_memory = self._memory_candidates()
        for n, t in enumerate(self.plan.tables):
            name = f"djtui_keys_{n}"
            cols = ", ".join(self._ident(c) for c in self.pk(t))
            if t not in in_memory:
                self._exec(f"CREATE TEMPORARY TABLE {name} (PRIMARY KEY ({cols})) ENGINE={self._engine} "
                           f"SELECT {cols} FROM {self._table(t)} LIMIT 0")
            else:  # hash lookups in memory: joins against the key set cost a third of a B-tree's
                self._exec(f"CREATE TEMPORARY TABLE {name} (PRIMARY KEY USING HASH ({cols})) ENGINE=MEMORY "
                           f"SELECT {cols} FROM {self._table(t)} LIMIT 0")
                self._in_memory.add(name)
            self._temp[t] = name
        # the writer's catalog reads (one query per table, on another connection) overlap the cascade
        self._catalog = threading.Thread(target=self._read_catalog, daemon=True, name="djtui-export-catalog")
        self._catalog.start()
        self._exec("START TRANSACTION READ ONLY")
        self.result.counts = self._rounds(progress)
        self._exec("COMMIT")  # cheap: only the key sets were written (a rollback would undo them row by row)
        self._exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        self._exec("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        return self.result

    def _rounds(self, progress: Callable[[str], None] | None) -> dict[str, int]:
        """Run the plan's steps until no key set grows; the rows in each key set."""
        previous: dict[str, int] = {}
        while True:
            self.result.rounds += 1
            for step in self.plan.steps:
                if progress:
                    progress(step.table)
                if self.result.rounds == 1:
                    for i, restr in step.leaves:
                        self._leaf(step.table, i, restr)
                for fk in step.from_children:
                    self._up(fk)
                for chain in step.from_master:
                    self._part(chain)
                for fk in step.from_self:
                    self._self(fk)
            counts = {t: int(self._scalar(f"SELECT COUNT(*) FROM {self._temp[t]}")) for t in self.plan.tables}
            if not self.plan.repeats or counts == previous:
                break
            previous = counts
        return counts

    def _memory_candidates(self) -> set[str]:
        """The tables whose key sets live in memory: the largest by the server's estimate (their
        joins cost the most), at most KEY_MEMORY_TABLES, none with a BLOB/TEXT key column (MEMORY cannot hold them)."""
        assert self.conn is not None
        dbs = sorted({split_name(t)[0] for t in self.plan.tables})
        estimate = self._estimates = catalog.row_estimates(self.db, dbs)
        long_keys = catalog.long_key_tables(self.db, dbs)
        sizes = {t: estimate.get(t, 0) for t in self.plan.tables if t not in long_keys}
        return set(sorted(sizes, key=lambda t: -sizes[t])[:KEY_MEMORY_TABLES])

    def _leaf(self, table: str, index: int, restr: str) -> None:
        cols = ", ".join(self._ident(c) for c in self.pk(table))
        where = f" WHERE ({restr})" if restr.strip() else ""
        limited = bool(where and self.statement_timeout)
        try:
            if limited:
                self._exec(time_limit_sql(self._mariadb, self.statement_timeout))
            try:
                self._into(table, lambda: f"SELECT {cols} FROM {self._table(table)}{where}")
                if where:
                    with self.conn.cursor() as cur:
                        self.result.warnings += [f"{self.leaves[index].label(index)}: the server coerced a value "
                                                 f"({w}); check the restriction" for w in coerced_values(cur)]
            finally:
                if limited:
                    self._exec(time_limit_sql(self._mariadb, 0))
        except db_errors() as exc:
            if exc.args and exc.args[0] in TIMEOUT_ERRORS:
                raise timeout_failure(self.leaves[index].label(index), index, self.statement_timeout) from None
            msg = exc.args[1] if len(exc.args) > 1 else str(exc)
            hint = ("restrictions run read-only: they can only select" if exc.args and exc.args[0] == 1792
                    else "fix the condition; it is used as WHERE (...) on that table")
            raise UserError(f"the restriction of {self.leaves[index].label(index)} fails: {msg}",
                            where=f"leaf {index + 1}", hint=hint) from None

    def _up(self, fk: ForeignKey) -> None:
        """Semijoin the child's key set across ``fk``: the parent rows its rows reference."""
        child, parent = fk.child, fk.parent
        on = " AND ".join(f"c.{self._ident(a)} = p.{self._ident(b)}" for a, b in fk.columns)
        keys = " AND ".join(f"c.{self._ident(c)} = k.{self._ident(c)}" for c in self.pk(child))
        cols = ", ".join(f"p.{self._ident(c)}" for c in self.pk(parent))
        self._into(parent, lambda: f"SELECT DISTINCT {cols} FROM {self._temp[child]} AS k "
                                   f"JOIN {self._table(child)} AS c ON {keys} JOIN {self._table(parent)} AS p ON {on}")

    def _part(self, chain: tuple[ForeignKey, ...]) -> None:
        """Every row of a part whose chain of foreign keys (master first) leads to a master row in the export.

        The chain may pass through other parts of the same master (``probe__electrode`` ->
        ``probe__shank`` -> ``probe``) and through renamed keys; each hop joins on its own column map.
        """
        master, part = chain[0].parent, chain[-1].child
        keys = " AND ".join(f"j0.{self._ident(c)} = k.{self._ident(c)}" for c in self.pk(master))
        joins = []
        for n, fk in enumerate(chain, start=1):
            on = " AND ".join(f"j{n}.{self._ident(a)} = j{n - 1}.{self._ident(b)}" for a, b in fk.columns)
            joins.append(f"JOIN {self._table(fk.child)} AS j{n} ON {on}")
        cols = ", ".join(f"j{len(chain)}.{self._ident(c)}" for c in self.pk(part))
        self._into(part, lambda: f"SELECT DISTINCT {cols} FROM {self._temp[master]} AS k "
                                 f"JOIN {self._table(master)} AS j0 ON {keys} {' '.join(joins)}")

    def _self(self, fk: ForeignKey) -> None:
        """A table that references itself: add the parent rows of its key set's rows, until none is new.

        A temporary table may appear only once in a statement, so new keys go through a second one.
        """
        t = fk.child
        stage = f"{self._temp[t]}_up"
        cols = ", ".join(self._ident(c) for c in self.pk(t))
        if stage not in self._staged:
            self._exec("COMMIT")  # a READ ONLY transaction may not create tables
            self._exec(f"CREATE TEMPORARY TABLE {stage} (PRIMARY KEY ({cols})) ENGINE={self._engine} "
                       f"SELECT {cols} FROM {self._table(t)} LIMIT 0")
            self._exec("START TRANSACTION READ ONLY")
            self._staged.add(stage)
        on = " AND ".join(f"c.{self._ident(a)} = p.{self._ident(b)}" for a, b in fk.columns)
        keys = " AND ".join(f"c.{self._ident(c)} = k.{self._ident(c)}" for c in self.pk(t))
        pcols = ", ".join(f"p.{self._ident(c)}" for c in self.pk(t))
        while True:
            self._exec(f"DELETE FROM {stage}")
            self._exec(f"INSERT IGNORE INTO {stage} SELECT DISTINCT {pcols} FROM {self._temp[t]} AS k "
                       f"JOIN {self._table(t)} AS c ON {keys} JOIN {self._table(t)} AS p ON {on}")
            if not self._into(t, lambda: f"SELECT {cols} FROM {stage}"):
                return

    def _into(self, table: str, select: Callable[[], str]) -> int:
        """Add the keys ``select()`` yields to ``table``'s key set (INSERT IGNORE: safe to repeat).

        An in-memory key set that outgrows ``memory_limit`` (error 1114, table full) is copied to
        a key table on disk, and the statement runs again against it.
        """
        try:
            return self._exec(f"INSERT IGNORE INTO {self._temp[table]} {select()}")
        except db_errors() as exc:
            if not (exc.args and exc.args[0] == 1114 and self._temp[table] in self._in_memory):
                raise
            self._to_disk(table)
            return self._exec(f"INSERT IGNORE INTO {self._temp[table]} {select()}")

    def _to_disk(self, table: str) -> None:
        """Move a key set out of memory, into a new temporary table on disk.

        A READ ONLY transaction may not create tables, so the cascade's transaction is ended and
        started again around the move; at READ COMMITTED every statement reads the newest committed
        rows either way, so nothing about what the cascade sees changes.
        """
        old = self._temp[table]
        new = f"{old}_disk"
        cols = ", ".join(self._ident(c) for c in self.pk(table))
        self._exec("COMMIT")
        self._exec(f"CREATE TEMPORARY TABLE {new} (PRIMARY KEY ({cols})) ENGINE={self._engine} SELECT * FROM {old}")
        self._exec(f"DROP TEMPORARY TABLE {old}")
        self._exec("START TRANSACTION READ ONLY")
        self._in_memory.discard(old)
        self._temp[table] = new

    # -- reading back ---------------------------------------------------------

    def keys(self, table: str) -> set[tuple]:
        """The key set of one table (tests and benchmarks compare it with other methods)."""
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {self._temp[table]}")
            return {tuple(r) for r in cur.fetchall()}

    def dict_rows(self, sql: str) -> list[dict[str, Any]]:
        """Rows of ``sql`` on the session's connection (its snapshot) as dicts by column name."""
        from djtui.services.export.driver import cursor_class

        assert self.conn is not None
        with self.conn.cursor(cursor_class(self.conn, "dict")) as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def json_candidate(self, column: str) -> str:
        """A condition that keeps the rows whose JSON ``column`` may name a stored object ('': every row)."""
        return ""

    def show_create_table(self, table: str) -> str:
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(f"SHOW CREATE TABLE {self._table(table)}")
            return cur.fetchone()[1]

    def show_create_database(self, db: str) -> str:
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(f"SHOW CREATE DATABASE {self._ident(db)}")
            return cur.fetchone()[1]

    def columns(self, table: str) -> list[str]:
        return [c.name for c in self.column_types(table)]

    def column_types(self, table: str) -> list[Column]:
        if table not in self._columns and self._catalog is not None and self._catalog is not threading.current_thread():
            self._catalog.join()  # it may be reading this one now
        if table not in self._columns:
            self._columns[table] = catalog.table_columns(self.db, table)
        return self._columns[table]

    def _read_catalog(self) -> None:
        """The columns of every table of the plan, ahead of the writer (a thread started by ``run``).
        A table that fails here is read again when the writer asks, which reports the error."""
        for table in self.plan.tables:
            try:
                self.column_types(table)
            except Exception:
                return

    def table_driven(self, table: str) -> bool:
        """Read the rows by scanning the table and looking each up in the key set, or the other way?

        Rows are always read joined with the key set: the key sets were computed before the
        snapshot, so rows inserted since must not be exported (possibly without their parents),
        even from a table whose every row was wanted. Scanning the table in its own order and
        probing an in-memory hash key set (about 0.7 us a row) beats driving from the
        key set (a B-tree lookup per key) down to about two thirds of the table, by the
        server's estimate. Both orders give the same rows.
        """
        if table not in self._driven:
            have = self.result.counts.get(table, 0)
            driven = False
            if have and self._temp[table] in self._in_memory:
                estimate = self._estimates[table] if table in self._estimates else catalog.row_estimate(self.db, table)
                driven = have * 3 >= estimate * 2
            self._driven[table] = driven
        return self._driven[table]

    def iter_literal_rows(self, table: str, batch: int = 1000) -> Iterator[list[bytes]]:
        """The exported rows as SQL tuples ``(v1,v2,...)`` (UTF-8 bytes) built by the server itself.

        The server formats every value (``literal_row_expression``), so Python only joins bytes.
        With mysqlclient the rows stream one by one through C. With pymysql, whose cost is per
        row in Python, the server joins ``batch`` rows into one ``GROUP_CONCAT`` value; a group
        that hit ``group_concat_max_len`` (huge blobs) is detected by its length and fetched again
        row by row. Values never hold a raw line break (escaped), so ``,\\n`` separates rows.
        """
        assert self.conn is not None
        pk = self.pk(table)
        expr = literal_row_expression(self.column_types(table), "t", self.db.dialect)
        keys = " AND ".join(f"t.{self._ident(c)} = k.{self._ident(c)}" for c in pk)
        if self.table_driven(table):
            source = f"{self._table(table)} AS t STRAIGHT_JOIN {self._temp[table]} AS k ON {keys}"
            order = ", ".join(f"t.{self._ident(c)}" for c in pk)
        else:
            source = f"{self._temp[table]} AS k JOIN {self._table(table)} AS t ON {keys}"
            order = ", ".join(f"k.{self._ident(c)}" for c in pk)
        batch = max(1, int(batch))
        if not isinstance(self.conn, pymysql.connections.Connection):
            yield from stream_literal_rows(self.conn, expr, source, batch)
            return
        if self.group_concat_limit:
            self._exec("SET SESSION group_concat_max_len = %s", (self.group_concat_limit,))
        else:
            self._exec("SET SESSION group_concat_max_len = @@max_allowed_packet")
        yield from grouped_literal_rows(self.conn, expr, source, order, batch)
