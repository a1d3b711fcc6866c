"""PostgreSQL 15+ (DataJoint 2.x's second backend): ``pg_catalog`` catalogs, flavor and version, the
statement time limit, and ``pg_dump`` / ``psql`` with a private ``.pgpass`` file.

A DataJoint schema is a PostgreSQL schema inside one database (``database.name``, DataJoint's default
``postgres``); ``schemas()`` lists those, leaving out the server's own and the always-present ``public``.
The driver is psycopg2, the one DataJoint 2.x itself uses; like pymysql it takes ``%s`` parameters.
Accounts (roles, grants, default privileges) are PostgreSQL's own: ``postgres_accounts.py``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from djtui.domain.dialects import POSTGRES, SqlDialect
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.backends import Column, DumpTools, ForeignKey, Querier, ServerInfo, TableName
from djtui.services.backends.postgres_accounts import PostgresAccounts

SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast", "public"})
_SYSTEM_SQL = ("n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'public') "
               "AND n.nspname NOT LIKE 'pg\\_temp\\_%%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%'")
QUERY_CANCELED = "57014"
CLIENT_CHECK_MS = 2000  # how often the server checks, during a statement, that its client is still there


class PgConnection:
    """A psycopg2 connection made in two steps (``open`` then ``establish``), so the Database can track a
    connection before the network wait and abort it from another thread.

    libpq's connect blocks in C with no handle to wake it, so ``establish`` connects in a helper thread and
    waits for it or for ``abort``; a connection that arrives after an abort is closed by that thread."""

    def __init__(self, kwargs: dict[str, Any]):
        self.kwargs = kwargs
        self.raw: Any = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.aborted = False

    @property
    def open(self) -> bool:
        return self.raw is not None and not self.raw.closed

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()

    def connect_interruptibly(self) -> None:
        box: dict[str, Any] = {}

        def body() -> None:
            try:
                raw = psycopg2.connect(**self.kwargs)
            except BaseException as exc:  # handed to the waiting caller
                box["error"] = exc
            else:
                with self._lock:
                    if self.aborted:
                        raw.close()
                    else:
                        self.raw = raw
            self._wake.set()

        threading.Thread(target=body, name="djtui-pg-connect", daemon=True).start()
        self._wake.wait()
        with self._lock:
            if self.aborted and self.raw is None:
                raise psycopg2.OperationalError("connecting was aborted before the server answered")
        if "error" in box:
            raise box["error"]

    def abort_connecting(self) -> None:
        with self._lock:
            self.aborted = True
        self._wake.set()

    def __getattr__(self, name: str) -> Any:  # the driver's own API (copy_expert, server_version, ...)
        if self.raw is None:
            raise AttributeError(name)
        return getattr(self.raw, name)


TCP_USER_TIMEOUT_MS = 30_000  # unacknowledged data on the wire this long ends the connection (as the keepalives do)


def conn_kwargs(settings: Any, database: str | None = None, **overrides: Any) -> dict[str, Any]:
    """psycopg2.connect keywords from ``ConnectionSettings`` (``database`` overrides the settings' dbname)."""
    kw: dict[str, Any] = {
        "user": settings.user, "password": settings.password.reveal() if settings.password else "",
        "dbname": database or settings.dbname or "postgres", "connect_timeout": settings.connect_timeout,
        "application_name": "djtui",
        # a server gone without a FIN: the kernel gives up instead of a read that never returns
        "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
    }
    if psycopg2.extensions.libpq_version() >= 120000:
        # a cut network: a send the peer never acknowledges ends too (keepalives only probe an idle
        # line); libpq 12+, ignored on a Unix socket
        kw["tcp_user_timeout"] = TCP_USER_TIMEOUT_MS
    if settings.socket:
        kw["host"] = settings.socket if os.path.isdir(settings.socket) else os.path.dirname(settings.socket)
    else:
        kw["host"] = settings.host
    kw["port"] = settings.port
    for key in ("read_timeout", "write_timeout"):  # pymysql's; the statement limit covers PostgreSQL
        overrides.pop(key, None)
    kw.update(overrides)
    return kw


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _conninfo_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def find_client_tool(name: str) -> str | None:
    """A PostgreSQL client program: on PATH, else in the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                  if Path(p).parent.name.isdigit() else -1, reverse=True)
    for d in dirs:
        if os.access(Path(d) / name, os.X_OK):
            return str(Path(d) / name)
    return None


class PostgresBackend(PostgresAccounts):
    """PostgreSQL through ``db.query`` (a :class:`Querier`); the accounts part is ``PostgresAccounts``."""

    name = "postgresql"
    dialect: SqlDialect = POSTGRES
    system_schemas = SYSTEM_SCHEMAS
    timeout_codes: tuple[int, ...] = ()
    account_hosts = False  # pg_hba.conf decides where a role may log in from
    default_port = 5432
    driver_error = psycopg2.Error
    transient_errors = (psycopg2.OperationalError, psycopg2.InterfaceError)

    def __init__(self, db: Querier):
        self._db = db
        self._info: ServerInfo | None = None
        self._conninfo: dict[Path, str] = {}

    def _q(self, sql: str, args: Sequence[Any] | None = None) -> list:
        return self._db.query(sql, args)

    # -- the driver ------------------------------------------------------------------------------

    def open(self, settings: Any, database: str | None = None, **overrides: Any) -> PgConnection:
        return PgConnection(conn_kwargs(settings, database, **overrides))

    def establish(self, conn: PgConnection) -> None:
        conn.connect_interruptibly()
        conn.raw.autocommit = True

    def cursor(self, conn: Any, *, dict_rows: bool = False) -> Any:
        raw = conn.raw if isinstance(conn, PgConnection) else conn
        return raw.cursor(cursor_factory=psycopg2.extras.RealDictCursor if dict_rows else None)

    def limit_session(self, conn: Any, limit_s: float) -> None:
        # a statement whose client is gone (interrupt() shut the socket, the app was killed) stops within
        # seconds instead of running to its limit: PostgreSQL 14+ checks the socket while it runs
        with self.cursor(conn) as cur:  # one round trip
            cur.execute(f"{self.statement_limit_sql('', limit_s)}; "
                        f"SET client_connection_check_interval = {CLIENT_CHECK_MS}")

    def connection_lost(self, exc: BaseException) -> bool:
        return isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and \
            getattr(exc, "pgcode", None) is None

    def abort(self, conn: Any) -> None:
        if isinstance(conn, PgConnection):
            conn.abort_connecting()  # a connect still waiting on the server gives up now
        raw = conn.raw if isinstance(conn, PgConnection) else conn
        if raw is None or raw.closed:
            return
        try:  # shut the socket itself (a cancel request would wait on a silent server too)
            sock = socket.socket(fileno=os.dup(raw.fileno()))
        except (OSError, psycopg2.Error):
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.close()

    # -- the server ------------------------------------------------------------------------------

    def server_info(self) -> ServerInfo:
        if self._info is None:
            row = self._q("SELECT version(), current_setting('server_version'), current_user, pg_backend_pid()")[0]
            version = str(row[1]).split()[0]
            self._info = ServerInfo(flavor="PostgreSQL", version=version, version_comment=str(row[0]),
                                    current_user=str(row[2]), connection_id=int(row[3]))
        return self._info

    def statement_limit_sql(self, server_version: str, limit_s: float) -> str:
        return f"SET statement_timeout = {max(1, round(float(limit_s) * 1000))}"

    def is_timeout(self, exc: BaseException) -> bool:
        return getattr(exc, "pgcode", None) == QUERY_CANCELED and "statement timeout" in str(exc)

    # -- catalogs --------------------------------------------------------------------------------

    def schemas(self) -> list[str]:
        return [r[0] for r in self._q(f"SELECT n.nspname FROM pg_namespace n WHERE {_SYSTEM_SQL} ORDER BY 1")]

    @staticmethod
    def _where_schemas(schemas: Sequence[str] | None, column: str = "n.nspname") -> tuple[str, list]:
        if schemas is None:
            return _SYSTEM_SQL.replace("n.nspname", column), []
        if not schemas:
            return "FALSE", []
        return f"{column} = ANY(%s)", [list(schemas)]

    def tables(self, schemas: Sequence[str] | None = None, *, like: str | None = None) -> list[TableName]:
        cond, args = self._where_schemas(schemas)
        if like is not None:
            cond, args = f"{cond} AND c.relname LIKE %s", [*args, like]
        rows = self._q("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       f"WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {cond} ORDER BY 1, 2", args)
        return [(s, t) for s, t in rows]

    def table_exists(self, schema: str, table: str) -> bool:
        return bool(self._q("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')", (schema, table)))

    def columns(self, schema: str, table: str) -> list[Column]:
        rows = self._q(
            "SELECT a.attname, t.typname, t.typtype, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, "
            "a.attgenerated, a.attidentity, pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (schema, table))
        out = []
        for name, _typname, typtype, full, nullable, generated, identity, default, comment in rows:
            if generated == "s":
                extra = "STORED GENERATED"
            elif identity or (default or "").startswith("nextval("):
                extra = "auto_increment"
            else:
                extra = ""
            data_type = "enum" if typtype == "e" else full.split("(")[0].strip().lower()
            out.append(Column(name=name, data_type=data_type, column_type=full, nullable=bool(nullable),
                              extra=extra, comment=comment or ""))
        return out

    def primary_key(self, schema: str, table: str) -> list[str]:
        return self.primary_keys([schema], table=table).get((schema, table), [])

    def primary_keys(self, schemas: Sequence[str], *, table: str | None = None) -> dict[TableName, list[str]]:
        cond, args = self._where_schemas(schemas)
        if table is not None:
            cond, args = f"{cond} AND c.relname = %s", [*args, table]
        out: dict[TableName, list[str]] = {}
        for s, t, col in self._q(
                "SELECT n.nspname, c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
                "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
                f"WHERE i.indisprimary AND {cond} ORDER BY n.nspname, c.relname, k.ord", args):
            out.setdefault((s, t), []).append(col)
        return out

    def _foreign_keys(self, cond: str, args: Sequence[Any]) -> list[ForeignKey]:
        rows = self._q(
            "SELECT n.nspname, c.relname, con.conname, a.attname, rn.nspname, rc.relname, ra.attname "
            "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_class rc ON rc.oid = con.confrelid "
            "JOIN pg_namespace rn ON rn.oid = rc.relnamespace "
            "CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(col, refcol, ord) "
            "JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.col "
            "JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.refcol "
            f"WHERE con.contype = 'f' AND {cond} ORDER BY n.nspname, c.relname, con.conname, k.ord", args)
        keys: dict[tuple[str, str, str], list[Any]] = {}
        for s, t, name, col, rs, rt, rcol in rows:
            keys.setdefault((s, t, name), [rs, rt, []])[2].append((col, rcol))
        return [ForeignKey(name=n, schema=s, table=t, ref_schema=rs, ref_table=rt, columns=tuple(cols))
                for (s, t, n), (rs, rt, cols) in keys.items()]

    def foreign_keys(self, schemas: Sequence[str] | None = None) -> list[ForeignKey]:
        return self._foreign_keys(*self._where_schemas(schemas))

    def foreign_keys_to(self, schema: str, table: str) -> list[ForeignKey]:
        return self._foreign_keys("rn.nspname = %s AND rc.relname = %s", (schema, table))

    def foreign_keys_from(self, schema: str, table: str) -> list[ForeignKey]:
        return self._foreign_keys("n.nspname = %s AND c.relname = %s", (schema, table))

    def row_estimates(self, schemas: Sequence[str]) -> dict[TableName, int]:
        cond, args = self._where_schemas(schemas)
        rows = self._q("SELECT n.nspname, c.relname, GREATEST(c.reltuples, 0)::bigint FROM pg_class c "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace "
                       f"WHERE c.relkind IN ('r', 'p') AND {cond}", args)
        return {(s, t): int(n or 0) for s, t, n in rows}

    def row_estimate(self, schema: str, table: str) -> int:
        return self.row_estimates([schema]).get((schema, table), 0)

    # -- dump and load tools ---------------------------------------------------------------------

    def dump_tools(self) -> DumpTools:
        dump, client = find_client_tool("pg_dump"), find_client_tool("psql")
        if not dump or not client:
            raise UserError("the PostgreSQL client tools are not installed (pg_dump and psql)",
                            hint="install them, e.g. `apt-get install postgresql-client`")
        return DumpTools(dump=dump, client=client)

    @contextmanager
    def credentials_file(self, settings: Any) -> Iterator[Path]:
        """A ``.pgpass`` file (0600, in a 0700 temp dir); ``tool_argv`` names it in a connection string
        (``passfile=``) that holds no password."""
        tmp = Path(tempfile.mkdtemp(prefix="djtui-cred-"))
        os.chmod(tmp, 0o700)
        path = tmp / "pgpass"
        host = settings.socket or settings.host
        fields = ["localhost" if settings.socket else host, str(int(settings.port)), "*", settings.user or "",
                  settings.password.reveal() if settings.password else ""]
        if settings.password:
            commandlog.add_secret(settings.password.reveal())
        parts = {"host": host, "port": str(int(settings.port)), "dbname": settings.dbname or "postgres",
                 "user": settings.user or "", "passfile": str(path), "application_name": "djtui"}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, (":".join(_pgpass_field(f) for f in fields) + "\n").encode())
            finally:
                os.close(fd)
            self._conninfo[path] = " ".join(f"{k}={_conninfo_value(v)}" for k, v in parts.items() if v)
            yield path
        finally:
            self._conninfo.pop(path, None)
            shutil.rmtree(tmp, ignore_errors=True)

    def conninfo(self, credentials: Path, dbname: str | None = None) -> str:
        """The connection string (no password: it names the ``.pgpass`` file) for ``credentials``."""
        info = self._conninfo[credentials]
        if dbname:
            info += f" dbname={_conninfo_value(dbname)}"  # a later keyword wins
        return info

    def tool_argv(self, tool: str, credentials: Path) -> list[str]:
        return [tool, f"--dbname={self.conninfo(credentials)}"]

    # -- database backups (dbbackup, issue 15): a live restore keeps the foreign keys onto the tables it
    # recreates, as the server defines them (actions, deferrability), by dropping and declaring them again

    def foreign_key_definitions(self, schema: str, tables: Sequence[str]) -> list[tuple[str, str, str, str]]:
        """(child schema, child table, constraint name, ``pg_get_constraintdef``) of every foreign key onto
        ``schema``'s ``tables``, from any schema."""
        rows = self._q("SELECT n.nspname, c.relname, con.conname, pg_get_constraintdef(con.oid) "
                       "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_class rc ON rc.oid = con.confrelid "
                       "JOIN pg_namespace rn ON rn.oid = rc.relnamespace "
                       "WHERE con.contype = 'f' AND rn.nspname = %s AND rc.relname = ANY(%s) ORDER BY 1, 2, 3",
                       (schema, list(tables)))
        return [(str(s), str(t), str(n), str(d)) for s, t, n, d in rows]

    # -- orphans (issue 15): the orphan scans' catalog reads and the row quarantine's SQL --------------

    def blocking_triggers(self, tables: Sequence[TableName]) -> tuple[str, ...]:
        """Row triggers whose function raises an exception on insert or delete of these tables: often left
        behind by a cleanup that refused writes while it ran."""
        if not tables:
            return ()
        rows = self._q(
            "SELECT n.nspname, t.tgname, t.tgtype, c.relname FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' "
            "AND (t.tgtype::int & 12) <> 0 AND p.prosrc ~* 'raise\\s+exception' "
            "AND (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[])) ORDER BY 1, 2",
            ([s for s, _ in tables], [t for _, t in tables]))
        out = []
        for schema, name, tgtype, table in rows:
            events = [ev for bit, ev in ((4, "INSERT"), (8, "DELETE")) if int(tgtype) & bit]
            out.append(f"trigger {schema}.{name} blocks {'/'.join(events)} on {schema}.{table}; "
                       "if a cleanup left it behind, drop it")
        return tuple(out)

    def json_columns(self) -> list[tuple[str, str, str]]:
        """(schema, table, column) of every json/jsonb column of the lab's schemas (DataJoint 2.x: jsonb)."""
        return [(str(s), str(t), str(c)) for s, t, c in self._q(
            "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 "
            f"AND NOT a.attisdropped AND a.atttypid IN ('json'::regtype, 'jsonb'::regtype) AND {_SYSTEM_SQL} "
            "ORDER BY 1, 2, a.attnum")]

    def json_values_sql(self, table_sql: str, column_sql: str) -> str:
        """SQL whose one column is each JSON object of the column that has a ``path``, as JSON text of
        its ``store`` and ``path`` only: the server leaves out the rest (parameters, metadata)."""
        return ("SELECT jsonb_build_object('store', v->'store', 'path', v->'path')::text "
                f"FROM (SELECT {column_sql}::jsonb AS v FROM {table_sql}) x "
                "WHERE jsonb_typeof(v) = 'object' AND v ? 'path'")

    def table_definition(self, schema: str, table: str) -> str:
        """A CREATE TABLE of the table's columns and primary key from pg_catalog (kept with a row batch,
        for the record; pg_dump --schema-only gives the full definition)."""
        cols = self._q("SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull "
                       "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s "
                       "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (schema, table))
        d = self.dialect
        parts = [f"{d.ident(n)} {t}{' NOT NULL' if nn else ''}" for n, t, nn in cols]
        pk = self.primary_key(schema, table)
        if pk:
            parts.append(f"PRIMARY KEY ({', '.join(d.ident(c) for c in pk)})")
        return f"CREATE TABLE {d.table(schema, table)} (\n  " + ",\n  ".join(parts) + "\n)"

    def row_capture_overrides(self) -> dict[str, Any]:
        """Connection options for capturing rows: none (the values are selected as their text form)."""
        return {}

    def row_capture_column(self, column_sql: str) -> str:
        """A column as the server's text form of its value: what COPY and pg_dump write, and what the
        column's input function reads back into the same value."""
        return f"{column_sql}::text"

    def row_capture_param(self, raw: bytes | None) -> Any:
        return None if raw is None else raw.decode("utf-8")

    def row_text(self, expr_sql: str) -> str:
        return f"({expr_sql})::text"

    def null_safe_equal(self, a_sql: str, b_sql: str) -> str:
        return f"{a_sql} IS NOT DISTINCT FROM {b_sql}"

    def temp_table_like(self, schema: str, name: str, like_sql: str) -> tuple[str, str, str]:
        """(CREATE, the name to use, DROP): temporary tables live in the session's own schema."""
        ref = self.dialect.ident(name)
        return f"CREATE TEMPORARY TABLE {ref} (LIKE {like_sql})", ref, f"DROP TABLE {ref}"

    # -- doctor (issue 15): the dump and client tools against the server they must serve
    def tool_mismatch(self, tool: str, version_line: str, server: ServerInfo) -> tuple[bool, str] | None:
        """pg_dump refuses a server of a newer major version ("server version mismatch"); an older psql
        connects but warns that some features may not work. A newer tool serves an older server."""
        import re

        found = re.search(r"\)\s*(\d+)(?:\.(\d+))?", version_line) or re.search(r"(\d+)\.(\d+)", version_line)
        if not found or not server.version_tuple:
            return None
        mine, theirs = int(found.group(1)), server.version_tuple[0]
        if mine >= theirs:
            return None
        if "dump" in Path(tool).name:
            return True, (f"{Path(tool).name} {mine} refuses a PostgreSQL {theirs} server: install the client "
                          f"tools of PostgreSQL {theirs} or newer (e.g. `apt-get install postgresql-client-{theirs}`)")
        return False, (f"{Path(tool).name} {mine} is older than the PostgreSQL {theirs} server: it connects, but "
                       "some features may not work")

    def backup_tools(self) -> list[tuple[str, str | None]]:
        """pg_dumpall writes the roles file of a backup; pg_restore loads the custom-format dumps (verify, restore)."""
        return [(name, find_client_tool(name)) for name in ("pg_dumpall", "pg_restore")]
