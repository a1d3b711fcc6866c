"""What differs between database servers, behind one ``Backend`` protocol.

Holds the protocol and the plain records it returns; one module per server family (``mysql.py``
covers MySQL and MariaDB). A capability asks ``db.backend`` for catalogs (schemas, tables, columns,
keys, row estimates), the grant dialect, the dump and load tools with their credentials file, and
the statement time limit; it never writes ``information_schema`` SQL or finds ``mysqldump`` itself.
A second server family (PostgreSQL, issue 15) adds one module here and one in
``djtui/domain/dialects``; no capability changes.

May import: ``djtui.domain``, ``djtui.errors``, ``djtui.config``, ``djtui.services.commandlog``.
Never ``djtui.services.database`` (which imports this package), never ``tui`` or ``cli``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from djtui.domain.dialects import GrantDialect, SqlDialect
from djtui.domain.rowsql import is_generated

TableName = tuple[str, str]  # (schema, table)


@dataclass(frozen=True)
class ServerInfo:
    flavor: str  # "MariaDB" | "MySQL" (| "PostgreSQL")
    version: str  # e.g. "10.11.19"
    version_comment: str
    current_user: str
    connection_id: int

    @property
    def label(self) -> str:
        return f"{self.flavor} {self.version}"

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", self.version)[:3])

    @property
    def is_mariadb(self) -> bool:
        return self.flavor == "MariaDB"


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # lower case: "int", "varchar", "longblob", "json", ...
    column_type: str  # the full type as declared: "int(10) unsigned", "enum('a','b')"
    nullable: bool
    extra: str  # "auto_increment", "VIRTUAL GENERATED", "STORED GENERATED", ... ("" when none)
    comment: str

    @property
    def generated(self) -> bool:
        """Computed by the server (VIRTUAL/STORED GENERATED); MySQL 8's ``DEFAULT_GENERATED`` (a column
        with a DEFAULT expression) holds a value of its own and is not."""
        return is_generated(self.extra)


@dataclass(frozen=True)
class ForeignKey:
    """One foreign key; ``columns`` pairs (child column, parent column) in key order.

    A DataJoint renamed foreign key (``-> Parent.proj(new='old')``) has pairs whose names differ.
    """

    name: str
    schema: str
    table: str
    ref_schema: str
    ref_table: str
    columns: tuple[tuple[str, str], ...]

    @property
    def child(self) -> TableName:
        return (self.schema, self.table)

    @property
    def parent(self) -> TableName:
        return (self.ref_schema, self.ref_table)


@dataclass(frozen=True)
class DumpTools:
    """The server's own dump and client programs (absolute paths)."""

    dump: str  # mariadb-dump | mysqldump
    client: str  # mariadb | mysql


@dataclass(frozen=True)
class AccountCatalog:
    """Accounts and roles as the server's own tables hold them (read by an admin)."""

    accounts: tuple[tuple[str, str], ...]  # (user, host) of every login account, roles left out
    roles: frozenset[str]  # role names that exist
    held: dict[tuple[str, str], tuple[tuple[str, bool], ...]]  # (user, host) -> ((role, admin option), ...)
    defaults: dict[tuple[str, str], tuple[str, ...]]  # (user, host) -> default roles
    activate_all: bool  # every granted role active at login (MySQL's activate_all_roles_on_login)
    account_admins: tuple[str, ...]  # user@host that may create users and grant (MariaDB; () on MySQL)


class Querier(Protocol):
    """What a backend needs of a connection: ``Database.query`` (blocking, time-limited)."""

    def query(self, sql: str, args: Sequence[Any] | dict | None = None, *, dict_rows: bool = False) -> list: ...


class Backend(Protocol):
    """One server family, bound to one database. Every method blocks: call it off the event loop."""

    name: str  # "mysql"
    dialect: SqlDialect  # quoting
    system_schemas: frozenset[str]  # schemas that are the server's own, never a lab's
    timeout_codes: tuple[int, ...]  # driver error codes that mean "the server stopped the statement"
    account_hosts: bool  # accounts are user@host (MySQL, MariaDB); PostgreSQL's roles have no host

    # -- the driver (the Database's connections go through these) -------------------------------
    default_port: int
    driver_error: type[BaseException]  # the driver's base error class
    transient_errors: tuple[type[BaseException], ...]  # errors a lost or silent connection raises

    def open(self, settings: Any, database: str | None = None, **overrides: Any) -> Any:
        """A connection object not yet connected, so a wait on the network can be interrupted."""
    def establish(self, conn: Any) -> None:
        """Connect ``conn`` (blocks until the server answers or the connect timeout passes)."""
    def cursor(self, conn: Any, *, dict_rows: bool = False) -> Any:
        """A cursor (a context manager) whose rows are tuples, or dicts by column name."""
    def limit_session(self, conn: Any, limit_s: float) -> None:
        """Make the server stop any statement of this connection after ``limit_s`` seconds, where the
        server can (an older server without the setting is left as it is)."""
    def connection_lost(self, exc: BaseException) -> bool:
        """Did the server drop the connection (a read may retry once on a fresh one)?"""
    def abort(self, conn: Any) -> None:
        """End every wait on ``conn`` now, from another thread (shut its socket)."""

    # -- the server ------------------------------------------------------------------------------
    def server_info(self) -> ServerInfo: ...
    def statement_limit_sql(self, server_version: str, limit_s: float) -> str:
        """The session statement that makes the server stop a statement after ``limit_s`` seconds."""
    def is_timeout(self, exc: BaseException) -> bool:
        """Did the server stop a statement at its time limit?"""

    # -- catalogs --------------------------------------------------------------------------------
    def schemas(self) -> list[str]:
        """Every schema except the system ones, sorted."""
    def tables(self, schemas: Sequence[str] | None = None, *, like: str | None = None) -> list[TableName]:
        """Base tables (no views) of these schemas (None: every non-system schema), sorted;
        ``like`` filters table names with a LIKE pattern."""
    def table_exists(self, schema: str, table: str) -> bool: ...
    def columns(self, schema: str, table: str) -> list[Column]:
        """The table's columns in declared order ([] when the table does not exist)."""
    def primary_key(self, schema: str, table: str) -> list[str]:
        """The primary key's columns in key order ([] when none or no such table)."""
    def primary_keys(self, schemas: Sequence[str]) -> dict[TableName, list[str]]: ...
    def foreign_keys(self, schemas: Sequence[str] | None = None) -> list[ForeignKey]:
        """Foreign keys declared by tables of these schemas (None: all), parents may be anywhere."""
    def foreign_keys_to(self, schema: str, table: str) -> list[ForeignKey]:
        """Every foreign key onto ``schema.table``, from any schema."""
    def foreign_keys_from(self, schema: str, table: str) -> list[ForeignKey]:
        """The foreign keys ``schema.table`` declares."""
    def row_estimates(self, schemas: Sequence[str]) -> dict[TableName, int]:
        """The catalog's row estimate of each base table (cheap, approximate; 0 when unknown)."""
    def row_estimate(self, schema: str, table: str) -> int: ...

    # -- accounts --------------------------------------------------------------------------------
    def grant_dialect(self, *, partial_revokes: bool | None = None) -> GrantDialect:
        """How this server spells roles, grants and passwords (pure SQL text); ``partial_revokes``
        None asks the server (MySQL's ``@@partial_revokes``)."""

    def account_catalog(self, role_names: frozenset[str]) -> AccountCatalog:
        """Accounts, roles, who holds which role, default roles; ``role_names`` tells roles from
        users where the server keeps both as accounts (MySQL 8)."""
    def show_grants(self, grantee_sql: str) -> list[str]:
        """The server's own grant lines for an account or role (already quoted by the grant dialect)."""
    def locked_accounts(self) -> set[tuple[str, str]]:
        """(user, host) of every locked account; empty on a server without account locking."""
    def role_admins(self, role: str) -> list[str]:
        """user@host of every account holding ADMIN OPTION on ``role``, sorted."""
    def user_hosts(self, user: str) -> list[str]:
        """The hosts ``user`` has an account from."""

    # -- dump and load tools ---------------------------------------------------------------------
    def dump_tools(self) -> DumpTools:
        """The installed dump and client programs; a UserError saying what to install when missing."""
    def credentials_file(self, settings: Any) -> AbstractContextManager[Path]:
        """A private (0600 in a 0700 dir) options file with the connection and password; removed on
        exit. Passwords never go in argv."""
    def tool_argv(self, tool: str, credentials: Path) -> list[str]:
        """The start of a dump/client command line that reads ``credentials``."""

    # -- orphans (issue 15): the orphan scans' catalog reads and the row quarantine's SQL --------------
    def blocking_triggers(self, tables: Sequence[TableName]) -> tuple[str, ...]:
        """One line per trigger that refuses inserts or deletes on these tables."""
    def json_columns(self) -> list[tuple[str, str, str]]:
        """(schema, table, column) of every JSON column of the lab's schemas."""
    def json_values_sql(self, table_sql: str, column_sql: str) -> str:
        """SQL whose one column is the column's JSON values (as text) that may name a stored object."""
    def table_definition(self, schema: str, table: str) -> str:
        """The table's CREATE TABLE, for the record."""
    def row_capture_overrides(self) -> dict[str, Any]:
        """Connection options of a connection that captures rows exactly."""
    def row_capture_column(self, column_sql: str) -> str:
        """The select-list expression that captures a column's value exactly, as bytes or text."""
    def row_capture_param(self, raw: bytes | None) -> Any:
        """A captured value (bytes) as the parameter that inserts the same value again."""
    def row_text(self, expr_sql: str) -> str:
        """An expression's value in a form two values compare exactly in."""
    def null_safe_equal(self, a_sql: str, b_sql: str) -> str: ...
    def temp_table_like(self, schema: str, name: str, like_sql: str) -> tuple[str, str, str]:
        """(CREATE, the name to use, DROP) of a session-private empty copy of a table."""
    # -- doctor (issue 15): the dump and client tools against the server they must serve
    def tool_mismatch(self, tool: str, version_line: str, server: ServerInfo) -> tuple[bool, str] | None:
        """(fatal, why) when a tool's version (its ``--version`` line) cannot serve the server; else None."""
    def backup_tools(self) -> list[tuple[str, str | None]]:
        """Further programs database backups need beyond the dump and client tools, as (name, path or None
        when missing): pg_dumpall and pg_restore on PostgreSQL, none on MySQL."""


__all__ = ["AccountCatalog", "Backend", "Column", "DumpTools", "ForeignKey", "Querier", "ServerInfo", "TableName"]
