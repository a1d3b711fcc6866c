"""PostgreSQL's accounts: roles (login and group), privileges on schemas and tables, default privileges.

The ``Backend`` protocol's account members for PostgreSQL (issue 15). Until they land, an account
command on PostgreSQL stops with a clear message instead of running MySQL's SQL.
"""

from __future__ import annotations

from typing import Any

from djtui.errors import OperationFailed


def _not_yet(what: str) -> OperationFailed:
    return OperationFailed(f"{what} on PostgreSQL is not available in this version of djtui")


class PostgresAccounts:
    """The account members of the PostgreSQL backend (mixed into ``PostgresBackend``)."""

    def grant_dialect(self, *, partial_revokes: bool | None = None) -> Any:
        raise _not_yet("managing roles and grants")

    def account_catalog(self, role_names: frozenset[str]) -> Any:
        raise _not_yet("reading accounts")

    def show_grants(self, grantee_sql: str) -> list[str]:
        raise _not_yet("reading grants")

    def locked_accounts(self) -> set[tuple[str, str]]:
        return set()

    def role_admins(self, role: str) -> list[str]:
        raise _not_yet("reading role admins")

    def user_hosts(self, user: str) -> list[str]:
        raise _not_yet("reading accounts")
