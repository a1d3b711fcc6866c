"""How a database server spells SQL: identifier and literal quoting, table names.

Pure text, no I/O. One module per server family (``mysql.py`` covers MySQL and MariaDB, and
``mysql_grants.py`` how they spell roles, grants and accounts; ``postgres.py`` PostgreSQL); a backend adds its modules
here and a ``Backend`` in ``services/backends`` and touches no capability.
Services reach the dialect of the server they talk to as
``db.dialect``; domain code that writes SQL takes a ``dialect`` argument.
"""

from __future__ import annotations

from typing import Protocol

from djtui.domain.dialects.mysql import MYSQL, MySQLDialect
from djtui.domain.dialects.mysql_grants import PASSWORD_SHOWN, MySQLGrants
from djtui.domain.dialects.postgres import POSTGRES, PostgresDialect


class SqlDialect(Protocol):
    """The quoting every capability needs; grants, catalogs and dump tools live on the backend."""

    name: str  # "mysql" | "postgresql"

    def ident(self, name: str) -> str:
        """A quoted identifier (schema, table or column)."""

    def table(self, schema: str, table: str) -> str:
        """A quoted, schema-qualified table name."""

    def literal(self, value: str) -> str:
        """A quoted string literal, safe whatever the server's SQL mode."""


class GrantDialect(Protocol):
    """How a server family spells roles, grants, accounts and passwords (the backend hands it out).

    Every password appears as ``PASSWORD_SHOWN`` in the text; the statement carries it as a parameter.
    """

    flavor: str  # "MariaDB" | "MySQL" | "PostgreSQL"
    version: tuple[int, ...]
    partial_revokes: bool
    per_object: bool  # privileges per object (PostgreSQL), not on schema patterns (MySQL)
    has_hosts: bool  # accounts are user@host (MySQL); PostgreSQL's have no host

    @property
    def is_mariadb(self) -> bool: ...
    def supports_roles(self) -> bool: ...
    def supports_expiry(self) -> bool: ...
    def notes(self) -> list[str]: ...
    def role(self, name: str) -> str: ...
    def account(self, user: str, host: str) -> str: ...
    def on(self, pattern: str) -> str: ...
    def create_role(self, name: str) -> str: ...
    def grant_role(self, role: str, user: str, host: str, *, admin_option: bool = False) -> str: ...
    def revoke_role(self, role: str, user: str, host: str) -> str: ...
    def set_default_role(self, role: str, user: str, host: str) -> str: ...
    def grant(self, privileges: str, pattern: str, grantee: str) -> str: ...
    def revoke(self, privileges: str, pattern: str, grantee: str) -> str: ...
    def create_user(self, user: str, host: str, expiry_days: int | None) -> str: ...
    def alter_password(self, user: str, host: str) -> str: ...
    def lock(self, user: str, host: str, *, locked: bool = True) -> str: ...
    def drop_user(self, user: str, host: str) -> str: ...
    def locked_accounts_sql(self) -> str: ...
    def own_password(self) -> str: ...
    def password_parameter(self, password: str) -> str: ...


__all__ = ["MYSQL", "PASSWORD_SHOWN", "POSTGRES", "GrantDialect", "MySQLDialect", "MySQLGrants", "PostgresDialect",
           "SqlDialect"]
