"""Accounts on a server whose privileges sit on objects, not on schema patterns (PostgreSQL).

The scheme is the same as on MySQL (``djtui.domain.grants``: four roles, a user's own prefix, the
shared modules, the read scope); ``djtui.domain.dialects.postgres_grants`` expands it over the
schemas and tables that exist, the backend reads what the catalogs hold, and the diff is the same
``GrantDiff`` (``+`` held beyond the definition, ``-`` missing).

Users' own schemas: a collab, user or admin gets CREATE on the database, so DataJoint's
``dj.Schema('alice_x')`` makes the schema itself and owns it (an owner holds every right on it), as
on MySQL where ALL on ``alice\\_%`` lets alice create it. The alternative, an admin making every
schema on request, breaks DataJoint's ``create_schema`` workflow. CREATE on the database cannot say
which names, so ``roles init`` (as a superuser) installs the schema guard (``postgres_guard``): an
event trigger that refuses names outside the prefix and grants new module schemas to dj_user;
without it, a schema a user made outside its prefix is that user's drift. Default privileges
(``ALTER DEFAULT PRIVILEGES FOR ROLE alice``) give the roles what alice creates later, so every user
who creates tables is a "creator": the members of dj_collab, dj_user and dj_admin, and the accounts
that may create roles (superusers, CREATEROLE), which make schemas for the lab.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from djtui.domain import grants as g
from djtui.domain.dialects import postgres_grants as pg
from djtui.domain.dialects import postgres_guard as guard
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.accounts.state import AccountState, RoleState, ServerAccounts

CREATOR_ROLES = ("dj_collab", "dj_user", "dj_admin")  # their members create schemas and tables


def host_of(host: str | None) -> str:
    """PostgreSQL accounts have no host: none or ``%`` (any) is accepted, anything else is refused."""
    if host in (None, "", "%"):
        return ""
    raise UserError(f"PostgreSQL accounts have no host: {host!r} cannot be given", where="--host",
                    hint="leave --host out; where a role may log in from is pg_hba.conf's business")


def _keyed(levels: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    return {g.escape_like(s): v for s, v in levels.items()}


def _merge(*maps: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for m in maps:
        for k, v in m.items():
            out[k] = out.get(k, frozenset()) | v
    return out


class PerObjectAccounts:
    """The PostgreSQL side of ``AccountsService`` (mixed in; the MySQL path lives in read/plan/admin)."""

    db: Any
    settings: Any

    # -- reading ---------------------------------------------------------------------------------

    def _role_levels(self, name: str, privs: frozenset[pg.Priv], objs: pg.PgObjects,
                     modules: Iterable[str]) -> dict[str, frozenset[str]]:
        """Per schema (and per pattern for the grant matrix: later schemas, shared modules)."""
        out = _keyed(pg.schema_levels(privs, objs))
        later = {p.name for p in privs if p.on.startswith("FUTURE TABLES OF") and " IN SCHEMA " not in p.on}
        if later:
            out[g.ANY_SCHEMA] = frozenset(later)
        for m in modules:
            schemas = pg.with_prefix(objs.schemas, (m,))
            if schemas:
                common = frozenset.intersection(*(out.get(g.escape_like(s), frozenset()) for s in schemas))
                if common:
                    out[g.prefix_pattern(m)] = common
        return out

    def _po_modules(self, user_privs: frozenset[pg.Priv], objs: pg.PgObjects) -> tuple[str, ...]:
        """Configured shared prefixes, the modules the schema guard grants on (``roles add-module``), and the
        prefixes of schemas dj_user may create tables in."""
        found = list(self.settings.shared_prefixes)
        found += [m for m in guard.guard_modules(objs.guard) if m not in found]
        for s in sorted(objs.schemas):
            if "_" in s and pg.Priv(pg.on_schema(s), "CREATE") in user_privs:
                prefix = s.split("_", 1)[0]
                if prefix and prefix not in found:
                    found.append(prefix)
        return tuple(found)

    def _role_want(self, kind: str, objs: pg.PgObjects, modules: Iterable[str]) -> frozenset[pg.Priv]:
        return pg.role_expected(kind, objs, scope=self.settings.read_scope, modules=tuple(modules),
                                user_can_create=self.settings.user_can_create)

    def _guard_body(self, modules: Iterable[str]) -> str:
        scope = self.settings.read_scope
        reads = None if isinstance(scope, str) else (*scope, *modules)
        return guard.guard_body(tuple(modules), user_can_create=self.settings.user_can_create, read_prefixes=reads)

    def _guard_fix(self, objs: pg.PgObjects, modules: Iterable[str]) -> list[g.Statement]:
        """The statements that install or refresh the schema guard ([] when current, or nobody here may)."""
        body = self._guard_body(modules)
        if (objs.guard == body and objs.guard_on) or not objs.superuser:
            return []
        return [g.Statement(sql, why) for sql, why in guard.guard_statements(
            body, function_exists=objs.guard is not None, trigger_on=objs.guard_on)]

    def _guard_drift(self, objs: pg.PgObjects, modules: Iterable[str]) -> tuple[list[str], list[str]]:
        """Drift lines (for dj_user) and warnings about the schema guard."""
        body = self._guard_body(modules)
        if objs.guard == body and objs.guard_on:
            return [], []
        what = ("- SCHEMA GUARD (event trigger djtui_schema_guard: names and grants new schemas)"
                if objs.guard is None or not objs.guard_on else
                "- SCHEMA GUARD up to date with the modules (its list differs)")
        if objs.superuser:
            return [what], []
        return [], [f"no current schema guard ({what[2:]}): a superuser's `djtui roles init` installs it; until "
                    "then users may name schemas freely and a new module schema needs `users fix`"]

    def _po_diff(self, grantee: str, want: frozenset[pg.Priv], have: frozenset[pg.Priv], objs: pg.PgObjects,
                 extra_roles: Iterable[str] = (), other: Iterable[str] = ()) -> g.GrantDiff:
        """Expected against actual per privilege, then folded (``ALL TABLES IN SCHEMA``) for reading."""
        return g.GrantDiff(grantee, pg.fold(have - want, objs), pg.fold(want - have, objs),  # type: ignore[arg-type]
                           tuple(sorted(extra_roles)), (), tuple(other), pg.fold(want, objs),  # type: ignore[arg-type]
                           pg.fold(have, objs))  # type: ignore[arg-type]

    def _read_objects(self, d: pg.PostgresGrants) -> ServerAccounts:
        info = self.db.server_info()
        be = self.db.backend
        ours = frozenset(g.ROLE_OF_KIND.values())
        cat = be.account_catalog(ours)
        accounts = set(cat.accounts)
        creators = [u for (u, h), rs in cat.held.items()
                    if (u, h) in accounts and any(r in CREATOR_ROLES and not adm for r, adm in rs)]
        creators += cat.account_admins  # superusers and CREATEROLE accounts make schemas for the lab too
        objs = be.account_objects(creators)
        privs = be.object_privileges([*sorted(cat.roles), *(u for u, _h in cat.accounts)])
        modules = self._po_modules(privs.get("dj_user", frozenset()), objs)
        guard_lines, warnings = self._guard_drift(objs, modules) if "dj_user" in cat.roles else ([], [])
        roles: list[RoleState] = []
        for kind, name in g.ROLE_OF_KIND.items():
            if name not in cat.roles:
                roles.append(RoleState(name, False, drift=("role does not exist (run `djtui roles init`)",)))
                continue
            nested = [r + (" WITH ADMIN OPTION" if adm else "") for r, adm in cat.held.get((name, ""), ())]
            other = guard_lines if kind == "user" else []
            diff = self._po_diff(name, self._role_want(kind, objs, modules), privs[name], objs, nested, other)
            holders = tuple(sorted(u for (u, _h), rs in cat.held.items() for r, adm in rs
                                   if r == name and not adm and (u, "") in accounts))
            admins = tuple(sorted({u for (u, _h), rs in cat.held.items() for r, adm in rs if r == name and adm}
                                  | set(cat.account_admins)))
            roles.append(RoleState(name, True, self._role_levels(name, privs[name], objs, modules), holders,
                                   tuple(diff.lines(d.flavor)), admins, frozenset(), (), diff))
        locked = be.locked_accounts()
        levels = {r.name: r.grants for r in roles}
        users = tuple(self._po_user(d, cat, u, objs, privs.get(u, frozenset()), levels, (u, "") in locked, modules)
                      for u, _h in sorted(cat.accounts))
        notes = [*d.notes(), "PostgreSQL: only a table's owner may ALTER or DROP it, so dj_user writes rows in the "
                 "shared modules' tables but drops only the tables it created"]
        return ServerAccounts(info.flavor, info.version, tuple(notes), tuple(roles), users, modules, tuple(warnings),
                              cat.account_admins, info.current_user, objs, privs)

    def _po_user(self, d: pg.PostgresGrants, cat: Any, user: str, objs: pg.PgObjects, have: frozenset[pg.Priv],
                 role_levels: dict[str, dict[str, frozenset[str]]], locked: bool,
                 modules: tuple[str, ...] = ()) -> AccountState:
        held = cat.held.get((user, ""), ())
        roles = tuple(sorted(r for r, adm in held if not adm))
        kinds = sorted((g.KIND_OF_ROLE[r] for r in roles if r in g.KIND_OF_ROLE), key=g.RANK.__getitem__)
        kind = kinds[-1] if kinds else None
        dflt = tuple(cat.defaults.get((user, ""), ()))
        active = kind is not None and bool(dflt)
        own = _keyed(pg.schema_levels(have, objs, owner=user))
        if pg.Priv(pg.on_database(objs.database), "CREATE") in have:
            own[g.prefix_pattern(user)] = frozenset(pg.SCHEMA_PRIVS + pg.TABLE_PRIVS)
        eff = _merge(own, *(role_levels.get(r, {}) for r in (dflt if dflt else ())))
        diff = None
        if kind is not None:
            role = g.ROLE_OF_KIND[kind]
            extra_roles = [r for r in roles if r != role] + [f"{r} WITH ADMIN OPTION" for r, adm in held if adm]
            other = [] if active else [f"- INHERIT (the privileges of {role} do not apply at login)"]
            other += [f"+ OWNS SCHEMA {pg.ident(s)} (outside {user}_...; rename it or give it to an admin "
                      f"by hand: ALTER SCHEMA ... OWNER TO)" for s in self._po_strays(kind, user, objs, modules)]
            diff = self._po_diff(user, pg.user_expected(kind, user, objs), have, objs, extra_roles, other)
        return AccountState(user, "", kind, roles, dflt, active, own, eff,
                            tuple(diff.lines(d.flavor)) if diff else (), diff, locked)

    def _po_strays(self, kind: str, user: str, objs: pg.PgObjects, modules: tuple[str, ...]) -> list[str]:
        """Schemas ``user`` made outside what its role may create (CREATE on the database cannot say which)."""
        if kind == "admin":
            return []
        allowed = [user, *(modules if kind == "user" and self.settings.user_can_create else ())]
        mine = set(pg.with_prefix(objs.schemas, allowed))
        return sorted(s for s, owner in objs.schemas.items() if owner == user and s not in mine)

    # -- planning --------------------------------------------------------------------------------

    def _po_role_fix(self, kind: str, rs: RoleState, state: ServerAccounts
                     ) -> tuple[list[g.Statement], list[str], g.GrantDiff]:
        objs = state.objects
        have = state.privileges.get(rs.name, frozenset())
        nested = rs.diff.extra_roles if rs.diff is not None else ()
        other = self._guard_drift(objs, state.modules)[0] if kind == "user" else []
        diff = self._po_diff(rs.name, self._role_want(kind, objs, state.modules), have, objs, nested, other)
        stmts = [g.Statement(sql, why) for sql, why in pg.fix_statements(
            rs.name, (), diff.missing, diff.extra_roles, diff.extra)]  # type: ignore[arg-type]
        if kind == "user":
            stmts += self._guard_fix(objs, state.modules)
        return stmts, diff.lines(state.flavor), diff

    def _po_user_fix(self, d: pg.PostgresGrants, u: AccountState) -> list[g.Statement]:
        assert u.diff is not None
        stmts = [g.Statement(sql, why) for sql, why in pg.fix_statements(
            u.user, (), u.diff.missing, u.diff.extra_roles, u.diff.extra)]  # type: ignore[arg-type]
        if not u.default_active:
            stmts.append(g.Statement(d.set_default_role("", u.user), "so the role's privileges apply at login"))
        return stmts

    def _future_for(self, state: ServerAccounts, user: str, creates: bool) -> list[g.Statement]:
        """What the roles get on what ``user`` creates later (``creates``), or lose (a guest creates nothing)."""
        objs = replace(state.objects, creators=(user,))
        out: list[g.Statement] = []
        for kind, name in g.ROLE_OF_KIND.items():
            if not state.role(name).exists:
                continue
            want = frozenset(p for p in self._role_want(kind, objs, state.modules) if p.on.startswith("FUTURE "))
            mine = f"OF {pg.ident(user)}"
            have = frozenset(p for p in state.privileges.get(name, frozenset())
                             if p.on.startswith("FUTURE ") and mine in p.on)
            if not creates:
                want = frozenset()
            for sql, _why in pg.fix_statements(name, (), want - have, (), have - want):
                out.append(g.Statement(sql, f"{name}: what {user} creates later"))
        return out

    def _po_add_user(self, d: pg.PostgresGrants, name: str, kind: str, pw: str, state: ServerAccounts
                     ) -> tuple[list[g.Statement], list[str]]:
        role = g.ROLE_OF_KIND[kind]
        days = self.settings.password_expiry_days
        until = ""
        if days:
            until = (datetime.now(UTC) + timedelta(days=int(days))).strftime("%Y-%m-%d %H:%M:%S+00")
        ident = pg.ident(name)
        verifier = d.password_parameter(pw)
        commandlog.add_secret(verifier)
        stmts = [g.Statement(d.create_user(name, "", days, valid_until=until), "the account", password=verifier,
                             undo=f"DROP OWNED BY {ident}; DROP ROLE {ident}"),
                 g.Statement(d.grant_role(role, name), f"the {kind} role")]
        own = pg.fold(pg.user_expected(kind, name, state.objects), state.objects)
        stmts += [g.Statement(sql, "the user's own schemas")
                  for sql, _why in pg.fix_statements(name, (), own, (), ())]
        stmts += self._future_for(state, name, kind != "guest")
        diff = [f"{name}: missing account", f"{name}: will hold {role} (inherited at login)"]
        diff += [f"{name}: missing {p.name} ON {p.on}" for p in sorted(own)]  # type: ignore[type-var]
        return stmts, diff

    def _po_set_role(self, d: pg.PostgresGrants, u: AccountState, kind: str, state: ServerAccounts
                     ) -> list[g.Statement]:
        role = g.ROLE_OF_KIND[kind]
        stmts = [g.Statement(d.revoke_role(old, u.user), f"{old} is the old role")
                 for old in u.roles if old in g.KIND_OF_ROLE and old != role]
        if role not in u.roles:
            stmts.append(g.Statement(d.grant_role(role, u.user), f"the {kind} role"))
        if not u.default_active:
            stmts.append(g.Statement(d.set_default_role(role, u.user), "so the role's privileges apply at login"))
        objs = state.objects
        have = state.privileges.get(u.user, frozenset())
        want = pg.user_expected(kind, u.user, objs)
        old_want = pg.user_expected(u.kind, u.user, objs) if u.kind else frozenset()
        # only what the role change moves: the user's own-prefix grants; other drift is `users fix`'s
        gone = pg.fold((old_want - want) & have, objs)
        new = pg.fold(want - have, objs)
        stmts += [g.Statement(sql, "the user's own schemas")
                  for sql, _w in pg.fix_statements(u.user, (), new, (), gone)]
        stmts += self._future_for(state, u.user, kind != "guest")
        return stmts

    def _po_add_module(self, name: str, state: ServerAccounts) -> tuple[list[g.Statement], list[str], list[str]]:
        objs = state.objects
        schemas = pg.with_prefix(objs.schemas, (name,))
        modules = (*state.modules, *(() if name in state.modules else (name,)))
        if not schemas:
            fix = self._guard_fix(objs, modules)
            if fix or (objs.guard_on and name in guard.guard_modules(objs.guard)):
                return fix, [], [f"no schema {name}_... exists yet: the schema guard grants dj_user on each one "
                                 "when it is made"]
            return [], [], [f"no schema {name}_... exists yet: PostgreSQL grants on schemas, not on name patterns; "
                            f"add {name!r} to accounts.shared_prefixes and run `djtui roles init` once one exists"]
        quoted = [pg.ident(s) for s in schemas]
        want = frozenset(p for p in self._role_want("user", objs, (name,)) if any(q in p.on for q in quoted))
        have = state.privileges.get("dj_user", frozenset())
        missing = pg.fold(want - have, objs)
        who = pg.ident("dj_user")
        stmts = [g.Statement(pg.grant_sql(on, ", ".join(names), who), f"dj_user writes in the {name} module",
                             undo=pg.grant_sql(on, ", ".join(names), who, revoke=True))
                 for on, names in pg.grouped(missing)]
        stmts += self._guard_fix(objs, modules)
        return stmts, [f"dj_user: missing {p.name} ON {p.on}" for p in sorted(missing)], []  # type: ignore[type-var]
