"""The accounts side of the server at one moment: roles and users with their grants and drift."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from djtui.domain import grants as g


@dataclass(frozen=True)
class RoleState:
    name: str
    exists: bool
    grants: dict[str, frozenset[str]] = field(default_factory=dict)
    holders: tuple[str, ...] = ()
    drift: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()  # accounts that may grant the role (ADMIN OPTION)
    revoked: frozenset[str] = frozenset()  # schemas SELECT is partially revoked on (MySQL partial_revokes)
    reads_system: tuple[str, ...] = ()  # system schemas (`mysql`, `sys`) the role can SELECT from
    diff: g.GrantDiff | None = None  # expected against actual, privilege by privilege


@dataclass(frozen=True)
class AccountState:
    user: str
    host: str
    kind: str | None  # guest/collab/user/admin, or None for accounts djtui does not manage
    roles: tuple[str, ...]
    default_roles: tuple[str, ...]
    default_active: bool
    own: dict[str, frozenset[str]]
    effective: dict[str, frozenset[str]]
    drift: tuple[str, ...] = ()
    diff: g.GrantDiff | None = None  # expected against actual (None: not managed by djtui)
    locked: bool = False  # ACCOUNT LOCK: nobody can log in as it

    @property
    def account(self) -> str:
        """``user@host``; a PostgreSQL account has no host and is its name alone."""
        return f"{self.user}@{self.host}" if self.host else self.user

    @property
    def role(self) -> str | None:
        return g.ROLE_OF_KIND[self.kind] if self.kind else None

    def level_on(self, schema: str) -> str:
        return g.level(g.privileges_on(schema, self.effective))


@dataclass(frozen=True)
class ServerAccounts:
    """The accounts side of the server at one moment."""

    flavor: str
    version: str
    notes: tuple[str, ...]
    roles: tuple[RoleState, ...]
    users: tuple[AccountState, ...]
    modules: tuple[str, ...]  # shared prefixes dj_user holds: configured ones plus modules added since
    warnings: tuple[str, ...] = ()  # risks that are not drift: roles that read `mysql`, roles nobody may grant
    account_admins: tuple[str, ...] = ()  # accounts with global CREATE USER and GRANT OPTION
    current_user: str = ""
    objects: Any = None  # PostgreSQL: the schemas and tables the scheme is expanded over (PgObjects)
    privileges: dict[str, frozenset[Any]] = field(default_factory=dict)  # PostgreSQL: role -> held Privs

    @property
    def drift(self) -> list[str]:
        out = [f"role {r.name}: {d}" for r in self.roles for d in r.drift]
        out += [f"user {u.account}: {d}" for u in self.users for d in u.drift]
        return out

    @property
    def missing_roles(self) -> list[str]:
        """The djtui roles that do not exist on the server (``roles init`` makes them)."""
        return [r.name for r in self.roles if not r.exists]

    def drift_summary(self) -> str:
        """What the drift count is made of, in words: missing roles apart from roles and users that
        differ from their definition (``4 roles missing`` rather than ``4 drift`` beside clean users)."""
        parts = []
        if self.missing_roles:
            n = len(self.missing_roles)
            parts.append(f"{n} role{'s' if n != 1 else ''} missing")
        roles = sum(1 for r in self.roles if r.exists and r.drift)
        users = sum(1 for u in self.users if u.drift)
        if roles:
            parts.append(f"{roles} role{'s' if roles != 1 else ''} drifted")
        if users:
            parts.append(f"{users} user{'s' if users != 1 else ''} drifted")
        return ", ".join(parts) or "no drift"

    def role(self, name: str) -> RoleState:
        return next(r for r in self.roles if r.name == name)

    def find(self, user: str) -> list[AccountState]:
        return [u for u in self.users if u.user == user]

    def to_json(self) -> dict:
        return {
            "server": f"{self.flavor} {self.version}", "notes": list(self.notes), "modules": list(self.modules),
            "warnings": list(self.warnings),
            "roles": [{"name": r.name, "exists": r.exists, "holders": list(r.holders), "drift": list(r.drift),
                       "admins": list(r.admins), "reads_system_schemas": list(r.reads_system),
                       "grants": {p: sorted(v) for p, v in r.grants.items()}} for r in self.roles],
            "users": [{"user": u.user, "host": u.host, "role": u.role, "roles": list(u.roles),
                       "default_roles": list(u.default_roles), "default_role_active": u.default_active,
                       "locked": u.locked,
                       "drift": list(u.drift), "grants": {p: sorted(v) for p, v in u.own.items()}}
                      for u in self.users],
        }
