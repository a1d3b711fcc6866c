"""MySQL and MariaDB: ``information_schema`` catalogs, flavor and version, statement time limits,
the grant dialect, and the dump/client programs with their ``[client]`` options file."""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

from djtui.domain.dialects import MYSQL, SqlDialect
from djtui.domain.dialects.mysql_grants import MySQLGrants
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.backends import AccountCatalog, Column, DumpTools, ForeignKey, Querier, ServerInfo, TableName

SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
TIMEOUT_ERRORS = (1969, 3024)  # MariaDB max_statement_time, MySQL max_execution_time exceeded


def parse_server_version(version: str, comment: str = "") -> tuple[str, str]:
    """Flavor and numeric version from ``SELECT VERSION()`` and ``@@version_comment``."""
    flavor = "MariaDB" if "mariadb" in (version + " " + comment).lower() else "MySQL"
    m = re.match(r"(\d+\.\d+\.\d+)", version)
    return flavor, (m.group(1) if m else version)


def statement_limit_sql(flavor: str, limit_s: float) -> str:
    """The session setting that makes the server itself stop a statement after ``limit_s`` seconds.

    MariaDB's ``max_statement_time`` (seconds) covers every statement; MySQL's ``max_execution_time``
    (milliseconds) covers read-only SELECTs only: there, writes are bounded by the driver's timeout.
    """
    if flavor == "MariaDB":
        return f"SET SESSION max_statement_time = {float(limit_s):g}"
    return f"SET SESSION max_execution_time = {round(float(limit_s) * 1000)}"


def _text(value: Any) -> str:
    """Catalog text: some servers hand ``information_schema`` columns over as bytes."""
    return value.decode() if isinstance(value, bytes) else str(value if value is not None else "")


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(["%s"] * len(values)) + ")"


def _opt(value: str) -> str:
    """An option-file value: quoted, with the escapes the client's option parser understands."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MySQLBackend:
    """MySQL 5.7+/8 and MariaDB 10+, answering through ``db.query`` (a :class:`Querier`)."""

    name = "mysql"
    dialect: SqlDialect = MYSQL
    system_schemas = SYSTEM_SCHEMAS
    timeout_codes = TIMEOUT_ERRORS
    account_hosts = True
    default_port = 3306
    driver_error = pymysql.err.MySQLError
    transient_errors = (pymysql.err.OperationalError, pymysql.err.InterfaceError)

    def __init__(self, db: Querier):
        self._db = db
        self._info: ServerInfo | None = None

    def _q(self, sql: str, args: Sequence[Any] | None = None) -> list:
        return self._db.query(sql, args)

    # -- the driver ------------------------------------------------------------------------------

    def open(self, settings: Any, database: str | None = None, **overrides: Any) -> Any:
        kw = settings.pymysql_kwargs(database)
        kw.update(overrides)
        return pymysql.connect(defer_connect=True, **kw)

    def establish(self, conn: Any) -> None:
        conn.connect()

    def cursor(self, conn: Any, *, dict_rows: bool = False) -> Any:
        return conn.cursor(pymysql.cursors.DictCursor if dict_rows else pymysql.cursors.Cursor)

    def limit_session(self, conn: Any, limit_s: float) -> None:
        sql = self.statement_limit_sql(conn.get_server_info() or "", limit_s)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] == 1193:  # unknown variable: a server older than the limit
                return
            raise

    def connection_lost(self, exc: BaseException) -> bool:
        args = getattr(exc, "args", None)
        return (args[0] if args else None) in (0, 2006, 2013)

    def abort(self, conn: Any) -> None:
        sock = getattr(conn, "_sock", None)  # pymysql's socket: nothing public wakes a blocked read
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- the server ------------------------------------------------------------------------------

    def server_info(self) -> ServerInfo:
        """Asked once per backend (a server does not change flavor under a connection)."""
        if self._info is None:
            self._info = self._read_server_info()
        return self._info

    def _read_server_info(self) -> ServerInfo:
        row = self._q("SELECT VERSION(), @@version_comment, CURRENT_USER(), CONNECTION_ID()")[0]
        comment = _text(row[1])
        flavor, version = parse_server_version(_text(row[0]), comment)
        return ServerInfo(flavor=flavor, version=version, version_comment=comment,
                          current_user=_text(row[2]), connection_id=int(row[3]))

    def statement_limit_sql(self, server_version: str, limit_s: float) -> str:
        flavor, _version = parse_server_version(server_version)
        return statement_limit_sql(flavor, limit_s)

    def is_timeout(self, exc: BaseException) -> bool:
        args = getattr(exc, "args", None)
        return bool(args) and args[0] in TIMEOUT_ERRORS

    # -- catalogs --------------------------------------------------------------------------------

    def schemas(self) -> list[str]:
        rows = self._q(f"SELECT schema_name FROM information_schema.schemata "
                       f"WHERE schema_name NOT IN {_in(sorted(SYSTEM_SCHEMAS))} ORDER BY schema_name",
                       sorted(SYSTEM_SCHEMAS))
        return [_text(r[0]) for r in rows]

    def _where_schemas(self, schemas: Sequence[str] | None, column: str = "table_schema") -> tuple[str, list]:
        if schemas is None:
            return f"{column} NOT IN {_in(sorted(SYSTEM_SCHEMAS))}", sorted(SYSTEM_SCHEMAS)
        if not schemas:
            return "FALSE", []
        return f"{column} IN {_in(schemas)}", list(schemas)

    def tables(self, schemas: Sequence[str] | None = None, *, like: str | None = None) -> list[TableName]:
        cond, args = self._where_schemas(schemas)
        if like is not None:
            cond, args = f"{cond} AND table_name LIKE %s", [*args, like]
        rows = self._q(f"SELECT table_schema, table_name FROM information_schema.tables "
                       f"WHERE table_type = 'BASE TABLE' AND {cond} ORDER BY table_schema, table_name", args)
        return [(_text(s), _text(t)) for s, t in rows]

    def table_exists(self, schema: str, table: str) -> bool:
        return bool(self._q("SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                            "AND table_name = %s", (schema, table)))

    def columns(self, schema: str, table: str) -> list[Column]:
        rows = self._q("SELECT column_name, data_type, column_type, is_nullable, extra, column_comment "
                       "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                       "ORDER BY ordinal_position", (schema, table))
        return [Column(name=_text(n), data_type=_text(d).lower(), column_type=_text(ct),
                       nullable=_text(nl) == "YES", extra=_text(x), comment=_text(cm))
                for n, d, ct, nl, x, cm in rows]

    def primary_key(self, schema: str, table: str) -> list[str]:
        return self.primary_keys([schema], table=table).get((schema, table), [])

    def primary_keys(self, schemas: Sequence[str], *, table: str | None = None) -> dict[TableName, list[str]]:
        cond, args = self._where_schemas(schemas)
        if table is not None:
            cond, args = f"{cond} AND table_name = %s", [*args, table]
        out: dict[TableName, list[str]] = {}
        for s, t, c in self._q(
                f"SELECT table_schema, table_name, column_name FROM information_schema.statistics "
                f"WHERE index_name = 'PRIMARY' AND {cond} ORDER BY table_schema, table_name, seq_in_index", args):
            out.setdefault((_text(s), _text(t)), []).append(_text(c))
        return out

    def _foreign_keys(self, cond: str, args: Sequence[Any]) -> list[ForeignKey]:
        rows = self._q(
            "SELECT table_schema, table_name, constraint_name, column_name, referenced_table_schema, "
            "referenced_table_name, referenced_column_name FROM information_schema.key_column_usage "
            f"WHERE referenced_table_name IS NOT NULL AND {cond} "
            "ORDER BY table_schema, table_name, constraint_name, ordinal_position", args)
        keys: dict[tuple[str, str, str], list[Any]] = {}
        for s, t, name, col, rs, rt, rc in rows:
            entry = keys.setdefault((_text(s), _text(t), _text(name)), [_text(rs), _text(rt), []])
            entry[2].append((_text(col), _text(rc)))
        return [ForeignKey(name=n, schema=s, table=t, ref_schema=rs, ref_table=rt, columns=tuple(cols))
                for (s, t, n), (rs, rt, cols) in keys.items()]

    def foreign_keys(self, schemas: Sequence[str] | None = None) -> list[ForeignKey]:
        return self._foreign_keys(*self._where_schemas(schemas))

    def foreign_keys_to(self, schema: str, table: str) -> list[ForeignKey]:
        return self._foreign_keys("referenced_table_schema = %s AND referenced_table_name = %s", (schema, table))

    def foreign_keys_from(self, schema: str, table: str) -> list[ForeignKey]:
        return self._foreign_keys("table_schema = %s AND table_name = %s", (schema, table))

    def row_estimates(self, schemas: Sequence[str]) -> dict[TableName, int]:
        cond, args = self._where_schemas(schemas)
        rows = self._q(f"SELECT table_schema, table_name, table_rows FROM information_schema.tables "
                       f"WHERE table_type = 'BASE TABLE' AND {cond}", args)
        return {(_text(s), _text(t)): int(n or 0) for s, t, n in rows}

    def row_estimate(self, schema: str, table: str) -> int:
        rows = self._q("SELECT table_rows FROM information_schema.tables WHERE table_schema = %s "
                       "AND table_name = %s", (schema, table))
        return int(rows[0][0] or 0) if rows else 0

    # -- accounts --------------------------------------------------------------------------------

    def grant_dialect(self, *, partial_revokes: bool | None = None) -> MySQLGrants:
        info = self.server_info()
        if partial_revokes is None:
            partial_revokes = not info.is_mariadb and bool(int(self._q("SELECT @@partial_revokes")[0][0]))
        return MySQLGrants(info.flavor, info.version_tuple, partial_revokes=partial_revokes)

    def _is_mariadb(self) -> bool:
        return self.server_info().is_mariadb

    def account_catalog(self, role_names: frozenset[str]) -> AccountCatalog:
        if self._is_mariadb():
            return self._mariadb_accounts()
        rows = [(_text(u), _text(h)) for u, h in self._q("SELECT User, Host FROM mysql.user")]
        held: dict[tuple[str, str], list[tuple[str, bool]]] = {}
        for fu, _fh, tu, th, adm in self._q(
                "SELECT FROM_USER, FROM_HOST, TO_USER, TO_HOST, WITH_ADMIN_OPTION FROM mysql.role_edges"):
            held.setdefault((_text(tu), _text(th)), []).append((_text(fu), _text(adm) == "Y"))
        defaults: dict[tuple[str, str], list[str]] = {}
        for u, h, r in self._q("SELECT USER, HOST, DEFAULT_ROLE_USER FROM mysql.default_roles"):
            defaults.setdefault((_text(u), _text(h)), []).append(_text(r))
        return AccountCatalog(
            accounts=tuple((u, h) for u, h in rows if not (u in role_names and h == "%")),
            roles=frozenset(u for u, h in rows if u in role_names and h == "%"),
            held={k: tuple(v) for k, v in held.items()}, defaults={k: tuple(v) for k, v in defaults.items()},
            activate_all=bool(int(self._q("SELECT @@activate_all_roles_on_login")[0][0])),
            account_admins=())  # MySQL: ROLE_ADMIN (in ALL PRIVILEGES) grants any role

    def _mariadb_accounts(self) -> AccountCatalog:
        rows = [(_text(u), _text(h), _text(r)) for u, h, r in self._q("SELECT User, Host, is_role FROM mysql.user")]
        held: dict[tuple[str, str], list[tuple[str, bool]]] = {}
        for user, host, role, admin in self._q("SELECT User, Host, Role, Admin_option FROM mysql.roles_mapping"):
            held.setdefault((_text(user), _text(host)), []).append((_text(role), _text(admin) == "Y"))
        defaults = {(_text(u), _text(h)): (_text(r),) for u, h, r in self._q(
            "SELECT User, Host, default_role FROM mysql.user WHERE is_role='N'") if r}
        admins = tuple(sorted(f"{_text(u)}@{_text(h)}" for u, h in self._q(
            "SELECT User, Host FROM mysql.user WHERE is_role='N' AND Grant_priv='Y' AND Create_user_priv='Y'")))
        return AccountCatalog(accounts=tuple((u, h) for u, h, r in rows if r != "Y"),
                              roles=frozenset(u for u, _h, r in rows if r == "Y"),
                              held={k: tuple(v) for k, v in held.items()}, defaults=defaults,
                              activate_all=False, account_admins=admins)

    def show_grants(self, grantee_sql: str) -> list[str]:
        return [_text(r[0]) for r in self._q(f"SHOW GRANTS FOR {grantee_sql}")]

    def locked_accounts(self) -> set[tuple[str, str]]:
        try:
            return {(_text(u), _text(h)) for u, h in self._q(self.grant_dialect(
                partial_revokes=False).locked_accounts_sql())}
        except pymysql.err.MySQLError:
            return set()  # an old server without account locking

    def role_admins(self, role: str) -> list[str]:
        if self._is_mariadb():
            rows = self._q("SELECT User, Host FROM mysql.roles_mapping WHERE Role = %s "
                           "AND Admin_option = 'Y' AND Host <> ''", (role,))
        else:
            rows = self._q("SELECT TO_USER, TO_HOST FROM mysql.role_edges WHERE FROM_USER = %s "
                           "AND WITH_ADMIN_OPTION = 'Y'", (role,))
        return sorted(f"{_text(u)}@{_text(h)}" for u, h in rows)

    def user_hosts(self, user: str) -> list[str]:
        return [_text(h) for (h,) in self._q("SELECT Host FROM mysql.user WHERE User = %s", (user,))]

    # -- dump and load tools ---------------------------------------------------------------------

    def dump_tools(self) -> DumpTools:
        dump = shutil.which("mariadb-dump") or shutil.which("mysqldump")
        client = shutil.which("mariadb") or shutil.which("mysql")
        if not dump or not client:
            raise UserError("the database dump tools are not installed (mariadb-dump/mysqldump and mariadb/mysql)",
                            hint="install the client package, e.g. `apt-get install mariadb-client`")
        return DumpTools(dump=dump, client=client)

    @contextmanager
    def credentials_file(self, settings: Any) -> Iterator[Path]:
        """A ``[client]`` options file (0600, in a 0700 temp dir) for ``--defaults-extra-file``."""
        tmp = Path(tempfile.mkdtemp(prefix="djtui-cred-"))
        os.chmod(tmp, 0o700)
        path = tmp / "client.cnf"
        lines = ["[client]"]
        if settings.user:
            lines.append(f"user={_opt(settings.user)}")
        if settings.password:
            commandlog.add_secret(settings.password.reveal())
            lines.append(f"password={_opt(settings.password.reveal())}")
        if settings.socket:
            lines.append(f"socket={_opt(settings.socket)}")
        else:
            lines.append(f"host={_opt(settings.host)}")
            lines.append(f"port={int(settings.port)}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, ("\n".join(lines) + "\n").encode())
            finally:
                os.close(fd)
            yield path
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def tool_argv(self, tool: str, credentials: Path) -> list[str]:
        # the options file must be the first argument for the client to read it
        return [tool, f"--defaults-extra-file={credentials}"]

    # -- orphans (issue 15): the orphan scans' catalog reads and the row quarantine's SQL --------------

    def blocking_triggers(self, tables: Sequence[TableName]) -> tuple[str, ...]:
        """Triggers that refuse inserts/deletes (``SIGNAL``) on these tables: often left behind by a cleanup."""
        if not tables:
            return ()
        cond = " OR ".join(["(event_object_schema = %s AND event_object_table = %s)"] * len(tables))
        rows = self._q(
            "SELECT trigger_schema, trigger_name, event_manipulation, event_object_schema, event_object_table "
            f"FROM information_schema.triggers WHERE ({cond}) AND UPPER(action_statement) LIKE '%%SIGNAL%%'",
            [x for pair in tables for x in pair])
        return tuple(f"trigger {ts}.{tn} blocks {ev} on {os_}.{ot}; if a cleanup left it behind, drop it"
                     for ts, tn, ev, os_, ot in rows)

    def json_columns(self) -> list[tuple[str, str, str]]:
        """(schema, table, column) of every JSON column; MariaDB stores JSON as longtext with a
        ``json_valid()`` check named after the column."""
        return [(str(s), str(t), str(c)) for s, t, c in self._q(
            "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
            "WHERE c.table_schema NOT IN %s AND (c.data_type = 'json' OR EXISTS (SELECT 1 FROM "
            "information_schema.check_constraints k WHERE k.constraint_schema = c.table_schema "
            "AND k.table_name = c.table_name AND k.constraint_name = c.column_name "
            "AND k.check_clause LIKE 'json_valid%%'))", (tuple(self.system_schemas),))]

    def json_values_sql(self, table_sql: str, column_sql: str) -> str:
        """SQL whose one column is each non-NULL JSON value of the column, as JSON text."""
        return f"SELECT {column_sql} FROM {table_sql} WHERE {column_sql} IS NOT NULL"

    def table_definition(self, schema: str, table: str) -> str:
        """The table's definition as the server spells it (kept with a row batch, for the record)."""
        row = self._q(f"SHOW CREATE TABLE {self.dialect.table(schema, table)}")[0][1]
        return row.decode("utf-8") if isinstance(row, (bytes, bytearray)) else str(row)

    def row_capture_overrides(self) -> dict[str, Any]:
        """Connection options under which every value arrives as the server's own bytes (the text
        protocol's, what ``mysqldump`` writes), not decoded or converted."""
        return {"autocommit": False, "use_unicode": False,
                "conv": {k: v for k, v in pymysql.converters.conversions.items() if not isinstance(k, int)}}

    def row_capture_column(self, column_sql: str) -> str:
        """The select-list expression that captures a column's value exactly (see row_capture_overrides)."""
        return column_sql

    def row_capture_param(self, raw: bytes | None) -> Any:
        """A captured value as the parameter that inserts it again."""
        return raw

    def row_text(self, expr_sql: str) -> str:
        """An expression's value as bytes to compare exactly (NULL stays NULL)."""
        return f"CAST({expr_sql} AS BINARY)"

    def null_safe_equal(self, a_sql: str, b_sql: str) -> str:
        return f"{a_sql} <=> {b_sql}"

    def temp_table_like(self, schema: str, name: str, like_sql: str) -> tuple[str, str, str]:
        """(CREATE, the name to use, DROP) of a session-private empty copy of ``like_sql``."""
        ref = self.dialect.table(schema, name)
        return f"CREATE TEMPORARY TABLE {ref} LIKE {like_sql}", ref, f"DROP TEMPORARY TABLE {ref}"

    # -- doctor (issue 15): the dump and client tools against the server they must serve
    def tool_mismatch(self, tool: str, version_line: str, server: ServerInfo) -> tuple[bool, str] | None:
        """mariadb-dump and mysqldump dump any server of the family they speak to: nothing to compare."""
        return None

    def backup_tools(self) -> list[tuple[str, str | None]]:
        return []  # the dump and the client tools are all a MySQL backup needs
