"""What each role and user should hold: privilege sets on schema patterns, read scopes, and what
a set of grants reaches in a schema (the grant matrix's cells). Pure code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from djtui.domain.grants.names import (
    ANY_SCHEMA,
    DB_ALL,
    LAB_SCHEMAS,
    ROLE_OF_KIND,
    SYSTEM_SCHEMAS,
    like_match,
    prefix_pattern,
)


@dataclass(frozen=True)
class Privileges:
    """A privilege set on one db pattern: ALL (optionally minus some) or a named list."""

    names: frozenset[str] = frozenset()
    all_: bool = False
    minus: frozenset[str] = frozenset()

    @classmethod
    def all(cls, minus: Iterable[str] = ()) -> Privileges:
        return cls(all_=True, minus=frozenset(m.upper() for m in minus))

    @classmethod
    def of(cls, *names: str) -> Privileges:
        return cls(names=frozenset(n.upper() for n in names))

    def expand(self, flavor: str) -> frozenset[str]:
        return (DB_ALL[flavor] - self.minus) if self.all_ else self.names

    @property
    def label(self) -> str:
        if self.all_:
            return "ALL" + (f" -{','.join(sorted(self.minus))}" if self.minus else "")
        return ", ".join(sorted(self.names)) or "-"


@dataclass(frozen=True)
class ExpectedGrant:
    grantee: str  # role name, or "user@host" for a user's own grants
    pattern: str
    privileges: Privileges


def read_patterns(scope: str | Sequence[str], modules: Sequence[str] = (), *,
                  partial_revokes: bool = False) -> tuple[str, ...]:
    """The db patterns a non-admin role may SELECT from, for ``accounts.read_scope``.

    ``all`` is Spyglass's ``%``, which also covers the ``mysql`` schema (every account's
    password hash); ``lab`` is ``%\\_%``, every ``<prefix>_<name>`` schema, which leaves
    ``mysql`` and ``sys`` out; a list names the prefixes (the shared modules are always
    added, so dj_user reads what it writes). With MySQL's ``partial_revokes`` ON wildcards
    in grants are literal, so "all" can only be ``*.*`` minus a partial revoke on ``mysql``.
    """
    if scope == "all":
        return ("*",) if partial_revokes else (ANY_SCHEMA,)
    if scope == "lab":
        return (LAB_SCHEMAS,)
    out: list[str] = []
    for prefix in (*scope, *modules):
        if prefix_pattern(prefix) not in out:
            out.append(prefix_pattern(prefix))
    return tuple(out)


def read_revokes(scope: str | Sequence[str], *, partial_revokes: bool = False) -> tuple[str, ...]:
    """Schemas carved out of a global SELECT by partial revokes (MySQL 8, partial_revokes ON)."""
    return ("mysql",) if scope == "all" and partial_revokes else ()


def reads_system_schema(grants: Mapping[str, frozenset[str]], revoked: Iterable[str] = ()) -> list[str]:
    """The system schemas (``mysql``, ``sys``) that SELECT in ``grants`` reaches, after partial revokes."""
    out = []
    gone = set(revoked)
    for schema in SYSTEM_SCHEMAS:
        if schema in gone:
            continue
        if "SELECT" in privileges_on(schema, grants):
            out.append(schema)
    return out


def role_grants(kind: str, shared_prefixes: Sequence[str], *, user_can_create: bool = True,
                read: Sequence[str] = (ANY_SCHEMA,)) -> list[ExpectedGrant]:
    """What each role holds: the seed's meaning of guest, collab, user and admin.

    ``read`` is where non-admin roles SELECT (see ``read_patterns``); Spyglass's ``%`` by default.
    """
    role = ROLE_OF_KIND[kind]
    if kind == "admin":
        return [ExpectedGrant(role, ANY_SCHEMA, Privileges.all())]
    out = [ExpectedGrant(role, pattern, Privileges.of("SELECT")) for pattern in read]
    if kind == "user":
        shared = Privileges.all() if user_can_create else Privileges.all(minus=["CREATE"])
        out += [ExpectedGrant(role, prefix_pattern(p), shared) for p in shared_prefixes]
    return out


def user_own_grants(kind: str, user: str, host: str) -> list[ExpectedGrant]:
    """collab, user and admin get ALL on their own prefix ``<user>\\_%``; a guest gets nothing of its own."""
    if kind == "guest":
        return []
    return [ExpectedGrant(f"{user}@{host}", prefix_pattern(user), Privileges.all())]


# ---------------------------------------------------------------------------
# plans




def level(privs: frozenset[str]) -> str:
    """A grant matrix cell: ALL (can create tables), RW (write rows), R (read) or - (nothing)."""
    if "CREATE" in privs:
        return "ALL"
    if privs & {"INSERT", "UPDATE", "DELETE"}:
        return "RW"
    if "SELECT" in privs:
        return "R"
    return "-"


def privileges_on(schema: str, grants: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """Everything a holder of ``grants`` may do in ``schema`` (global ``*`` included)."""
    out: frozenset[str] = frozenset()
    for pattern, privs in grants.items():
        if pattern == "*" or like_match(pattern, schema):
            out |= privs
    return out


# ---------------------------------------------------------------------------
