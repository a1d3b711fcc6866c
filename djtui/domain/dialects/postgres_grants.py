"""How PostgreSQL spells roles, grants, accounts and passwords, and the lab's role scheme on it. Pure code.

PostgreSQL has no grants on schema patterns (MySQL's `common\\_%`): privileges sit on each database,
schema and table, and ``ALTER DEFAULT PRIVILEGES FOR ROLE c`` says what tables (and schemas) that
``c`` creates later get. So the scheme is expanded over the objects that exist (``PgObjects``): a
role's definition is one ``Priv`` per privilege per object, compared with what the catalogs hold
(``aclexplode``), and folded back to ``ALL TABLES IN SCHEMA`` where a privilege covers every table.

Accounts have no host: ``pg_hba.conf`` decides where a role may log in from. The host parts of the
grant dialect are ignored and an account is shown by its name alone. A lock is ``NOLOGIN``. A
password never reaches the server in clear: the statement carries a SCRAM-SHA-256 verifier made
here (what ``psql``'s ``\\password`` does), as a parameter; the text a person sees says ``'****'``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import stringprep
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from djtui.domain.dialects.mysql_grants import PASSWORD_SHOWN
from djtui.domain.dialects.postgres import POSTGRES

ident = POSTGRES.ident

TABLE_PRIVS = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SCHEMA_PRIVS = ("USAGE", "CREATE")
SEQUENCE_PRIVS = ("USAGE", "SELECT")  # nextval and currval: what inserting into a `serial` column needs
_FUTURE = re.compile(r'^FUTURE (?P<kind>TABLES|SCHEMAS|SEQUENCES) OF (?P<role>"(?:[^"]|"")*")'
                     r'(?: IN SCHEMA (?P<schema>.+))?$')


@dataclass(frozen=True, order=True)
class Priv:
    """One privilege on one object (the shape of ``djtui.domain.grants.Priv``; ``on`` is a PostgreSQL object)."""

    on: str
    name: str
    column: str = ""

    @property
    def level(self) -> str:
        return "object"


@dataclass(frozen=True)
class PostgresGrants:
    """The grant dialect of PostgreSQL 15+ (roles with INHERIT, privileges per object)."""

    flavor: str = "PostgreSQL"
    version: tuple[int, ...] = ()
    partial_revokes: bool = False
    per_object = True  # privileges sit on objects, not on schema patterns
    has_hosts = False  # accounts have no host part (pg_hba.conf decides)

    @property
    def is_mariadb(self) -> bool:
        return False

    def supports_roles(self) -> bool:
        return True

    def supports_expiry(self) -> bool:
        return True

    def notes(self) -> list[str]:
        return ["PostgreSQL: accounts have no host (pg_hba.conf decides where from); a lock is NOLOGIN; "
                "granted roles act at login through INHERIT"]

    def role(self, name: str) -> str:
        return ident(name)

    def account(self, user: str, host: str = "") -> str:
        return ident(user)

    def on(self, pattern: str) -> str:
        return pattern  # already an object clause: SCHEMA "s", TABLE "s"."t", ...

    def create_role(self, name: str) -> str:
        return f"CREATE ROLE {ident(name)} NOLOGIN"

    def grant_role(self, role: str, user: str, host: str = "", *, admin_option: bool = False) -> str:
        sql = f"GRANT {ident(role)} TO {ident(user)}"
        return sql + " WITH ADMIN OPTION" if admin_option else sql

    def revoke_role(self, role: str, user: str, host: str = "") -> str:
        return f"REVOKE {ident(role)} FROM {ident(user)}"

    def set_default_role(self, role: str, user: str, host: str = "") -> str:
        return f"ALTER ROLE {ident(user)} INHERIT"

    def grant(self, privileges: str, pattern: str, grantee: str) -> str:
        return grant_sql(pattern, privileges, grantee)

    def revoke(self, privileges: str, pattern: str, grantee: str) -> str:
        return grant_sql(pattern, privileges, grantee, revoke=True)

    def create_user(self, user: str, host: str, expiry_days: int | None, *, valid_until: str = "") -> str:
        sql = f"CREATE ROLE {ident(user)} LOGIN INHERIT PASSWORD {PASSWORD_SHOWN}"
        return sql + f" VALID UNTIL {POSTGRES.literal(valid_until)}" if valid_until else sql

    def alter_password(self, user: str, host: str = "") -> str:
        return f"ALTER ROLE {ident(user)} PASSWORD {PASSWORD_SHOWN}"

    def lock(self, user: str, host: str = "", *, locked: bool = True) -> str:
        return f"ALTER ROLE {ident(user)} {'NOLOGIN' if locked else 'LOGIN'}"

    def drop_user(self, user: str, host: str = "") -> str:
        return f"DROP ROLE {ident(user)}"

    def drop_user_statements(self, user: str) -> list[str]:
        """What it owns goes to the admin running it (its schemas stay), its grants and default privileges go."""
        return [f"REASSIGN OWNED BY {ident(user)} TO CURRENT_USER", f"DROP OWNED BY {ident(user)}",
                self.drop_user(user)]

    def locked_accounts_sql(self) -> str:
        return "SELECT rolname, '' FROM pg_roles WHERE NOT rolcanlogin"

    def own_password(self) -> str:
        return f"ALTER ROLE CURRENT_USER PASSWORD {PASSWORD_SHOWN}"

    def password_parameter(self, password: str) -> str:
        """What travels in place of ``PASSWORD_SHOWN``: a SCRAM verifier, never the password."""
        return scram_verifier(password)


# ---------------------------------------------------------------------------
# objects and the statements on them


def on_database(db: str) -> str:
    return f"DATABASE {ident(db)}"


def on_schema(schema: str) -> str:
    return f"SCHEMA {ident(schema)}"


def on_table(schema: str, table: str) -> str:
    return f"TABLE {POSTGRES.table(schema, table)}"


def on_all_tables(schema: str) -> str:
    return f"ALL TABLES IN SCHEMA {ident(schema)}"


def on_sequence(schema: str, sequence: str) -> str:
    return f"SEQUENCE {POSTGRES.table(schema, sequence)}"


def on_all_sequences(schema: str) -> str:
    return f"ALL SEQUENCES IN SCHEMA {ident(schema)}"


def on_future(kind: str, creator: str, schema: str | None = None) -> str:
    """Objects ``creator`` makes later (``kind`` TABLES or SCHEMAS), as the diff shows them."""
    text = f"FUTURE {kind} OF {ident(creator)}"
    return text + f" IN SCHEMA {ident(schema)}" if schema else text


def grant_sql(on: str, privileges: str, grantee: str, *, revoke: bool = False, option_only: bool = False) -> str:
    """``GRANT privs ON on TO grantee`` (or REVOKE); future objects become ``ALTER DEFAULT PRIVILEGES``."""
    privs = f"GRANT OPTION FOR {privileges}" if option_only else privileges
    verb = f"REVOKE {privs}" if revoke else f"GRANT {privs}"
    to = f"FROM {grantee}" if revoke else f"TO {grantee}"
    m = _FUTURE.match(on)
    if m:
        where = f" IN SCHEMA {m.group('schema')}" if m.group("schema") else ""
        return f"ALTER DEFAULT PRIVILEGES FOR ROLE {m.group('role')}{where} {verb} ON {m.group('kind')} {to}"
    return f"{verb} ON {on} {to}"


@dataclass(frozen=True)
class PgObjects:
    """What exists in the lab's database, for expanding the scheme: schemas and tables with their owners."""

    database: str
    schemas: Mapping[str, str] = field(default_factory=dict)  # schema -> owner
    tables: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # schema -> ((table, owner),)
    creators: tuple[str, ...] = ()  # roles whose later tables and schemas the default privileges cover
    sequences: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # schema -> ((seq, owner),)
    guard: str | None = None  # the schema guard's function body as installed (postgres_guard), None: none
    guard_on: bool = False  # its event trigger exists and is enabled
    superuser: bool = False  # the account reading this may install the guard (event triggers need one)

    def tables_of(self, schema: str) -> tuple[tuple[str, str], ...]:
        return self.tables.get(schema, ())


def _on_schemas(objs: PgObjects, schemas: Iterable[str], schema_privs: Sequence[str],
                table_privs: Sequence[str], *, skip_owner: str | None = None,
                sequence_privs: Sequence[str] = ()) -> set[Priv]:
    out: set[Priv] = set()
    for s in schemas:
        if objs.schemas.get(s) != skip_owner:
            out |= {Priv(on_schema(s), n) for n in schema_privs}
        for t, owner in objs.tables_of(s):
            if owner != skip_owner:
                out |= {Priv(on_table(s, t), n) for n in table_privs}
        for q, owner in objs.sequences.get(s, ()):
            if owner != skip_owner:
                out |= {Priv(on_sequence(s, q), n) for n in sequence_privs}
    return out


def _future(creators: Iterable[str], kind: str, privs: Sequence[str], schemas: Iterable[str | None] = (None,)
            ) -> set[Priv]:
    return {Priv(on_future(kind, c, s), n) for c in creators for s in schemas for n in privs}


def with_prefix(schemas: Iterable[str], prefixes: Iterable[str]) -> list[str]:
    """Schemas ``<prefix>_...`` (case as written: PostgreSQL names are case-sensitive)."""
    pre = tuple(f"{p}_" for p in prefixes)
    return [s for s in schemas if pre and s.startswith(pre)]


def read_schemas(objs: PgObjects, scope: str | Sequence[str], modules: Sequence[str]) -> tuple[list[str], bool]:
    """The schemas the non-admin roles read, and whether the read reaches schemas made later (all of them).

    ``all`` and ``lab`` both mean every schema but the server's own and ``public``: no PostgreSQL
    schema holds password hashes (``pg_authid`` is for superusers), which is what ``lab`` avoids on MySQL.
    """
    if isinstance(scope, str):
        return sorted(objs.schemas), True
    return with_prefix(sorted(objs.schemas), (*scope, *modules)), False


def role_expected(kind: str, objs: PgObjects, *, scope: str | Sequence[str], modules: Sequence[str],
                  user_can_create: bool = True) -> frozenset[Priv]:
    """A role's definition over the objects that exist, the same meaning as on MySQL.

    admin: everything (CREATE on the database, USAGE and CREATE on every schema, every table
    privilege); guest, collab and user: USAGE and SELECT where they read; user also writes (and
    creates tables, unless ``user_can_create`` is off) in the shared modules' schemas. Tables and
    schemas the lab's users create later get the same through default privileges.
    """
    everything = sorted(objs.schemas)
    if kind == "admin":
        out = {Priv(on_database(objs.database), "CREATE")}
        out |= _on_schemas(objs, everything, SCHEMA_PRIVS, TABLE_PRIVS, sequence_privs=SEQUENCE_PRIVS)
        out |= _future(objs.creators, "TABLES", TABLE_PRIVS) | _future(objs.creators, "SCHEMAS", SCHEMA_PRIVS)
        out |= _future(objs.creators, "SEQUENCES", SEQUENCE_PRIVS)
        return frozenset(out)
    reads, later = read_schemas(objs, scope, modules)
    out = _on_schemas(objs, reads, ("USAGE",), ("SELECT",))
    if later:
        out |= _future(objs.creators, "TABLES", ("SELECT",)) | _future(objs.creators, "SCHEMAS", ("USAGE",))
    else:
        out |= _future(objs.creators, "TABLES", ("SELECT",), reads)
    if kind == "user":
        shared = with_prefix(everything, modules)
        out |= _on_schemas(objs, shared, SCHEMA_PRIVS if user_can_create else ("USAGE",), TABLE_PRIVS,
                           sequence_privs=SEQUENCE_PRIVS)
        out |= _future(objs.creators, "TABLES", TABLE_PRIVS, shared)
        out |= _future(objs.creators, "SEQUENCES", SEQUENCE_PRIVS, shared)
    return frozenset(out)


def user_expected(kind: str, user: str, objs: PgObjects) -> frozenset[Priv]:
    """A collab, user or admin makes its own ``<user>_...`` schemas: CREATE on the database, and on those
    it does not own (an admin made them) USAGE, CREATE and every table privilege. A guest has none."""
    if kind == "guest":
        return frozenset()
    own = with_prefix(sorted(objs.schemas), (user,))
    return frozenset({Priv(on_database(objs.database), "CREATE")}
                     | _on_schemas(objs, own, SCHEMA_PRIVS, TABLE_PRIVS, skip_owner=user,
                                   sequence_privs=SEQUENCE_PRIVS))


def fold(privs: Iterable[Priv], objs: PgObjects) -> frozenset[Priv]:
    """A privilege held on every table (sequence) of a schema, of two or more, becomes one ``ALL TABLES
    (SEQUENCES) IN SCHEMA``."""
    out = set(privs)
    for s in objs.schemas:
        for every, objects in ((on_all_tables(s), [on_table(s, t) for t, _o in objs.tables_of(s)]),
                               (on_all_sequences(s), [on_sequence(s, q) for q, _o in objs.sequences.get(s, ())])):
            if len(objects) < 2:
                continue
            for name in {p.name for p in out if p.on == objects[0]}:
                if all(Priv(t, name) in out for t in objects):
                    out -= {Priv(t, name) for t in objects}
                    out.add(Priv(every, name))
    return frozenset(out)


def schema_levels(privs: Iterable[Priv], objs: PgObjects, owner: str | None = None) -> dict[str, frozenset[str]]:
    """Per schema, what a holder of ``privs`` (folded) may do there: schema privileges and the table
    privileges it holds on every table; an owner holds everything on its own objects."""
    held = set(privs)
    out: dict[str, frozenset[str]] = {}
    for s, s_owner in objs.schemas.items():
        names = {p.name for p in held if p.on == on_schema(s)}
        tables = [on_table(s, t) for t, _o in objs.tables_of(s)]
        if tables:
            names |= {n for n in TABLE_PRIVS if all(Priv(t, n) in held for t in tables)}
        if owner is not None and s_owner == owner:
            names |= set(SCHEMA_PRIVS) | set(TABLE_PRIVS)
        if names:
            out[s] = frozenset(names)
    return out


def fix_statements(grantee: str, missing_roles: Iterable[str], missing: Iterable[Priv], extra_roles: Iterable[str],
                   extra: Iterable[Priv]) -> list[tuple[str, str]]:
    """``(sql, why)``: grant what is missing first, then take back what is held beyond the definition."""
    out: list[tuple[str, str]] = []
    who = ident(grantee)
    out += [(f"GRANT {ident(r)} TO {who}", f"the definition holds {r}") for r in missing_roles]
    for on, names in grouped(missing):
        out.append((grant_sql(on, ", ".join(names), who), f"missing on {on}"))
    for r in extra_roles:
        out.append((f"REVOKE {ident(r.split(' ', 1)[0])} FROM {who}", f"{r} is not in the definition"))
    for on, names in grouped(extra):
        plain = [n for n in names if n != "GRANT OPTION"]
        if plain:
            out.append((grant_sql(on, ", ".join(plain), who, revoke=True), f"held beyond it on {on}"))
        elif "GRANT OPTION" in names:
            out.append((grant_sql(on, "ALL PRIVILEGES", who, revoke=True, option_only=True),
                        f"may hand on grants on {on}"))
    return out


_KIND_ORDER = ("DATABASE ", "SCHEMA ", "ALL TABLES ", "TABLE ", "ALL SEQUENCES ", "SEQUENCE ", "FUTURE SCHEMAS ",
               "FUTURE TABLES ", "FUTURE SEQUENCES ")


def on_order(on: str) -> tuple[int, str]:
    """Objects in the order a person reads them: the database, schemas, tables, sequences, then later ones."""
    return next((n for n, k in enumerate(_KIND_ORDER) if on.startswith(k)), len(_KIND_ORDER)), on


def grouped(privs: Iterable[Priv]) -> list[tuple[str, list[str]]]:
    order = {n: i for i, n in enumerate((*TABLE_PRIVS, *SCHEMA_PRIVS, "GRANT OPTION"))}
    by: dict[str, set[str]] = {}
    for p in privs:
        by.setdefault(p.on, set()).add(p.name)
    return [(on, sorted(by[on], key=lambda n: (order.get(n, 99), n))) for on in sorted(by, key=on_order)]


# ---------------------------------------------------------------------------
# passwords


def _saslprep(password: str) -> bytes:
    """RFC 4013 as PostgreSQL applies it; where the password is not valid, PostgreSQL uses the raw bytes."""
    if password.isascii():
        return password.encode()
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    norm = unicodedata.normalize("NFKC", mapped)
    bad = (stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
           stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
           stringprep.in_table_c9, stringprep.in_table_a1)
    if any(f(c) for c in norm for f in bad):
        return password.encode()
    return norm.encode()


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores (``pg_authid.rolpassword``), made on this side so the
    password itself never travels to the server (RFC 5802 / RFC 7677)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
