"""Names in a lab's account scheme: roles and kinds, user/module/host validation, schema patterns
(MySQL LIKE rules) and generated passwords. Pure code."""

from __future__ import annotations

import re
import secrets
import string

from djtui.errors import UserError

KINDS = ("guest", "collab", "user", "admin")
ROLE_OF_KIND = {kind: f"dj_{kind}" for kind in KINDS}
KIND_OF_ROLE = {role: kind for kind, role in ROLE_OF_KIND.items()}
RANK = {kind: n for n, kind in enumerate(KINDS)}

ANY_SCHEMA = "%"  # the db pattern of "every schema"
LAB_SCHEMAS = "%\\_%"  # every schema with a `_` in its name: DataJoint's `<prefix>_<name>`; not `mysql`, not `sys`
SYSTEM_SCHEMAS = ("mysql", "sys")  # where account tables and password hashes live
READ_SCOPES = ("all", "lab")  # or a list of schema prefixes

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
