"""Grants as the server reports them: ``SHOW GRANTS`` lines read into db-pattern grants, roles and
default roles, and into single privileges (``Priv``) per object for the two-way drift. Pure code."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from djtui.domain.dialects.mysql import MYSQL
from djtui.domain.grants.names import DB_ALL


@dataclass(frozen=True)
class GrantLine:
    """One parsed ``SHOW GRANTS`` line on a database pattern (``*`` for global)."""

    pattern: str
    privileges: frozenset[str]
    all_: bool
    grant_option: bool = False


@dataclass(frozen=True)
class ParsedGrants:
    db: tuple[GrantLine, ...] = ()
    roles: tuple[str, ...] = ()
    default_role: str | None = None
    other: tuple[str, ...] = ()  # table/column/proxy grants, kept for display
    revoked: tuple[GrantLine, ...] = ()  # MySQL partial revokes: `REVOKE SELECT ON mysql.* FROM ...`


_GRANT_ON = re.compile(r"^GRANT (?P<privs>.+?) ON (?P<target>\*\.\*|`(?:[^`]|``)*`\.(?:\*|`(?:[^`]|``)*`)|\S+) "
                       r"TO (?P<rest>.+)$", re.DOTALL)
_GRANT_ROLE = re.compile(r"^GRANT (?P<roles>(?:[`'][^`']+[`'](?:@[`'][^`']*[`'])?(?:,\s*)?)+) TO ", re.DOTALL)
_REVOKE_ON = re.compile(r"^REVOKE (?P<privs>.+?) ON (?P<db>`(?:[^`]|``)*`)\.\* FROM ", re.DOTALL)
_DEFAULT_ROLE = re.compile(r"^SET DEFAULT ROLE [`']?(?P<role>[^`'\s]+)[`']? FOR ")
_NAME = re.compile(r"[`']((?:[^`']|``)+)[`'](?:@[`'][^`']*[`'])?")


def _unquote_ident(text: str) -> str:
    return text[1:-1].replace("``", "`") if text.startswith("`") else text


def parse_grant_line(line: str) -> ParsedGrants:
    """Read one line of ``SHOW GRANTS`` (MySQL 8 and MariaDB spellings)."""
    m = _GRANT_ON.match(line)
    if m and not line.startswith("GRANT PROXY"):
        target = m.group("target")
        if target == "*.*":
            pattern, table = "*", "*"
        else:
            db, _, table = target.rpartition(".")
            pattern = _unquote_ident(db)
        if table != "*":
            return ParsedGrants(other=(line,))
        privs_text = m.group("privs").upper()
        all_ = privs_text.startswith("ALL")
        names = frozenset() if all_ else frozenset(p.strip() for p in privs_text.split(",") if p.strip())
        names = names - {"USAGE"}
        return ParsedGrants(db=(GrantLine(pattern, names, all_, "WITH GRANT OPTION" in m.group("rest")),))
    m = _REVOKE_ON.match(line)
    if m:
        privs = frozenset(p.strip() for p in m.group("privs").upper().split(",") if p.strip())
        return ParsedGrants(revoked=(GrantLine(_unquote_ident(m.group("db")), privs, False),))
    m = _DEFAULT_ROLE.match(line)
    if m:
        return ParsedGrants(default_role=m.group("role"))
    m = _GRANT_ROLE.match(line)
    if m:
        return ParsedGrants(roles=tuple(n.replace("``", "`") for n in _NAME.findall(m.group("roles"))))
    return ParsedGrants(other=(line,))


def parse_grants(lines: Iterable[str]) -> ParsedGrants:
    db: list[GrantLine] = []
    roles: list[str] = []
    other: list[str] = []
    revoked: list[GrantLine] = []
    default = None
    for line in lines:
        p = parse_grant_line(line)
        db += p.db
        roles += p.roles
        other += p.other
        revoked += p.revoked
        default = p.default_role or default
    return ParsedGrants(tuple(db), tuple(roles), default, tuple(other), tuple(revoked))


def effective(lines: Sequence[GrantLine], flavor: str) -> dict[str, frozenset[str]]:
    """Privileges per db pattern, with ALL expanded; the global ``*`` pattern kept as is."""
    out: dict[str, frozenset[str]] = {}
    for g in lines:
        privs = DB_ALL[flavor] if g.all_ else g.privileges
        out[g.pattern] = out.get(g.pattern, frozenset()) | privs
    return {k: v for k, v in out.items() if v}



@dataclass(frozen=True, order=True)
class Priv:
    """One privilege on one object, as the server holds it.

    ``on`` is the ON clause as SQL (``*.*``, `` `db\\_%`.* ``, `` `db`.`t` ``, ``PROCEDURE `db`.`p` ``);
    ``column`` is set for a column-level privilege. ``GRANT OPTION`` is a privilege of its own.
    ``ALL PRIVILEGES`` stays whole where it cannot be expanded (global, table level).
    """

    on: str
    name: str
    column: str = ""

    @property
    def level(self) -> str:
        if self.on == "*.*":
            return "global"
        if self.on.endswith(".*") and self.on.startswith("`"):
            return "db"
        return "object"



_GRANT_FULL = re.compile(r"^GRANT (?P<privs>.+?) ON (?P<kind>(?:PROCEDURE|FUNCTION|PACKAGE BODY|PACKAGE) )?"
                         r"(?P<target>\*\.\*|`(?:[^`]|``)*`\.(?:\*|`(?:[^`]|``)*`)|\S+) TO (?P<to>.+)$", re.DOTALL)
_QUOTED = r"`(?:[^`]|``)*`|'(?:[^']|'')*'"
_GRANTEE = re.compile(rf"^(?P<user>{_QUOTED}|[^@\s]+)(?:@(?P<host>{_QUOTED}|\S+))?")


def _unquote_any(text: str) -> str:
    if len(text) >= 2 and text[0] in "`'" and text[-1] == text[0]:
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


def grantee_of(rest: str) -> tuple[str, str | None]:
    """``(user, host)`` of the text after ``TO`` in a SHOW GRANTS line (host None for a MariaDB role)."""
    m = _GRANTEE.match(rest.strip())
    if not m:
        return rest.strip(), None
    host = m.group("host")
    return _unquote_any(m.group("user")), (_unquote_any(host) if host is not None else None)


def _split_privs(text: str) -> list[str]:
    """Split a privilege list on the commas outside column lists."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def line_privs(line: str, flavor: str) -> tuple[frozenset[Priv], tuple[str, str | None] | None]:
    """The privileges one ``GRANT ... ON ... TO ...`` line gives, and to whom; empty for other lines.

    ALL on a database pattern is expanded (so it compares with a definition privilege by privilege);
    ALL on ``*.*`` or on a table stays ``ALL PRIVILEGES``. ``USAGE`` is no privilege.
    """
    m = _GRANT_FULL.match(line)
    if not m:
        return frozenset(), None
    target = m.group("target")
    kind = m.group("kind") or ""
    if target != "*.*" and target.endswith(".*") and target.startswith("`") and not kind:
        on = MYSQL.ident(_unquote_ident(target[:-2])) + ".*"
    else:
        on = kind + target
    rest = m.group("to")
    head = rest.split(" IDENTIFIED ")[0].split(" WITH ")[0].split(" REQUIRE ")[0]
    who = grantee_of(head)
    out: set[Priv] = set()
    for item in _split_privs(m.group("privs")):
        name, _, cols = item.partition("(")
        name = " ".join(name.split()).upper()
        if name == "USAGE":
            continue
        if name in ("ALL", "ALL PRIVILEGES"):
            if on.endswith(".*") and on != "*.*":
                out |= {Priv(on, n) for n in DB_ALL[flavor]}
            else:
                out.add(Priv(on, "ALL PRIVILEGES"))
            continue
        if cols:
            for c in re.findall(r"`((?:[^`]|``)*)`|(\w+)", cols.rstrip(")")):
                out.add(Priv(on, name, (c[0] or c[1]).replace("``", "`")))
        else:
            out.add(Priv(on, name))
    if " WITH GRANT OPTION" in rest:
        out.add(Priv(on, "GRANT OPTION"))
    return frozenset(out), who


def held_privs(lines: Iterable[str], flavor: str, grantee: tuple[str, str | None]) -> frozenset[Priv]:
    """Everything ``grantee`` holds directly, from its SHOW GRANTS lines.

    MariaDB's SHOW GRANTS for a role also lists the grants of the roles granted to it, each
    ``TO`` that role: only the lines to ``grantee`` itself count.
    """
    user, host = grantee
    out: set[Priv] = set()
    for line in lines:
        privs, who = line_privs(line, flavor)
        if who is None or who[0] != user or (host is not None and who[1] is not None and who[1] != host):
            continue
        out |= privs
    return frozenset(out)
