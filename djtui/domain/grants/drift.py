"""Expected against actual: the one-way diff on db patterns (``diff_grants``) and the two-way
drift per privilege (``GrantDiff``), each with the statements that fix it. Pure code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from djtui.domain.dialects import GrantDialect
from djtui.domain.dialects.mysql import MYSQL
from djtui.domain.dialects.postgres_grants import on_order
from djtui.domain.grants.expected import ExpectedGrant
from djtui.domain.grants.names import DB_ALL
from djtui.domain.grants.parse import Priv
from djtui.domain.grants.plan import Statement


def diff_grants(expected: Sequence[ExpectedGrant], actual: Mapping[str, frozenset[str]], flavor: str,
                *, managed_extra: Iterable[str] = ()) -> list[tuple[str, str, frozenset[str]]]:
    """``(kind, pattern, privileges)`` with kind ``missing`` or ``extra``.

    Extras are only reported on patterns djtui manages (those expected, plus ``managed_extra``):
    a lab's own grants on other patterns are not drift.
    """
    out: list[tuple[str, str, frozenset[str]]] = []
    want: dict[str, frozenset[str]] = {}
    for g in expected:
        want[g.pattern] = want.get(g.pattern, frozenset()) | g.privileges.expand(flavor)
    for pattern, privs in want.items():
        have = actual.get(pattern, frozenset())
        if privs - have:
            out.append(("missing", pattern, privs - have))
        if have - privs:
            out.append(("extra", pattern, have - privs))
    for pattern in managed_extra:
        if pattern not in want and actual.get(pattern):
            out.append(("extra", pattern, actual[pattern]))
    return out


def describe_privs(privs: frozenset[str], flavor: str) -> str:
    if privs == DB_ALL[flavor]:
        return "ALL PRIVILEGES"
    return ", ".join(sorted(privs))


def fix_statements(dialect: GrantDialect, grantee_sql: str, expected: Sequence[ExpectedGrant],
                   drift: Sequence[tuple[str, str, frozenset[str]]]) -> list[Statement]:
    """GRANT what is missing, REVOKE what is extra, as few statements as reads well."""
    by_pattern = {g.pattern: g.privileges for g in expected}
    out: list[Statement] = []
    for kind, pattern, privs in drift:
        if kind == "missing":
            want = by_pattern.get(pattern)
            if want is not None and want.all_:
                out.append(Statement(dialect.grant("ALL PRIVILEGES", pattern, grantee_sql),
                                     f"{grantee_sql} needs ALL on {pattern}"))
                if want.minus:
                    out.append(Statement(dialect.revoke(", ".join(sorted(want.minus)), pattern, grantee_sql),
                                         f"leave {', '.join(sorted(want.minus))} out"))
            else:
                out.append(Statement(dialect.grant(", ".join(sorted(privs)), pattern, grantee_sql),
                                     f"{grantee_sql} needs {', '.join(sorted(privs))} on {pattern}"))
        else:
            out.append(Statement(dialect.revoke(", ".join(sorted(privs)), pattern, grantee_sql),
                                 f"{grantee_sql} holds more than expected on {pattern}"))
    return out



# two-way drift: every privilege held beyond the definition, and every one missing

# the order privileges are listed in (MySQL's own), so a diff reads the same every time
PRIV_ORDER = ("ALL PRIVILEGES", "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "RELOAD", "SHUTDOWN",
              "PROCESS", "FILE", "REFERENCES", "INDEX", "ALTER", "SHOW DATABASES", "SUPER",
              "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE", "REPLICATION SLAVE", "REPLICATION CLIENT",
              "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "CREATE USER", "EVENT", "TRIGGER",
              "CREATE TABLESPACE", "DELETE HISTORY", "CREATE ROLE", "DROP ROLE", "PROXY",
              "TRUNCATE", "USAGE", "CONNECT", "TEMPORARY", "GRANT OPTION")  # the last four: PostgreSQL's
_RANK = {p: n for n, p in enumerate(PRIV_ORDER)}



@dataclass(frozen=True)
class GrantDiff:
    """Expected against actual for one user or role; ``lines`` is the diff a person reads.

    ``+`` is held beyond the definition, ``-`` is missing from it.
    """

    grantee: str
    extra: frozenset[Priv] = frozenset()
    missing: frozenset[Priv] = frozenset()
    extra_roles: tuple[str, ...] = ()
    missing_roles: tuple[str, ...] = ()
    other: tuple[str, ...] = ()  # differences that are no privilege: the role is missing, inactive at login
    expected: frozenset[Priv] = frozenset()  # the whole definition and the whole actual, for the JSON report
    actual: frozenset[Priv] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.extra or self.missing or self.extra_roles or self.missing_roles or self.other)

    def lines(self, flavor: str) -> list[str]:
        out = list(self.other)
        out += [f"+ ROLE {r}" for r in self.extra_roles]
        out += [f"- ROLE {r}" for r in self.missing_roles]
        for on in sorted({p.on for p in self.extra | self.missing}, key=_on_key):
            for sign, privs in (("+", self.extra), ("-", self.missing)):
                here = [p for p in privs if p.on == on]
                if here:
                    out.append(f"{sign} {grant_text(here, on, flavor)}")
        return out

    def to_json(self, flavor: str) -> dict:
        return {"grantee": self.grantee, "diff": self.lines(flavor),
                "extra": [grant_text([p], p.on, flavor) for p in sorted(self.extra)],
                "missing": [grant_text([p], p.on, flavor) for p in sorted(self.missing)],
                "extra_roles": list(self.extra_roles), "missing_roles": list(self.missing_roles),
                "other": list(self.other), "expected": _grouped(self.expected, flavor),
                "actual": _grouped(self.actual, flavor)}


def _grouped(privs: frozenset[Priv], flavor: str) -> list[str]:
    """One ``PRIVS ON object`` line per object, as GRANT spells them."""
    ons = sorted({p.on for p in privs}, key=_on_key)
    return [grant_text([p for p in privs if p.on == on], on, flavor) for on in ons]


def _on_key(on: str) -> tuple[int, int, str]:
    if on == "*.*" or on.endswith(".*"):
        return (0 if on == "*.*" else 1, 0, on)
    return (2, *on_order(on))  # a table, routine, or a PostgreSQL object (database, schema, ...)


def render_privs(privs: Iterable[Priv], flavor: str) -> str:
    """``INSERT, DELETE``, ``ALL PRIVILEGES``, ``SELECT (`a`, `b`), UPDATE (`b`)`` (GRANT OPTION left out)."""
    privs = list(privs)
    names = {p.name for p in privs if not p.column and p.name != "GRANT OPTION"}
    level = privs[0].level if privs else "db"
    if level == "db" and names >= DB_ALL[flavor]:
        names = (names - DB_ALL[flavor]) | {"ALL PRIVILEGES"}
    cols: dict[str, list[str]] = {}
    for p in privs:
        if p.column:
            cols.setdefault(p.name, []).append(p.column)
    parts = [(n, n) for n in names]
    parts += [(n, f"{n} ({', '.join(MYSQL.ident(c) for c in sorted(cs))})") for n, cs in cols.items()]
    return ", ".join(t for _n, t in sorted(parts, key=lambda x: (_RANK.get(x[0], 999), x[0])))


def grant_text(privs: Sequence[Priv], on: str, flavor: str) -> str:
    """``ALL PRIVILEGES ON *.* WITH GRANT OPTION``: privileges on one object as GRANT spells them."""
    text = render_privs(privs, flavor)
    if any(p.name == "GRANT OPTION" for p in privs):
        return f"{text} ON {on} WITH GRANT OPTION" if text else f"GRANT OPTION ON {on}"
    return f"{text} ON {on}"



def expected_privs(expected: Sequence[ExpectedGrant], flavor: str) -> frozenset[Priv]:
    out: set[Priv] = set()
    for eg in expected:
        on = "*.*" if eg.pattern == "*" else f"{MYSQL.ident(eg.pattern)}.*"
        out |= {Priv(on, n) for n in eg.privileges.expand(flavor)}
    return frozenset(out)


def diff_privs(expected: frozenset[Priv], actual: frozenset[Priv]) -> tuple[frozenset[Priv], frozenset[Priv]]:
    """``(extra, missing)``; a whole ``ALL PRIVILEGES`` covers what is expected on its object."""
    extra = actual - expected
    missing = expected - actual
    whole = {p.on for p in actual if p.name == "ALL PRIVILEGES"}
    missing = frozenset(p for p in missing if p.on not in whole or p.name == "GRANT OPTION")
    return extra, missing


def fix_privs_statements(d: GrantDialect, grantee_sql: str, expected: Sequence[ExpectedGrant], diff: GrantDiff,
                         *, default_role: str | None = None, user: tuple[str, str] | None = None
                         ) -> list[Statement]:
    """Grant what is missing first (no moment without what the definition gives), then take back the extras.

    A whole ``ALL PRIVILEGES`` (global or on a table) can only go whole: it is revoked and what the
    definition wants on that object is granted again right after.
    """
    want = {d.on(g_.pattern): g_.privileges for g_ in expected}
    whole = {p.on for p in diff.extra if p.name == "ALL PRIVILEGES"}

    def grants(on: str, names: Iterable[str]) -> list[Statement]:
        names = sorted(names, key=lambda n: (_RANK.get(n, 999), n))
        privs = want.get(on)
        if not names:
            return []
        if privs is not None and privs.all_:
            out = [Statement(f"GRANT ALL PRIVILEGES ON {on} TO {grantee_sql}", f"the definition gives ALL on {on}")]
            if privs.minus:
                out.append(Statement(f"REVOKE {', '.join(sorted(privs.minus))} ON {on} FROM {grantee_sql}",
                                     f"leave {', '.join(sorted(privs.minus))} out"))
            return out
        return [Statement(f"GRANT {', '.join(names)} ON {on} TO {grantee_sql}", f"missing on {on}")]

    out: list[Statement] = []
    for role in diff.missing_roles:
        out.append(Statement(f"GRANT {d.role(role)} TO {grantee_sql}", f"the definition holds {role}"))
    for on in sorted({p.on for p in diff.missing} - whole, key=_on_key):
        out += grants(on, {p.name for p in diff.missing if p.on == on})
    for role in diff.extra_roles:
        name = role.split(" ", 1)[0]
        out.append(Statement(f"REVOKE {d.role(name)} FROM {grantee_sql}", f"{role} is not in the definition"))
    for on in sorted({p.on for p in diff.extra}, key=_on_key):
        here = [p for p in diff.extra if p.on == on]
        option = any(p.name == "GRANT OPTION" for p in here)
        names = [p for p in here if p.name != "GRANT OPTION"]
        if on in whole:
            out.append(Statement(f"REVOKE ALL PRIVILEGES ON {on} FROM {grantee_sql}", f"held beyond it on {on}"))
        elif names:
            text = render_privs(names, d.flavor)
            if text.startswith("ALL PRIVILEGES") and len(names) >= len(DB_ALL[d.flavor]):
                text = "ALL PRIVILEGES"
            out.append(Statement(f"REVOKE {text} ON {on} FROM {grantee_sql}", f"held beyond it on {on}"))
        if option:
            out.append(Statement(f"REVOKE GRANT OPTION ON {on} FROM {grantee_sql}", f"may hand on grants on {on}"))
        if on in whole and on in want:
            out += grants(on, want[on].expand(d.flavor))
    if default_role and user:
        out.append(Statement(d.set_default_role(default_role, *user), "so the role is active at login"))
    return out
