"""PostgreSQL's accounts: roles (login and group), privileges on schemas and tables, default privileges.

The ``Backend`` protocol's account members for PostgreSQL, read from the catalogs: ``pg_roles`` and
``pg_auth_members`` for accounts and who holds which role, ``aclexplode`` over ``datacl``,
``nspacl`` and ``relacl`` (an unset ACL is the owner's default, ``acldefault``) and over
``pg_default_acl`` for what each role holds. An owner's own rights are not grants: they are left out
here and counted as ownership by the caller. Accounts have no host: the host is always ``""``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from djtui.domain.dialects.postgres_grants import (
    PgObjects,
    PostgresGrants,
    Priv,
    grant_sql,
    ident,
    on_database,
    on_future,
    on_schema,
    on_sequence,
    on_table,
)
from djtui.domain.dialects.postgres_guard import GUARD
from djtui.services.backends import AccountCatalog

_LAB = ("{n}.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'public') "
        "AND {n}.nspname NOT LIKE 'pg\\_temp\\_%%' AND {n}.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%'")

_PRIVS_SQL = f"""
WITH g AS (SELECT oid, rolname FROM pg_roles WHERE rolname = ANY(%s))
SELECT g.rolname, 'DATABASE', d.datname, NULL, a.privilege_type, a.is_grantable
  FROM pg_database d CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
  JOIN g ON g.oid = a.grantee
 WHERE d.datname = current_database() AND a.grantee <> d.datdba
UNION ALL
SELECT g.rolname, 'SCHEMA', n.nspname, NULL, a.privilege_type, a.is_grantable
  FROM pg_namespace n CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
  JOIN g ON g.oid = a.grantee
 WHERE {_LAB.format(n="n")} AND a.grantee <> n.nspowner
UNION ALL
SELECT g.rolname, CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, n.nspname, c.relname,
       a.privilege_type, a.is_grantable
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char",
                                                              c.relowner))) a
  JOIN g ON g.oid = a.grantee
 WHERE c.relkind IN ('r', 'p', 'S') AND NOT c.relispartition AND {_LAB.format(n="n")} AND a.grantee <> c.relowner
UNION ALL
SELECT g.rolname, CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' ELSE 'SCHEMAS' END,
       pg_get_userbyid(d.defaclrole),
       n.nspname, a.privilege_type, a.is_grantable
  FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
  CROSS JOIN LATERAL aclexplode(d.defaclacl) a
  JOIN g ON g.oid = a.grantee
 WHERE d.defaclobjtype IN ('r', 'n', 'S') AND a.grantee <> d.defaclrole
"""


def _unquote(grantee_sql: str) -> str:
    s = grantee_sql.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1].replace('""', '"')
    return s


class PostgresAccounts:
    """The account members of the PostgreSQL backend (mixed into ``PostgresBackend``)."""

    def _q(self, sql: str, args: Any = None) -> list:  # provided by PostgresBackend
        raise NotImplementedError

    def server_info(self) -> Any:  # provided by PostgresBackend
        raise NotImplementedError

    def grant_dialect(self, *, partial_revokes: bool | None = None) -> PostgresGrants:
        return PostgresGrants("PostgreSQL", self.server_info().version_tuple)

    def account_catalog(self, role_names: frozenset[str]) -> AccountCatalog:
        roles = self._q("SELECT rolname, rolcanlogin, rolinherit, rolsuper, rolcreaterole FROM pg_roles "
                        "WHERE rolname !~ '^pg_' ORDER BY 1")
        held: dict[tuple[str, str], list[tuple[str, bool]]] = {}
        for role, member, admin in self._q(
                "SELECT g.rolname, m.rolname, am.admin_option FROM pg_auth_members am "
                "JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member ORDER BY 1, 2"):
            held.setdefault((member, ""), []).append((role, bool(admin)))
        members_of_ours = {k[0] for k, v in held.items() if any(r in role_names for r, _a in v)}
        accounts = tuple((name, "") for name, login, *_ in roles
                         if name not in role_names and (login or name in members_of_ours))
        inherit = {name for name, _l, inh, *_ in roles if inh}
        defaults = {k: tuple(r for r, adm in v if not adm) for k, v in held.items() if k[0] in inherit}
        admins = tuple(sorted(name for name, login, _i, sup, crole in roles if login and (sup or crole)))
        return AccountCatalog(accounts=accounts, roles=frozenset(r[0] for r in roles if r[0] in role_names),
                              held={k: tuple(v) for k, v in held.items()}, defaults=defaults,
                              activate_all=False, account_admins=admins)

    def object_privileges(self, grantees: Iterable[str]) -> dict[str, frozenset[Priv]]:
        """What each role holds by grant (not by ownership) in this database, default privileges included."""
        out: dict[str, set[Priv]] = {name: set() for name in grantees}
        for who, kind, a, b, priv, grantable in self._q(_PRIVS_SQL, (list(out),)):
            if kind == "DATABASE":
                on = on_database(a)
            elif kind == "SCHEMA":
                on = on_schema(a)
            elif kind == "TABLE":
                on = on_table(a, b)
            elif kind == "SEQUENCE":
                on = on_sequence(a, b)
            else:
                on = on_future(kind, a, b)
            out[who].add(Priv(on, priv))
            if grantable:
                out[who].add(Priv(on, "GRANT OPTION"))
        return {k: frozenset(v) for k, v in out.items()}

    def account_objects(self, creators: Iterable[str] = ()) -> PgObjects:
        """The lab's schemas and tables with their owners, in the database djtui is connected to."""
        db = self._q("SELECT current_database()")[0][0]
        schemas = {n: o for n, o in self._q(
            f"SELECT n.nspname, pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE {_LAB.format(n='n')} "
            "ORDER BY 1", ())}
        tables: dict[str, list[tuple[str, str]]] = {}
        sequences: dict[str, list[tuple[str, str]]] = {}
        for s, t, o, kind in self._q(
                "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), c.relkind FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'S') "
                f"AND NOT c.relispartition AND {_LAB.format(n='n')} ORDER BY 1, 2", ()):
            (sequences if kind == "S" else tables).setdefault(s, []).append((t, o))
        guard, guard_on, superuser = self._q(
            "SELECT (SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.proname = %s), "
            "EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = %s AND evtenabled <> 'D'), "
            "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)", (GUARD, GUARD))[0]
        return PgObjects(str(db), schemas, {k: tuple(v) for k, v in tables.items()}, tuple(sorted(set(creators))),
                         {k: tuple(v) for k, v in sequences.items()}, guard, bool(guard_on), bool(superuser))

    def show_grants(self, grantee_sql: str) -> list[str]:
        """The role's grants as GRANT statements (PostgreSQL has no SHOW GRANTS), memberships first."""
        name = _unquote(grantee_sql)
        out = [f"GRANT {ident(r)} TO {ident(name)}" + (" WITH ADMIN OPTION" if adm else "")
               for r, adm in self.account_catalog(frozenset()).held.get((name, ""), ())]
        privs = self.object_privileges([name])[name]
        by: dict[str, list[str]] = {}
        for p in sorted(privs):
            by.setdefault(p.on, []).append(p.name)
        for on, names in by.items():
            out.append(grant_sql(on, ", ".join(n for n in names if n != "GRANT OPTION") or "USAGE", ident(name))
                       + (" WITH GRANT OPTION" if "GRANT OPTION" in names else ""))
        return out

    def locked_accounts(self) -> set[tuple[str, str]]:
        return {(r[0], "") for r in self._q(self.grant_dialect().locked_accounts_sql())}

    def role_admins(self, role: str) -> list[str]:
        rows = self._q("SELECT m.rolname FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid "
                       "JOIN pg_roles m ON m.oid = am.member WHERE g.rolname = %s AND am.admin_option "
                       "UNION SELECT rolname FROM pg_roles WHERE rolcanlogin AND (rolsuper OR rolcreaterole)",
                       (role,))
        return sorted(r[0] for r in rows)

    def user_hosts(self, user: str) -> list[str]:
        return [""] if self._q("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)) else []
