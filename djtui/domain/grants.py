"""Roles, grants and accounts of a DataJoint lab, as plans of exact SQL.

Spyglass's role scheme (FIELD.md section 3) is kept, without its bugs: names
are validated, identifiers quoted, ``_``/``%`` escaped in schema patterns
(user names included), default roles set so a new user's role works at login,
and passwords never inlined in the text a person sees. Two dialects differ:
MySQL 8 (``SET DEFAULT ROLE ALL TO``, roles are accounts ``'r'@'%'``) and
MariaDB (``SET DEFAULT ROLE r FOR``, roles have no host). Pure code: no I/O.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from djtui.errors import UserError

KINDS = ("guest", "collab", "user", "admin")
ROLE_OF_KIND = {kind: f"dj_{kind}" for kind in KINDS}
KIND_OF_ROLE = {role: kind for kind, role in ROLE_OF_KIND.items()}
RANK = {kind: n for n, kind in enumerate(KINDS)}

ANY_SCHEMA = "%"  # the db pattern of "every schema"
LAB_SCHEMAS = "%\\_%"  # every schema with a `_` in its name: DataJoint's `<prefix>_<name>`; not `mysql`, not `sys`
SYSTEM_SCHEMAS = ("mysql", "sys")  # where account tables and password hashes live
READ_SCOPES = ("all", "lab")  # or a list of schema prefixes
PASSWORD_SHOWN = "'****'"

# privileges that ALL PRIVILEGES stands for at the database level (GRANT OPTION excluded)
_DB_ALL_COMMON = frozenset({
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "REFERENCES", "INDEX", "ALTER",
    "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE", "CREATE VIEW", "SHOW VIEW",
    "CREATE ROUTINE", "ALTER ROUTINE", "EVENT", "TRIGGER",
})
DB_ALL = {"MariaDB": _DB_ALL_COMMON | {"DELETE HISTORY"}, "MySQL": _DB_ALL_COMMON}

_USER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\Z")  # \Z, not $: `$` accepts a trailing newline
_MODULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*\Z")
_HOST = re.compile(r"^[A-Za-z0-9.%_:/-]+\Z")
USER_NAME_MAX = 32  # MySQL 8's limit, the stricter of the two


# ---------------------------------------------------------------------------
# names and quoting


def validate_user_name(name: str, *, where: str = "user name") -> str:
    """A user name also names the user's schema prefix, so it must be a plain identifier."""
    if not name or len(name) > USER_NAME_MAX or not _USER_NAME.match(name):
        raise UserError(f"{name!r} is not a usable user name", where=where,
                        hint=f"start with a letter, then letters, digits or _ (at most {USER_NAME_MAX} characters); "
                             "quotes, backticks, spaces, % and other symbols are refused")
    if name.lower().startswith("dj_") and name.lower() in ROLE_OF_KIND.values():
        raise UserError(f"{name!r} is the name of a djtui role", where=where, hint="pick another user name")
    return name


def validate_module_name(name: str, *, where: str = "module name") -> str:
    if not name or len(name) > 60 or not _MODULE_NAME.match(name):
        raise UserError(f"{name!r} is not a usable schema prefix", where=where,
                        hint="a module prefix holds letters, digits and _ only (e.g. `spikesorting`)")
    return name


def validate_host(host: str, *, where: str = "host") -> str:
    if not host or len(host) > 255 or not _HOST.match(host):
        raise UserError(f"{host!r} is not a usable host pattern", where=where,
                        hint="letters, digits, '.', '-', ':', '/' and the wildcards % _ only, e.g. % or 10.0.%")
    return host


def quote_ident(name: str) -> str:
    """A backtick-quoted identifier; a backtick inside is doubled."""
    return "`" + name.replace("`", "``") + "`"


def quote_string(value: str) -> str:
    """A single-quoted string literal, safe whatever the sql_mode (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def escape_like(text: str) -> str:
    """Make ``_``, ``%`` and ``\\`` literal in a MySQL db-name pattern."""
    return text.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def prefix_pattern(prefix: str) -> str:
    """The db pattern of every schema ``<prefix>_...``: ``common`` -> ``common\\_%``."""
    return escape_like(prefix) + "\\_%"


def like_match(pattern: str, name: str) -> bool:
    """Does db-name ``pattern`` (MySQL LIKE rules, backslash escape) cover schema ``name``."""
    rx = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            rx.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        rx.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(rx), name, flags=re.IGNORECASE | re.DOTALL) is not None


def generate_password(length: int = 20) -> str:
    """A strong password that passes common validate_password policies (mixed case, digit, symbol)."""
    symbols = "-_.+"
    alphabet = string.ascii_letters + string.digits + symbols
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if (any(c.islower() for c in pw) and any(c.isupper() for c in pw)
                and any(c.isdigit() for c in pw) and any(c in symbols for c in pw)):
            return pw


# ---------------------------------------------------------------------------
# dialects


@dataclass(frozen=True)
class Dialect:
    """How one server flavor spells roles, default roles and password changes."""

    flavor: str  # "MariaDB" | "MySQL"
    version: tuple[int, ...] = ()
    partial_revokes: bool = False  # MySQL's @@partial_revokes: wildcards in grants are literal, REVOKE can carve

    @property
    def is_mariadb(self) -> bool:
        return self.flavor == "MariaDB"

    def supports_roles(self) -> bool:
        return self.version >= ((10, 0, 5) if self.is_mariadb else (8, 0, 0)) or not self.version

    def supports_expiry(self) -> bool:
        return self.version >= ((10, 4, 3) if self.is_mariadb else (5, 7, 4)) or not self.version

    def notes(self) -> list[str]:
        if not self.supports_roles():
            return [f"{self.flavor} {'.'.join(map(str, self.version))} has no roles: "
                    f"djtui needs MySQL 8.0+ or MariaDB 10.0.5+"]
        if self.is_mariadb:
            return ["MariaDB: roles have no host; one default role per user (SET DEFAULT ROLE r FOR u); "
                    "a user changes their own password with SET PASSWORD (ALTER USER needs CREATE USER)"]
        return ["MySQL 8: roles are accounts 'r'@'%'; granted roles are inactive at login unless set as "
                "default (SET DEFAULT ROLE ALL TO u) or activate_all_roles_on_login is ON"]

    def role(self, name: str) -> str:
        return quote_ident(name) if self.is_mariadb else quote_string(name)

    def account(self, user: str, host: str) -> str:
        return f"{quote_string(user)}@{quote_string(host)}"

    def on(self, pattern: str) -> str:
        return "*.*" if pattern == "*" else f"{quote_ident(pattern)}.*"

    def create_role(self, name: str) -> str:
        return f"CREATE ROLE IF NOT EXISTS {self.role(name)}"

    def grant_role(self, role: str, user: str, host: str, *, admin_option: bool = False) -> str:
        sql = f"GRANT {self.role(role)} TO {self.account(user, host)}"
        return sql + " WITH ADMIN OPTION" if admin_option else sql

    def revoke_role(self, role: str, user: str, host: str) -> str:
        return f"REVOKE {self.role(role)} FROM {self.account(user, host)}"

    def set_default_role(self, role: str, user: str, host: str) -> str:
        if self.is_mariadb:
            return f"SET DEFAULT ROLE {self.role(role)} FOR {self.account(user, host)}"
        return f"SET DEFAULT ROLE ALL TO {self.account(user, host)}"

    def grant(self, privileges: str, pattern: str, grantee: str) -> str:
        return f"GRANT {privileges} ON {self.on(pattern)} TO {grantee}"

    def revoke(self, privileges: str, pattern: str, grantee: str) -> str:
        return f"REVOKE {privileges} ON {self.on(pattern)} FROM {grantee}"

    def create_user(self, user: str, host: str, expiry_days: int | None) -> str:
        sql = f"CREATE USER {self.account(user, host)} IDENTIFIED BY {PASSWORD_SHOWN}"
        if expiry_days and self.supports_expiry():
            sql += f" PASSWORD EXPIRE INTERVAL {int(expiry_days)} DAY"
        return sql

    def alter_password(self, user: str, host: str) -> str:
        return f"ALTER USER {self.account(user, host)} IDENTIFIED BY {PASSWORD_SHOWN}"

    def lock(self, user: str, host: str, *, locked: bool = True) -> str:
        """The same on both flavors (MySQL 5.7.6+, MariaDB 10.4.2+)."""
        return f"ALTER USER {self.account(user, host)} ACCOUNT {'LOCK' if locked else 'UNLOCK'}"

    def drop_user(self, user: str, host: str) -> str:
        return f"DROP USER {self.account(user, host)}"

    def locked_accounts_sql(self) -> str:
        """``User, Host`` of every locked account (MariaDB keeps the flag in ``mysql.global_priv``'s JSON)."""
        if self.is_mariadb:
            return ("SELECT User, Host FROM mysql.global_priv "
                    "WHERE JSON_VALUE(Priv, '$.account_locked') IN ('1', 'true')")
        return "SELECT User, Host FROM mysql.user WHERE account_locked = 'Y'"

    def own_password(self) -> str:
        # MariaDB refuses ALTER USER CURRENT_USER() without CREATE USER; SET PASSWORD needs nothing
        if self.is_mariadb:
            return f"SET PASSWORD = PASSWORD({PASSWORD_SHOWN})"
        return f"ALTER USER CURRENT_USER() IDENTIFIED BY {PASSWORD_SHOWN}"


# ---------------------------------------------------------------------------
# privileges and expected grants


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


# ---------------------------------------------------------------------------
# grants as the server reports them


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


def fix_statements(dialect: Dialect, grantee_sql: str, expected: Sequence[ExpectedGrant],
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
# who may grant a role (MariaDB: only holders WITH ADMIN OPTION, whatever else they hold)

_ROLE_GRANT_SQL = re.compile(r"^GRANT (?P<role>`(?:[^`]|``)+`|'(?:[^']|'')+') "
                             r"TO (?P<acct>'(?:[^']|'')*'@'(?:[^']|'')*')")


def role_of_grant(sql: str) -> tuple[str, str] | None:
    """``(role, account)`` when ``sql`` grants a role (``GRANT `dj_user` TO 'a'@'%'``), else None."""
    m = _ROLE_GRANT_SQL.match(sql)
    if not m:
        return None
    role = m.group("role")
    return role[1:-1].replace(role[0] * 2, role[0]), m.group("acct")


def role_admin_advice(dialect: Dialect, role: str, me: str, admins: Sequence[str]) -> str:
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
                   f"(Host, User, Role, Admin_option) VALUES ({quote_string(host)}, {quote_string(user)}, "
                   f"{quote_string(role)}, 'Y'); FLUSH PRIVILEGES`, then run `djtui roles init`")


# ---------------------------------------------------------------------------
# two-way drift: every privilege held beyond the definition, and every one missing

# the order privileges are listed in (MySQL's own), so a diff reads the same every time
PRIV_ORDER = ("ALL PRIVILEGES", "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "RELOAD", "SHUTDOWN",
              "PROCESS", "FILE", "REFERENCES", "INDEX", "ALTER", "SHOW DATABASES", "SUPER",
              "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE", "REPLICATION SLAVE", "REPLICATION CLIENT",
              "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "CREATE USER", "EVENT", "TRIGGER",
              "CREATE TABLESPACE", "DELETE HISTORY", "CREATE ROLE", "DROP ROLE", "PROXY", "GRANT OPTION")
_RANK = {p: n for n, p in enumerate(PRIV_ORDER)}


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


def _on_key(on: str) -> tuple[int, str]:
    return (0 if on == "*.*" else 1 if on.endswith(".*") else 2, on)


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
    parts += [(n, f"{n} ({', '.join(quote_ident(c) for c in sorted(cs))})") for n, cs in cols.items()]
    return ", ".join(t for _n, t in sorted(parts, key=lambda x: (_RANK.get(x[0], 999), x[0])))


def grant_text(privs: Sequence[Priv], on: str, flavor: str) -> str:
    """``ALL PRIVILEGES ON *.* WITH GRANT OPTION``: privileges on one object as GRANT spells them."""
    text = render_privs(privs, flavor)
    if any(p.name == "GRANT OPTION" for p in privs):
        return f"{text} ON {on} WITH GRANT OPTION" if text else f"GRANT OPTION ON {on}"
    return f"{text} ON {on}"


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
        on = quote_ident(_unquote_ident(target[:-2])) + ".*"
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


def expected_privs(expected: Sequence[ExpectedGrant], flavor: str) -> frozenset[Priv]:
    out: set[Priv] = set()
    for eg in expected:
        on = "*.*" if eg.pattern == "*" else f"{quote_ident(eg.pattern)}.*"
        out |= {Priv(on, n) for n in eg.privileges.expand(flavor)}
    return frozenset(out)


def diff_privs(expected: frozenset[Priv], actual: frozenset[Priv]) -> tuple[frozenset[Priv], frozenset[Priv]]:
    """``(extra, missing)``; a whole ``ALL PRIVILEGES`` covers what is expected on its object."""
    extra = actual - expected
    missing = expected - actual
    whole = {p.on for p in actual if p.name == "ALL PRIVILEGES"}
    missing = frozenset(p for p in missing if p.on not in whole or p.name == "GRANT OPTION")
    return extra, missing


def fix_privs_statements(d: Dialect, grantee_sql: str, expected: Sequence[ExpectedGrant], diff: GrantDiff,
                         *, default_role: str | None = None, user: tuple[str, str] | None = None
                         ) -> list[Statement]:
    """Grant what is missing first (no moment without what the definition gives), then take back the extras.

    A whole ``ALL PRIVILEGES`` (global or on a table) can only go whole: it is revoked and what the
    definition wants on that object is granted again right after.
    """
    want = {("*.*" if g_.pattern == "*" else f"{quote_ident(g_.pattern)}.*"): g_.privileges for g_ in expected}
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
