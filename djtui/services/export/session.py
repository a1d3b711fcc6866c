"""Export: load the foreign-key graph, run the cascade on the server, count rows, read them back.

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

import datetime as dt
import decimal
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import pymysql
import pymysql.cursors

from djtui.domain.cascade import (
    CascadePlan,
    ForeignKey,
    Leaf,
    TableInfo,
    build_graph,
    plan_cascade,
    quote_ident,
    quote_table,
    split_name,
)
from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog
from djtui.services.database import ConnectionSettings, Database, describe_error

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")


# ---------------------------------------------------------------------------
# leaves as the user writes them


_LEAF = re.compile(r"^\s*`?(?P<db>[^`.:]+)`?\.`?(?P<table>[^`:]+)`?\s*(?::(?P<restr>.*))?$", re.S)


def parse_leaf(text: str, *, where: str = "--leaf") -> Leaf:
    """``db.table:RESTRICTION`` (the restriction may be SQL or a JSON object of key values)."""
    m = _LEAF.match(text)
    if not m:
        raise UserError(f"cannot read leaf {text!r}", where=where,
                        hint="write it as db.table:RESTRICTION, e.g. 'lab.session:subject_id = 3'")
    table = f"{m.group('db')}.{m.group('table')}"
    return Leaf(table, parse_restriction(m.group("restr") or "", where=f"{where} {table}"))


def parse_restriction(text: str, *, where: str) -> str:
    """A leaf's restriction as the user writes it (``--leaf``'s part after ``:``, the screen's field):
    a SQL condition, or a JSON object (or list of objects) of key values, made a SQL condition here.
    The one parser of the CLI and the screen. Returns the SQL condition ('' for every row)."""
    restr = text.strip()
    if restr.startswith(("{", "[")):
        try:
            keys = json.loads(restr)
        except ValueError as exc:
            raise UserError(f"the key values {restr!r} are not valid JSON: {exc}", where=where,
                            hint='write JSON key values as {"subject_id": 1}, or a SQL condition') from None
        restr = keys_restriction(keys, where=where)
    check_restriction(restr, where=where)
    return restr


def resolve_leaf_tables(leaves: list[Leaf], graph: nx.MultiDiGraph) -> list[Leaf]:
    """Leaves named by DataJoint class (``common_ephys.LFPBand``, ``common_device.Probe.Electrode``) get
    their SQL table (``common_ephys.__l_f_p_band``); SQL names stay. An unknown name is left for the
    cascade to refuse."""
    from djtui.domain.djnames import display_name

    by_class: dict[str, list[str]] = {}
    for t in graph.nodes:
        by_class.setdefault(display_name(t), []).append(t)
    out = []
    for leaf in leaves:
        found = by_class.get(leaf.table, []) if leaf.table not in graph else []
        out.append(Leaf(found[0], leaf.restriction) if len(found) == 1 else leaf)
    return out


def keys_restriction(keys: Any, *, where: str) -> str:
    """Key values as a SQL condition with every value a literal: a list of objects means OR, a list
    of values for one attribute means IN."""
    items = keys if isinstance(keys, list) else [keys]
    if not items:
        raise UserError("the list of key values is empty", where=where,
                        hint='give at least one object, e.g. [{"subject_id": 1}]')
    parts = []
    for item in items:
        if not isinstance(item, dict) or not item:
            raise UserError("key values must be a JSON object with at least one attribute (or a list of such "
                            "objects)", where=where, hint='e.g. {"subject_id": 1, "session_id": 2}')
        conds = []
        for k, v in item.items():
            if isinstance(v, list):
                if not v:
                    raise UserError(f"the list of values for {k!r} is empty", where=where)
                conds.append(f"{quote_ident(k)} IN ({', '.join(_key_literal(k, x, where) for x in v)})")
            else:
                conds.append(f"{quote_ident(k)} = {_key_literal(k, v, where)}")
        parts.append("(" + " AND ".join(conds) + ")")
    return " OR ".join(parts)


def _key_literal(name: str, value: Any, where: str) -> str:
    if isinstance(value, dict | list):
        raise UserError(f"the value of {name!r} must be a number, a string or null (or a list of them), "
                        f"not {json.dumps(value)}", where=where)
    try:
        return sql_literal(value)
    except TypeError:
        raise UserError(f"the value of {name!r} cannot be written as SQL: {value!r}", where=where) from None


def check_restriction(text: str, *, where: str) -> None:
    """Refuse what can never be one condition: statement separators, comments, open quotes."""
    quote = ""
    depth = 0  # a `)` with no `(` would close djtui's WHERE (...) and append to the statement
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise UserError("a restriction may not close a parenthesis it did not open", where=where,
                                hint="balance the parentheses of the condition")
        elif ch == ";":
            raise UserError("a restriction is one condition; it may not contain ';'", where=where,
                            hint="remove the ';' and anything after it")
        elif ch == "#" or text.startswith("--", i) or text.startswith("/*", i):
            raise UserError("comments are not allowed in a restriction", where=where)
        i += 1
    if quote:
        raise UserError(f"unclosed {quote} in the restriction", where=where)
    if depth:
        raise UserError("unbalanced parentheses in the restriction", where=where,
                        hint="close every ( the condition opens")


# ---------------------------------------------------------------------------
# SQL literals (the writer and key-value leaves)


_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"})


def sql_literal(v: Any) -> str:
    """One value as a MySQL literal; binary as hex so no client charset can change it."""
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.translate(_ESCAPES) + "'"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        b = bytes(v)
        return "0x" + b.hex() if b else "''"
    if isinstance(v, dt.datetime):
        return "'" + v.isoformat(sep=" ") + "'"
    if isinstance(v, dt.date):
        return "'" + v.isoformat() + "'"
    if isinstance(v, dt.timedelta):
        total = v.days * 86400 + v.seconds
        sign = "-" if total < 0 or (total == 0 and v.microseconds < 0) else ""
        if v < dt.timedelta(0):
            v = -v
            total = v.days * 86400 + v.seconds
        h, rem = divmod(total, 3600)
        m, s = divmod(rem, 60)
        frac = f".{v.microseconds:06d}" if v.microseconds else ""
        return f"'{sign}{h:02d}:{m:02d}:{s:02d}{frac}'"
    if isinstance(v, set | frozenset):
        return sql_literal(",".join(sorted(v)))
    raise TypeError(f"no SQL literal for {type(v).__name__}")


# ---------------------------------------------------------------------------
# the graph


def _prefix_filter(column: str, prefixes: Sequence[str]) -> tuple[str, list[str]]:
    if not prefixes:
        return f"{column} NOT IN ({', '.join(['%s'] * len(SYSTEM_SCHEMAS))})", list(SYSTEM_SCHEMAS)
    likes = [p.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%" for p in prefixes]
    return "(" + " OR ".join([f"{column} LIKE %s"] * len(likes)) + ")", likes


def load_graph(db: Database, prefixes: Sequence[str] = ()) -> nx.MultiDiGraph:
    """Tables, primary keys and foreign keys of the server (or of the schema prefixes), in three queries.

    With prefixes, the schemas their tables reference are loaded too (three queries per round),
    until no foreign key leads out of what is loaded: an export needs every ancestor to load.
    """
    cond, args = _prefix_filter("table_schema", prefixes)
    tables: list[tuple[str, str]] = []
    pks: dict[str, list[str]] = {}
    fk_cols: dict[tuple[str, str, str], list[tuple[str, str, str]]] = {}
    loaded: set[str] = set()
    while True:
        got = _graph_rows(db, cond, args)
        tables += got[0]
        pks.update(got[1])
        fk_cols.update(got[2])
        loaded |= {s for s, _t in got[0]}
        referenced = {cols[0][1].partition(".")[0] for cols in fk_cols.values()}
        missing = sorted(referenced - loaded)
        if not missing:
            break
        loaded |= set(missing)  # asked once, even if it shows no tables (no privilege on it)
        cond, args = f"table_schema IN ({', '.join(['%s'] * len(missing))})", missing
    infos = [TableInfo(f"{s}.{t}", tuple(pks.get(f"{s}.{t}", ()))) for s, t in tables]
    keys = [ForeignKey(name=name, child=f"{s}.{t}", parent=cols[0][1],
                       columns=tuple((c, rc) for c, _, rc in cols))
            for (s, t, name), cols in fk_cols.items()]
    return build_graph(infos, keys)


def _graph_rows(db: Database, cond: str, args: list[str]) -> tuple[
        list[tuple[str, str]], dict[str, list[str]], dict[tuple[str, str, str], list[tuple[str, str, str]]]]:
    """Base tables, primary-key columns and foreign-key columns of the schemas ``cond`` selects."""
    tables = [(_text(s), _text(t)) for s, t in db.query(
        f"SELECT table_schema, table_name FROM information_schema.tables "
        f"WHERE table_type = 'BASE TABLE' AND {cond}", args)]
    pks: dict[str, list[str]] = {}
    for schema, table, column in db.query(
            f"SELECT table_schema, table_name, column_name FROM information_schema.statistics "
            f"WHERE index_name = 'PRIMARY' AND {cond} ORDER BY table_schema, table_name, seq_in_index", args):
        pks.setdefault(f"{schema}.{table}", []).append(column)
    fk_cols: dict[tuple[str, str, str], list[tuple[str, str, str]]] = {}
    for schema, table, name, column, rschema, rtable, rcolumn in db.query(
            f"SELECT table_schema, table_name, constraint_name, column_name, referenced_table_schema, "
            f"referenced_table_name, referenced_column_name FROM information_schema.key_column_usage "
            f"WHERE referenced_table_name IS NOT NULL AND {cond} "
            f"ORDER BY table_schema, table_name, constraint_name, ordinal_position", args):
        fk_cols.setdefault((schema, table, name), []).append((column, f"{rschema}.{rtable}", rcolumn))
    return tables, pks, fk_cols


# ---------------------------------------------------------------------------
# the export's connection: mysqlclient (C) when installed, pymysql otherwise

DRIVER_ENV = "DJTUI_SQL_DRIVER"  # "pymysql" forces the pure-Python driver (tests, benchmarks)


def _mysqldb() -> Any | None:
    """The C driver, if installed and not switched off: pymysql spends microseconds of Python on
    every row, which is most of an export's time; mysqlclient reads rows in C."""
    if os.environ.get(DRIVER_ENV, "").strip().lower() == "pymysql":
        return None
    try:
        import MySQLdb
        import MySQLdb.cursors
    except ImportError:
        return None
    return MySQLdb


def driver_name(conn: Any = None) -> str:
    if conn is not None:
        return "pymysql" if isinstance(conn, pymysql.connections.Connection) else "mysqlclient"
    return "mysqlclient" if _mysqldb() is not None else "pymysql"


def db_errors() -> tuple[type[BaseException], ...]:
    """The server-error classes of both drivers (for ``except``)."""
    m = _mysqldb()
    return (pymysql.err.MySQLError, m.MySQLError) if m is not None else (pymysql.err.MySQLError,)


def connect_export(settings: ConnectionSettings) -> Any:
    """A connection for reading many rows: mysqlclient when present, else pymysql (same settings)."""
    if settings.user is None:
        raise describe_error(Exception(0, "no user configured"), settings)
    m = _mysqldb()
    try:
        return m.connect(**settings.pymysql_kwargs()) if m is not None else \
            pymysql.connect(**settings.pymysql_kwargs())
    except db_errors() as exc:
        raise describe_error(exc, settings) from None


def cursor_class(conn: Any, kind: str) -> Any:
    """``plain``, ``dict`` or ``stream`` (unbuffered) cursor class of the connection's driver."""
    if isinstance(conn, pymysql.connections.Connection):
        return {"plain": pymysql.cursors.Cursor, "dict": pymysql.cursors.DictCursor,
                "stream": pymysql.cursors.SSCursor}[kind]
    import MySQLdb.cursors

    return {"plain": MySQLdb.cursors.Cursor, "dict": MySQLdb.cursors.DictCursor,
            "stream": MySQLdb.cursors.SSCursor}[kind]


# ---------------------------------------------------------------------------
# running the cascade


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


STATEMENT_TIMEOUT_S = 300.0  # default time limit of a statement that evaluates a user restriction
_TIMEOUT_ERRORS = (1969, 3024)  # MariaDB max_statement_time, MySQL max_execution_time exceeded


def _time_limit_sql(mariadb: bool, seconds: float | None) -> str:
    """The session setting that stops a runaway restriction; 0 switches it off.

    MySQL's ``max_execution_time`` covers read-only SELECTs only (``count_leaf``), not the
    cascade's ``INSERT ... SELECT``: on MySQL the cascade has no server-side limit.
    """
    limit = float(seconds or 0)
    if mariadb:
        return f"SET SESSION max_statement_time = {limit:.3f}"
    return f"SET SESSION max_execution_time = {round(limit * 1000)}"


def timeout_failure(label: str, index: int, seconds: float | None) -> OperationFailed:
    return OperationFailed(
        f"the restriction of {label} ran longer than the statement time limit "
        f"({float(seconds or 0):g} s) and was stopped\n"
        "  hint: make the condition cheaper (use indexed key columns), or raise export.statement_timeout_s "
        "(or --statement-timeout)")


def _is_mariadb(conn: Any) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION(), @@version_comment")
        version, comment = cur.fetchone()
    return "mariadb" in f"{version} {comment}".lower()


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
    if int(log_bin or 0) and _text(fmt).upper() == "STATEMENT":
        return "Aria" if mariadb else "MyISAM"
    return "InnoDB"


class ExportSession:
    """One dedicated connection holding the key sets; use as a context manager.

    ``statement_timeout`` (seconds; None or 0: none) limits each statement that evaluates a leaf's
    restriction, so ``SLEEP()`` or a condition that scans for hours ends with a clear error.
    """

    def __init__(self, db: Database, graph: nx.MultiDiGraph, leaves: list[Leaf], *, complete_parts: bool = True,
                 statement_timeout: float | None = STATEMENT_TIMEOUT_S):
        self.db = db
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

    def __enter__(self) -> ExportSession:
        self.conn = connect_export(self.db.settings) if _mysqldb() is not None else self.db.connect()
        self._exec("SET SESSION time_zone = '+00:00'")
        self._mariadb = _is_mariadb(self.conn)
        self._engine = _key_engine(self.conn, self._mariadb)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the transaction with COMMIT: it is READ ONLY, so nothing but key sets was written."""
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
            cols = ", ".join(quote_ident(c) for c in self.pk(t))
            if t not in in_memory:
                self._exec(f"CREATE TEMPORARY TABLE {name} (PRIMARY KEY ({cols})) ENGINE={self._engine} "
                           f"SELECT {cols} FROM {quote_table(t)} LIMIT 0")
            else:  # hash lookups in memory: joins against the key set cost a third of a B-tree's
                self._exec(f"CREATE TEMPORARY TABLE {name} (PRIMARY KEY USING HASH ({cols})) ENGINE=MEMORY "
                           f"SELECT {cols} FROM {quote_table(t)} LIMIT 0")
                self._in_memory.add(name)
            self._temp[t] = name
        self._exec("START TRANSACTION READ ONLY")
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
        self.result.counts = counts
        self._exec("COMMIT")  # cheap: only the key sets were written (a rollback would undo them row by row)
        self._exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        self._exec("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        return self.result

    def _memory_candidates(self) -> set[str]:
        """The tables whose key sets live in memory: the largest by the server's estimate (their
        joins cost the most), at most KEY_MEMORY_TABLES, none with a BLOB/TEXT key column (MEMORY cannot hold them)."""
        assert self.conn is not None
        dbs = sorted({split_name(t)[0] for t in self.plan.tables})
        with self.conn.cursor() as cur:
            cur.execute("SELECT table_schema, table_name, table_rows FROM information_schema.tables "
                        f"WHERE table_schema IN ({', '.join(['%s'] * len(dbs))})", dbs)
            estimate = {f"{_text(s)}.{_text(n)}": int(r or 0) for s, n, r in cur.fetchall()}
            cur.execute("SELECT DISTINCT table_schema, table_name FROM information_schema.columns "
                        f"WHERE table_schema IN ({', '.join(['%s'] * len(dbs))}) AND column_key = 'PRI' "
                        "AND (data_type LIKE '%%blob%%' OR data_type LIKE '%%text%%')", dbs)
            long_keys = {f"{_text(s)}.{_text(n)}" for s, n in cur.fetchall()}
        sizes = {t: estimate.get(t, 0) for t in self.plan.tables if t not in long_keys}
        return set(sorted(sizes, key=lambda t: -sizes[t])[:KEY_MEMORY_TABLES])

    def _leaf(self, table: str, index: int, restr: str) -> None:
        cols = ", ".join(quote_ident(c) for c in self.pk(table))
        where = f" WHERE ({restr})" if restr.strip() else ""
        limited = bool(where and self.statement_timeout)
        try:
            if limited:
                self._exec(_time_limit_sql(self._mariadb, self.statement_timeout))
            try:
                self._into(table, lambda: f"SELECT {cols} FROM {quote_table(table)}{where}")
                if where:
                    with self.conn.cursor() as cur:
                        self.result.warnings += [f"{self.leaves[index].label(index)}: the server coerced a value "
                                                 f"({w}); check the restriction" for w in coerced_values(cur)]
            finally:
                if limited:
                    self._exec(_time_limit_sql(self._mariadb, 0))
        except db_errors() as exc:
            if exc.args and exc.args[0] in _TIMEOUT_ERRORS:
                raise timeout_failure(self.leaves[index].label(index), index, self.statement_timeout) from None
            msg = exc.args[1] if len(exc.args) > 1 else str(exc)
            hint = ("restrictions run read-only: they can only select" if exc.args and exc.args[0] == 1792
                    else "fix the condition; it is used as WHERE (...) on that table")
            raise UserError(f"the restriction of {self.leaves[index].label(index)} fails: {msg}",
                            where=f"leaf {index + 1}", hint=hint) from None

    def _up(self, fk: ForeignKey) -> None:
        """Semijoin the child's key set across ``fk``: the parent rows its rows reference."""
        child, parent = fk.child, fk.parent
        on = " AND ".join(f"c.{quote_ident(a)} = p.{quote_ident(b)}" for a, b in fk.columns)
        keys = " AND ".join(f"c.{quote_ident(c)} = k.{quote_ident(c)}" for c in self.pk(child))
        cols = ", ".join(f"p.{quote_ident(c)}" for c in self.pk(parent))
        self._into(parent, lambda: f"SELECT DISTINCT {cols} FROM {self._temp[child]} AS k "
                                   f"JOIN {quote_table(child)} AS c ON {keys} JOIN {quote_table(parent)} AS p ON {on}")

    def _part(self, chain: tuple[ForeignKey, ...]) -> None:
        """Every row of a part whose chain of foreign keys (master first) leads to a master row in the export.

        The chain may pass through other parts of the same master (``probe__electrode`` ->
        ``probe__shank`` -> ``probe``) and through renamed keys; each hop joins on its own column map.
        """
        master, part = chain[0].parent, chain[-1].child
        keys = " AND ".join(f"j0.{quote_ident(c)} = k.{quote_ident(c)}" for c in self.pk(master))
        joins = []
        for n, fk in enumerate(chain, start=1):
            on = " AND ".join(f"j{n}.{quote_ident(a)} = j{n - 1}.{quote_ident(b)}" for a, b in fk.columns)
            joins.append(f"JOIN {quote_table(fk.child)} AS j{n} ON {on}")
        cols = ", ".join(f"j{len(chain)}.{quote_ident(c)}" for c in self.pk(part))
        self._into(part, lambda: f"SELECT DISTINCT {cols} FROM {self._temp[master]} AS k "
                                 f"JOIN {quote_table(master)} AS j0 ON {keys} {' '.join(joins)}")

    def _self(self, fk: ForeignKey) -> None:
        """A table that references itself: add the parent rows of its key set's rows, until none is new.

        A temporary table may appear only once in a statement, so new keys go through a second one.
        """
        t = fk.child
        stage = f"{self._temp[t]}_up"
        cols = ", ".join(quote_ident(c) for c in self.pk(t))
        if stage not in self._staged:
            self._exec("COMMIT")  # a READ ONLY transaction may not create tables
            self._exec(f"CREATE TEMPORARY TABLE {stage} (PRIMARY KEY ({cols})) ENGINE={self._engine} "
                       f"SELECT {cols} FROM {quote_table(t)} LIMIT 0")
            self._exec("START TRANSACTION READ ONLY")
            self._staged.add(stage)
        on = " AND ".join(f"c.{quote_ident(a)} = p.{quote_ident(b)}" for a, b in fk.columns)
        keys = " AND ".join(f"c.{quote_ident(c)} = k.{quote_ident(c)}" for c in self.pk(t))
        pcols = ", ".join(f"p.{quote_ident(c)}" for c in self.pk(t))
        while True:
            self._exec(f"DELETE FROM {stage}")
            self._exec(f"INSERT IGNORE INTO {stage} SELECT DISTINCT {pcols} FROM {self._temp[t]} AS k "
                       f"JOIN {quote_table(t)} AS c ON {keys} JOIN {quote_table(t)} AS p ON {on}")
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
        cols = ", ".join(quote_ident(c) for c in self.pk(table))
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

    def show_create_table(self, table: str) -> str:
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(f"SHOW CREATE TABLE {quote_table(table)}")
            return cur.fetchone()[1]

    def show_create_database(self, db: str) -> str:
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(f"SHOW CREATE DATABASE {quote_ident(db)}")
            return cur.fetchone()[1]

    def columns(self, table: str) -> list[str]:
        return [c.name for c in self.column_types(table)]

    def column_types(self, table: str) -> list[Column]:
        if table not in self._columns:
            self._columns[table] = table_columns(self.conn, table)
        return self._columns[table]

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
                db, name = split_name(table)
                with self.conn.cursor() as cur:
                    cur.execute("SELECT table_rows FROM information_schema.tables WHERE table_schema = %s "
                                "AND table_name = %s", (db, name))
                    row = cur.fetchone()
                estimate = int(row[0] or 0) if row else 0
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
        expr = literal_row_expression(self.column_types(table), "t")
        keys = " AND ".join(f"t.{quote_ident(c)} = k.{quote_ident(c)}" for c in pk)
        if self.table_driven(table):
            source = f"{quote_table(table)} AS t STRAIGHT_JOIN {self._temp[table]} AS k ON {keys}"
            order = ", ".join(f"t.{quote_ident(c)}" for c in pk)
        else:
            source = f"{self._temp[table]} AS k JOIN {quote_table(table)} AS t ON {keys}"
            order = ", ".join(f"k.{quote_ident(c)}" for c in pk)
        batch = max(1, int(batch))
        if not isinstance(self.conn, pymysql.connections.Connection):
            yield from stream_literal_rows(self.conn, expr, source, batch)
            return
        inner = f"SELECT {expr} AS r, ROW_NUMBER() OVER (ORDER BY {order}) AS rn FROM {source}"
        sql = (f"SELECT (rn - 1) DIV {batch} AS g, COUNT(*), SUM(CHAR_LENGTH(r)) + 2 * (COUNT(*) - 1), "
               f"GROUP_CONCAT(r SEPARATOR {_ROW_SEP}) FROM ({inner}) AS q GROUP BY g")
        if self.group_concat_limit:
            self._exec("SET SESSION group_concat_max_len = %s", (self.group_concat_limit,))
        else:
            self._exec("SET SESSION group_concat_max_len = @@max_allowed_packet")
        commandlog.record("sql", sql, None)
        cut: list[int] = []
        with self.conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(sql)
            while True:
                rows = cur.fetchmany(16)
                if not rows:
                    break
                for g, _n, length, text in rows:
                    if text is None or len(text) != int(length):
                        cut.append(int(g))
                    else:
                        yield text.encode("utf-8", "surrogatepass").split(b",\n")
        if cut:
            refetch = (f"SELECT CONVERT(CONVERT(r USING utf8mb4) USING binary) FROM ({inner}) AS q "
                       f"WHERE (rn - 1) DIV {batch} IN ({', '.join(map(str, cut))})")
            commandlog.record("sql", refetch, None)
            with self.conn.cursor(pymysql.cursors.SSCursor) as cur:
                cur.execute(refetch)
                while True:
                    rows = cur.fetchmany(batch)
                    if not rows:
                        break
                    yield [r[0] for r in rows]


def stream_literal_rows(conn: Any, expr: str, source: str, batch: int = 1000) -> Iterator[list[bytes]]:
    """``SELECT expr FROM source`` unbuffered, as UTF-8 bytes, ``batch`` rows at a time.

    Text, not ``CONVERT(... USING binary)``: the server's conversion costs more than the driver's
    decoding. With mysqlclient a reader thread fetches (the C driver lets go of the GIL while it
    waits on the server) while the caller hashes and writes the previous batch.
    """
    sql = f"SELECT {expr} FROM {source}"
    commandlog.record("sql", sql, None)
    encode = str.encode
    if isinstance(conn, pymysql.connections.Connection):
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(sql)
            while rows := cur.fetchmany(batch):
                yield [encode(r[0]) for r in rows]
        return
    import queue
    import threading

    batches: queue.Queue[Any] = queue.Queue(maxsize=8)
    stop = threading.Event()
    done = object()

    def read() -> None:
        try:
            with conn.cursor(cursor_class(conn, "stream")) as cur:
                cur.execute(sql)
                while not stop.is_set() and (rows := cur.fetchmany(batch)):
                    item: Any = [encode(r[0]) for r in rows]
                    while not stop.is_set():
                        try:
                            batches.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
        except BaseException as exc:  # handed to the caller's thread
            batches.put(exc)
            return
        batches.put(done)

    reader = threading.Thread(target=read, name="djtui-export-read", daemon=True)
    reader.start()
    try:
        while (item := batches.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # the connection is free again only when the reader is gone
            try:
                batches.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()


_BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "geometry", "point",
                 "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection"}
_NUMERIC_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "double",
                  "real", "year"}
_FLOAT_TYPES = {"float"}
_TEMPORAL_TYPES = {"date", "datetime", "timestamp", "time"}  # their text never holds a quote or a line break


_ROW_SEP = "',\\n'"  # SQL: ',\n' (comma, newline)
_CR, _CR_ESC, _LF, _LF_ESC = "'\\r'", "'\\\\r'", "'\\n'", "'\\\\n'"  # SQL: '\r' and '\\r'


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # information_schema's data_type, lower case
    nullable: bool = True


_GENERATED = re.compile(r"\b(?:VIRTUAL|STORED|PERSISTENT)\b", re.I)  # not MySQL's DEFAULT_GENERATED


def table_columns(conn: Any, table: str) -> list[Column]:
    """The columns an export reads and INSERTs, in table order: every column but the generated
    ones (VIRTUAL, STORED, PERSISTENT), which MySQL 8 and strict mode refuse a value for and the
    loaded copy computes again; mysqldump leaves them out too. ``verify`` reads the same ones."""
    db, name = split_name(table)
    with conn.cursor() as cur:
        cur.execute("SELECT column_name, data_type, is_nullable, extra FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", (db, name))
        return [Column(_text(r[0]), _text(r[1]).lower(), _text(r[2]).upper() != "NO") for r in cur.fetchall()
                if not _GENERATED.search(_text(r[3]))]


def literal_row_expression(columns: Sequence[Column], alias: str) -> str:
    """A SELECT expression giving each row as a SQL tuple literal: numbers bare, binary as hex,
    everything else through ``QUOTE()`` (which escapes quote, backslash, NUL and Ctrl-Z).

    The server evaluates this for every exported row, so each part is as cheap as its type
    allows: a NOT NULL number is the column itself (``CONCAT_WS`` turns it into the same text a
    ``CAST`` would, and cannot skip it), dates and times need no line-break escapes. The text does
    not depend on nullability, so ``verify`` gets the same literals from a copy whatever its DDL.
    FLOAT is printed through DOUBLE: the server's own text of a FLOAT has six digits, so
    16777216 would come back as 16777200 (mysqldump has that loss); the double's digits load
    back into the same FLOAT.
    """
    parts = []
    for col in columns:
        c = f"{alias}.{quote_ident(col.name)}"
        if col.dtype in _BINARY_TYPES:
            value = f"IF(LENGTH({c}) = 0, QUOTE(''), CONCAT('0x', HEX({c})))"
        elif col.dtype == "bit":
            value = f"CAST({c} + 0 AS CHAR)"
        elif col.dtype in _FLOAT_TYPES:
            value = f"({c} + 0e0)"
        elif col.dtype in _NUMERIC_TYPES:
            value = c
        elif col.dtype in _TEMPORAL_TYPES:
            value = f"QUOTE({c})"
        else:  # line breaks escaped too, so no tool's newline conversion can change a value
            value = f"REPLACE(REPLACE(QUOTE({c}), {_CR}, {_CR_ESC}), {_LF}, {_LF_ESC})"
        quoted = value.startswith(("QUOTE(", "REPLACE("))  # QUOTE(NULL) is already NULL, unquoted
        parts.append(f"IFNULL({value}, 'NULL')" if col.nullable and not quoted else value)
    return "CONCAT('(', CONCAT_WS(',', " + ", ".join(parts) + "), ')')"


def plan_export(db: Database, leaves: Iterable[Leaf], prefixes: Sequence[str] = (),
                graph: nx.MultiDiGraph | None = None, *,
                statement_timeout: float | None = STATEMENT_TIMEOUT_S) -> ExportResult:
    """Counts only: the cascade run, the key sets dropped with the connection."""
    graph = graph if graph is not None else load_graph(db, prefixes)
    with ExportSession(db, graph, list(leaves), statement_timeout=statement_timeout) as session:
        return session.run()


def coerced_values(cur: Any) -> list[str]:
    """The warnings of the statement just run: a value the server coerced instead of refusing
    (``session_date > '2026-13-45'`` compares with a truncated value and matches every row:
    "Truncated incorrect datetime value"). Duplicate keys that INSERT IGNORE skipped are not news."""
    cur.execute("SHOW WARNINGS")
    out = []
    for row in cur.fetchall():
        code, text = row[1], row[2]
        text = text.decode() if isinstance(text, bytes) else str(text)
        if int(code) != 1062 and text not in out:
            out.append(text)
    return out


def count_leaf(db: Database, leaf: Leaf, index: int = 0, *,
               statement_timeout: float | None = STATEMENT_TIMEOUT_S) -> int:
    """Rows a single restriction selects, run read-only and nonlocking (a plain SELECT), under the
    statement time limit (the screen validates as the user types)."""
    return LeafCount(db, leaf, index, statement_timeout=statement_timeout).run()


class CountCancelled(Exception):
    """A :class:`LeafCount` was cancelled (superseded, or its screen left) before it finished."""


class LeafCount:
    """One restriction check (``count_leaf``) that another thread can stop on the server.

    ``run()`` counts on a connection of its own; ``cancel()`` (from any thread) marks it cancelled
    and kills that connection from a second one (``KILL <id>``: unlike ``KILL QUERY`` it also stops
    a query that was sent but has not started yet), so a superseded ``SELECT COUNT(*)`` does not go
    on scanning on the server. A cancelled ``run()`` raises :class:`CountCancelled`.
    """

    def __init__(self, db: Database, leaf: Leaf, index: int = 0, *,
                 statement_timeout: float | None = STATEMENT_TIMEOUT_S, label: str | None = None) -> None:
        self.db = db
        self.leaf = leaf
        self.index = index
        self.label = label or leaf.label(index)  # how errors name it: "leaf 2 (...)", or the text being typed
        self.warnings: list[str] = []  # what the server coerced (SHOW WARNINGS), e.g. an invalid date
        self.statement_timeout = statement_timeout
        self._lock = threading.Lock()
        self._conn_id: int | None = None
        self.cancelled = False

    def cancel(self) -> None:
        """Stop the check; blocks for one short connection (call it from a worker thread)."""
        with self._lock:
            if self.cancelled:
                return
            self.cancelled = True
            conn_id = self._conn_id
        if conn_id is None:
            return  # not connected yet: run() sees the flag before it sends anything
        try:
            killer = self.db.connect()
        except Exception:
            return  # the server is gone: so is the query
        try:
            with killer.cursor() as cur:
                commandlog.record("sql", f"KILL {conn_id}", None)
                cur.execute(f"KILL {int(conn_id)}")
        except pymysql.err.MySQLError:
            pass  # it finished meanwhile (unknown thread id)
        finally:
            killer.close()

    def run(self) -> int:
        leaf, index, statement_timeout = self.leaf, self.index, self.statement_timeout
        label = self.label
        check_restriction(leaf.restriction, where=label)
        where = f" WHERE ({leaf.restriction})" if leaf.restriction.strip() else ""
        if self.cancelled:
            raise CountCancelled()
        conn = self.db.connect()
        try:
            with self._lock:
                if self.cancelled:
                    raise CountCancelled()
                self._conn_id = conn.thread_id()
            with conn.cursor() as cur:
                if where and statement_timeout:
                    cur.execute(_time_limit_sql(_is_mariadb(conn), statement_timeout))
                cur.execute("START TRANSACTION READ ONLY")
                sql = f"SELECT COUNT(*) FROM {quote_table(leaf.table)}{where}"
                commandlog.record("sql", sql, None)
                try:
                    cur.execute(sql)
                except (pymysql.err.MySQLError, OSError) as exc:
                    if self.cancelled:
                        raise CountCancelled() from None
                    if exc.args and exc.args[0] in _TIMEOUT_ERRORS:
                        raise timeout_failure(label, index, statement_timeout) from None
                    msg = exc.args[1] if len(exc.args) > 1 else str(exc)
                    raise UserError(f"the restriction of {label} fails: {msg}",
                                    where=f"leaf {index + 1}" if label == leaf.label(index) else None) from None
                n = int(cur.fetchone()[0])
                self.warnings = coerced_values(cur)
            if self.cancelled:
                raise CountCancelled()
            return n
        except pymysql.err.MySQLError:
            if self.cancelled:
                raise CountCancelled() from None
            raise
        finally:
            try:
                conn.close()
            except Exception:
                pass  # killed under us


# ---------------------------------------------------------------------------
# the files an export needs


@dataclass(frozen=True)
class NeededFile:
    """One stored object referenced by exported rows.

    ``exists`` is None where it could not be checked; ``problem`` then says why (store not in the
    config, a mount that did not answer, S3 unreachable), or notes a size that differs.
    """

    store: str
    path: str  # relative to the store's location
    size: int | None
    table: str
    exists: bool | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "path": self.path, "size": self.size, "table": self.table,
                "exists": self.exists, "problem": self.problem}

    def mark(self, notes: dict[str, int]) -> str:
        """``yes``, ``MISSING`` or ``?``, with the number of its problem's note (``problem_notes``)."""
        text = {True: "yes", False: "MISSING", None: "?"}[self.exists]
        return f"{text} [{notes[self.problem]}]" if self.problem in notes else text


def problem_notes(files: Iterable[NeededFile]) -> dict[str, int]:
    """Each distinct problem text and its note number: one store's problem is usually every one of
    its files' problem, so people read it once, below the list, not once per row."""
    notes: dict[str, int] = {}
    for f in files:
        if f.problem and f.problem not in notes:
            notes[f.problem] = len(notes) + 1
    return notes


_CODEC_COMMENT = re.compile(r"^:<\w+@(\w*)>")


def needed_files(session: ExportSession, stores: Sequence[Any] = (), *, timeout: float = 5.0) -> list[NeededFile]:
    """Objects of 0.14 ``~external_<store>`` rows in the export and of 2.x stored JSON columns,
    checked in the stores named in the config (``stores:``, file and S3); the session must have run."""
    from djtui.domain import stores as layouts

    assert session.conn is not None
    found: list[NeededFile] = []
    for table in session.plan.tables:
        db, name = split_name(table)
        keys = " AND ".join(f"t.{quote_ident(c)} = k.{quote_ident(c)}" for c in session.pk(table))
        base = f"FROM {session.key_table(table)} AS k JOIN {quote_table(table)} AS t ON {keys}"
        with session.conn.cursor(cursor_class(session.conn, "dict")) as cur:
            if name.startswith("~external_"):
                cur.execute(f"SELECT t.* {base}")
                for row in cur.fetchall():
                    path = layouts.legacy_object_path(db, row["hash"], row.get("attachment_name"), row.get("filepath"))
                    size = row.get("size")
                    found.append(NeededFile(name[len("~external_"):], path, None if size is None else int(size),
                                            table))
                continue
            cur.execute("SELECT column_name AS c, data_type AS d, column_comment AS m FROM information_schema.columns "
                        "WHERE table_schema = %s AND table_name = %s", (db, name))
            stored = [r["c"] for r in cur.fetchall()
                      if _text(r["d"]).lower() == "json" or _CODEC_COMMENT.match(_text(r["m"]))]
            if not stored:
                continue
            cur.execute(f"SELECT {', '.join('t.' + quote_ident(c) for c in stored)} {base}")
            for row in cur.fetchall():
                for value in row.values():
                    try:
                        data = json.loads(value) if isinstance(value, str | bytes) else None
                    except ValueError:
                        continue
                    if isinstance(data, dict) and data.get("path") and data.get("store"):
                        found.append(NeededFile(str(data["store"]), layouts.join(str(data["path"])),
                                                data.get("size"), table))
    return check_files(sorted(set(found), key=lambda f: (f.store, f.path)), stores, timeout=timeout)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def check_files(files: Sequence[NeededFile], stores: Sequence[Any] = (), *, timeout: float = 5.0,
                workers: int = 16) -> list[NeededFile]:
    """Does each file exist in its store? File stores under a deadline (a hung mount is reported,
    never waited on); S3 stores by HEAD requests in parallel. Sizes are compared where known."""
    config = {s.name: s for s in stores}
    by_store: dict[str, list[NeededFile]] = {}
    for f in files:
        by_store.setdefault(f.store, []).append(f)
    answers: dict[tuple[str, str], tuple[bool | None, int | None, str | None]] = {}
    for name, group in by_store.items():
        settings = config.get(name)
        protocol = getattr(settings, "protocol", None)
        rels = [f.path for f in group]
        if protocol == "file":
            got = _check_file_store(str(settings.location), rels, timeout)
        elif protocol == "s3":
            got = _check_s3_store(settings, rels, workers)
        else:
            why = (f"store {name!r} is not in the config (stores:), so its files were not checked"
                   if settings is None else f"store {name!r} has protocol {protocol!r}, which djtui cannot check")
            got = {rel: (None, None, why) for rel in rels}
        answers.update({(name, rel): v for rel, v in got.items()})
    out = []
    for f in files:
        exists, size, problem = answers[(f.store, f.path)]
        if exists and problem is None and f.size is not None and size is not None and size != f.size:
            problem = f"{size} bytes in the store, {f.size} in the database"
        # the database may not know a size (2.x JSON without one): the store's size is the one to ship
        out.append(NeededFile(f.store, f.path, size if f.size is None and exists else f.size, f.table, exists,
                              problem))
    return out


_Answer = tuple[bool | None, int | None, str | None]  # exists, size in the store, problem


def _check_file_store(root: str, rels: Sequence[str], timeout: float) -> dict[str, _Answer]:
    """``stat`` every object under a deadline: what answered before a hang is kept, the rest is unknown."""
    from djtui.services.filesystem import Hung, with_deadline

    got: dict[str, _Answer] = {}

    def check(beat: Callable[[], None]) -> None:
        if not os.path.isdir(root):
            raise FileNotFoundError(root)
        beat()
        for rel in rels:
            try:
                st = os.stat(os.path.join(root, rel))
                got[rel] = (True, st.st_size, None)
            except (FileNotFoundError, NotADirectoryError):
                got[rel] = (False, None, None)
            except OSError as exc:
                got[rel] = (None, None, f"{rel}: {exc.strerror or exc}")
            beat()

    try:
        with_deadline(check, timeout, root)
    except Hung as exc:
        done = dict(got)  # the stuck thread may still add to ``got``
        return {rel: done.get(rel, (None, None, str(exc))) for rel in rels}
    except FileNotFoundError:
        why = f"the store directory {root} does not exist (is the share mounted?)"
        return {rel: (None, None, why) for rel in rels}
    return got


def _check_s3_store(settings: Any, rels: Sequence[str], workers: int) -> dict[str, _Answer]:
    """HEAD each object, in parallel; an unreachable or refusing store marks all unknown after one try."""
    from concurrent.futures import ThreadPoolExecutor

    from djtui.services.s3 import S3Store

    def head(rel: str) -> _Answer:
        obj = store.head(rel)
        return (False, None, None) if obj is None else (True, obj.size, None)

    try:
        store = S3Store(settings)
        commandlog.record("exec", f"s3 head {len(rels)} objects in s3://{store.bucket}/{store.location}")
        first = head(rels[0])
    except UserError:
        raise
    except Exception as exc:  # botocore: endpoint unreachable, access denied, bad credentials
        why = f"store {settings.name!r} (s3://{settings.bucket}) could not be checked: {exc}"
        return {rel: (None, None, why) for rel in rels}
    got = {rels[0]: first}
    rest = list(rels[1:])

    def safe(rel: str) -> _Answer:
        try:
            return head(rel)
        except Exception as exc:
            return (None, None, f"{rel}: {exc}")

    if rest:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(rest))),
                                thread_name_prefix="djtui-s3head") as pool:
            got.update(zip(rest, pool.map(safe, rest), strict=True))
    return got


def plan_with_files(db: Database, leaves: Iterable[Leaf], graph: nx.MultiDiGraph,
                    stores: Sequence[Any] = (), *,
                    statement_timeout: float | None = STATEMENT_TIMEOUT_S) -> tuple[ExportResult, list[NeededFile]]:
    """Counts and the files the export needs, from one cascade (the screen's live view)."""
    with ExportSession(db, graph, list(leaves), statement_timeout=statement_timeout) as session:
        result = session.run()
        return result, needed_files(session, stores)


# ---------------------------------------------------------------------------
# Spyglass's export log as a source of leaves


def paper_leaves(db: Database, paper: str, analysis: str | None = None,
                 log_schema: str = "common_usage") -> list[Leaf]:
    """The (table, restriction) pairs Spyglass logged for a paper (``export_selection`` and its ``__table`` part)."""
    found = db.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s "
                     "AND table_name IN ('export_selection', 'export_selection__table')", (log_schema,))
    if not found or int(found[0][0]) < 2:
        raise UserError(f"no Spyglass export log on this server (`{log_schema}`.`export_selection`)",
                        where="--paper", hint="use --leaf, or --export-log SCHEMA if the log lives elsewhere")
    s = quote_ident(log_schema)
    args: list[Any] = [paper]
    extra = ""
    if analysis is not None:
        extra = " AND e.analysis_id = %s"
        args.append(analysis)
    rows = db.query(f"SELECT t.table_name, t.restriction FROM {s}.`export_selection` AS e "
                    f"JOIN {s}.`export_selection__table` AS t USING (export_id) "
                    f"WHERE e.paper_id = %s{extra} ORDER BY t.export_id, t.table_id", args)
    if not rows and not _paper_file_leaves(db, log_schema, args, extra):
        raise UserError(f"the export log holds no tables for paper {paper!r}"
                        + (f" analysis {analysis!r}" if analysis else ""), where="--paper")
    leaves = []
    for leaf in _paper_file_leaves(db, log_schema, args, extra):
        leaves.append(leaf)
    for name, restriction in rows:
        text = restriction.decode() if isinstance(restriction, bytes) else str(restriction or "")
        m = re.match(r"^`((?:[^`]|``)+)`\.`((?:[^`]|``)+)`$", str(name).strip())
        table = f"{m.group(1)}.{m.group(2)}" if m else str(name).replace("`", "")
        check_restriction(text, where=f"--paper {paper}: {table}")
        leaf = Leaf(table, text.strip())
        if leaf not in leaves:
            leaves.append(leaf)
    return leaves


def _paper_file_leaves(db: Database, log_schema: str, args: list[Any], extra: str) -> list[Leaf]:
    """The analysis files Spyglass logged for the paper (``export_selection__file``), as leaves on the
    table that part references (its foreign key says which: ``AnalysisNwbfile`` in Spyglass)."""
    fks = db.query("SELECT column_name, referenced_table_schema, referenced_table_name, referenced_column_name "
                   "FROM information_schema.key_column_usage WHERE table_schema = %s "
                   "AND table_name = 'export_selection__file' AND referenced_table_name IS NOT NULL "
                   "AND referenced_table_name <> 'export_selection' ORDER BY ordinal_position", (log_schema,))
    if not fks:
        return []
    column, rschema, rtable, rcolumn = (_text(v) for v in fks[0])
    s = quote_ident(log_schema)
    names = [r[0] for r in db.query(f"SELECT DISTINCT f.{quote_ident(column)} FROM {s}.`export_selection` AS e "
                                    f"JOIN {s}.`export_selection__file` AS f USING (export_id) "
                                    f"WHERE e.paper_id = %s{extra} ORDER BY 1", args)]
    if not names:
        return []
    return [Leaf(f"{rschema}.{rtable}", f"{quote_ident(rcolumn)} IN ({', '.join(sql_literal(n) for n in names)})")]
