"""Plans: the statements a change runs, as a person reads them first, and the advice when the
server refuses to grant a role. Pure code."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from djtui.domain.dialects import PASSWORD_SHOWN, GrantDialect
from djtui.domain.dialects.mysql import MYSQL


@dataclass(frozen=True)
class Statement:
    """One statement as a person sees it (password as '****') and as the server gets it."""

    sql: str
    why: str = ""
    password: str | None = field(default=None, repr=False, compare=False)
    undo: str | None = None  # run if a later statement of the plan fails, so no half-made account stays

    def executable(self) -> tuple[str, tuple[str, ...] | None]:
        """Text and parameters for pymysql: the password travels as a parameter, never inlined."""
        if self.password is None:
            return self.sql, None
        before, after = self.sql.rsplit(PASSWORD_SHOWN, 1)
        return before.replace("%", "%%") + "%s" + after.replace("%", "%%"), (self.password,)


@dataclass(frozen=True)
class Plan:
    """What a change will do, first as text: the statements and the expected-vs-actual diff."""

    title: str
    statements: tuple[Statement, ...] = ()
    diff: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    target: str = ""  # the user or role acted on, for the audit log

    @property
    def empty(self) -> bool:
        return not self.statements

    def render(self) -> str:
        lines = [self.title]
        lines += [f"  note: {n}" for n in self.notes]
        if self.diff:
            lines.append("  expected vs actual:")
            lines += [f"    {d}" for d in self.diff]
        if self.statements:
            lines.append("  SQL:")
            lines += [f"    {s.sql};" for s in self.statements]
        else:
            lines.append("  nothing to do: the server already matches")
        return "\n".join(lines)





_ROLE_GRANT_SQL = re.compile(r"^GRANT (?P<role>`(?:[^`]|``)+`|'(?:[^']|'')+') "
                             r"TO (?P<acct>'(?:[^']|'')*'@'(?:[^']|'')*')")


def role_of_grant(sql: str) -> tuple[str, str] | None:
    """``(role, account)`` when ``sql`` grants a role (``GRANT `dj_user` TO 'a'@'%'``), else None."""
    m = _ROLE_GRANT_SQL.match(sql)
    if not m:
        return None
    role = m.group("role")
    return role[1:-1].replace(role[0] * 2, role[0]), m.group("acct")


def role_admin_advice(dialect: GrantDialect, role: str, me: str, admins: Sequence[str]) -> str:
    """What to do when granting ``role`` is refused: who holds ADMIN OPTION on it, and the fix.

    ``me`` is ``user@host`` of the account that was refused; ``admins`` are ``user@host``.
    """
    user, _, host = me.rpartition("@")
    grant = f"GRANT {dialect.role(role)} TO {dialect.account(user, host)} WITH ADMIN OPTION"
    if not dialect.is_mariadb:
        return (f"{me} may not grant {role}: it needs the ROLE_ADMIN privilege or ADMIN OPTION on the role; "
                f"as an account that has them run: {grant}")
    holders = ", ".join(admins) if admins else "no account at all (its creator was dropped)"
    text = (f"on MariaDB only accounts holding ADMIN OPTION on {role} may grant it, whatever other privileges "
            f"they have; {me} holds none. Holders: {holders}. ")
    if admins:
        return text + f"Fix: as one of them run `{grant}` (or `djtui roles init`, which gives every account admin this)"
    return text + ("Fix, as root (needs INSERT on mysql and RELOAD): `INSERT INTO mysql.roles_mapping "
                   f"(Host, User, Role, Admin_option) VALUES ({MYSQL.literal(host)}, {MYSQL.literal(user)}, "
                   f"{MYSQL.literal(role)}, 'Y'); FLUSH PRIVILEGES`, then run `djtui roles init`")


