"""Reading the accounts side of the server: roles, users, who holds what, and the drift of each
from its definition (``accounts:`` in the config). Needs an admin's account (the server's own
account tables); the SQL that reads them is the backend's."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from djtui.config import AccountSettings
from djtui.domain import grants as g
from djtui.domain.dialects import GrantDialect
from djtui.errors import UserError
from djtui.services.accounts.perobject import PerObjectAccounts
from djtui.services.accounts.state import AccountState, RoleState, ServerAccounts
from djtui.services.backends import AccountCatalog
from djtui.services.database import Database

# no privilege on the account tables, or no such grant (MySQL); insufficient privilege (PostgreSQL)
_DENIED = (1142, 1044, 1227, 1045, 1141, "42501")


class AccountsReader(PerObjectAccounts):
    """Reads users, roles and grants for one server and says what the definition expects."""

    def __init__(self, db: Database, settings: AccountSettings):
        self.db = db
        self.settings = settings

    @contextmanager
    def _readable(self) -> Iterator[None]:
        """A refusal to read the account tables becomes a clear error: run it as the lab's admin."""
        try:
            yield
        except self.db.backend.driver_error as exc:
            code = getattr(exc, "pgcode", None) or (exc.args[0] if exc.args else None)
            if code in _DENIED:
                msg = exc.args[1] if len(exc.args) > 1 else str(exc).strip()
                raise UserError(f"the account {self.db.settings.user} may not read users and grants: {msg}",
                                hint="run account commands as the lab's database admin") from None
            raise

    def dialect(self) -> GrantDialect:
        with self._readable():
            d = self.db.backend.grant_dialect()
        if not d.supports_roles():
            raise UserError(d.notes()[0], hint="upgrade the server; roles are what djtui's accounts are built on")
        return d

    def _show_grants(self, grantee_sql: str) -> list[str]:
        with self._readable():
            return self.db.backend.show_grants(grantee_sql)

    def read(self) -> ServerAccounts:
        """Blocking: users, roles, holders, default roles and grants, with drift from what is expected."""
        d = self.dialect()
        if d.per_object:
            with self._readable():
                return self._read_objects(d)  # type: ignore[arg-type]
        info = self.db.server_info()
        with self._readable():
            cat = self.db.backend.account_catalog(frozenset(g.ROLE_OF_KIND.values()))
        notes = list(d.notes())
        if d.partial_revokes:
            notes.append("partial_revokes is ON: MySQL then reads % and _ in grant patterns literally, "
                         "so prefix grants such as `common\\_%` match nothing; with read_scope: all djtui "
                         "grants SELECT ON *.* and partially revokes it on `mysql`; prefix grants need "
                         "partial_revokes OFF")
        roles, modules, warnings = self._role_states(d, cat, info.current_user)
        role_grants = {r.name: r.grants for r in roles}
        with self._readable():
            locked = self.db.backend.locked_accounts()
        users = tuple(self._user_state(d, cat, user, host, role_grants, (user, host) in locked)
                      for user, host in sorted(cat.accounts))
        return ServerAccounts(info.flavor, info.version, tuple(notes), roles, users, modules,
                              tuple(warnings), cat.account_admins, info.current_user)

    def _role_states(self, d: GrantDialect, cat: AccountCatalog, me: str
                     ) -> tuple[tuple[RoleState, ...], tuple[str, ...], list[str]]:
        """Each djtui role with its grants and drift; the shared modules; the roles' risks."""
        flavor = d.flavor
        grants: dict[str, dict[str, frozenset[str]]] = {}
        revoked: dict[str, frozenset[str]] = {}
        privs: dict[str, frozenset[g.Priv]] = {}
        for name in g.ROLE_OF_KIND.values():
            if name in cat.roles:
                lines = self._show_grants(d.role(name))
                parsed = g.parse_grants(lines)
                privs[name] = g.held_privs(lines, flavor, (name, None if d.is_mariadb else "%"))
                grants[name] = g.effective(parsed.db, flavor)
                revoked[name] = frozenset(x.pattern for x in parsed.revoked if "SELECT" in x.privileges)
        modules = self._modules(grants.get("dj_user", {}))
        warnings: list[str] = []
        states = []
        for kind, name in g.ROLE_OF_KIND.items():
            if name not in cat.roles:
                states.append(RoleState(name, False, drift=("role does not exist (run `djtui roles init`)",)))
                continue
            want = g.expected_privs(self.expected_role_grants(kind, modules, d), flavor)
            extra, missing = g.diff_privs(want, privs[name])
            nested = sorted(r + (" WITH ADMIN OPTION" if adm else "")
                            for r, adm in cat.held.get((name, "" if d.is_mariadb else "%"), ()))
            other = tuple(f"- partial revoke of SELECT ON `{s}`.*"
                          for s in self._expected_revokes(kind, d) if s not in revoked[name])
            diff = g.GrantDiff(name, extra, missing, tuple(nested), (), other, want, privs[name])
            holders = tuple(sorted(f"{u}@{h}" for (u, h), rs in cat.held.items() for r, adm in rs
                                   if r == name and not adm))
            admins = tuple(sorted(f"{u}@{h}" for (u, h), rs in cat.held.items() for r, adm in rs
                                  if r == name and adm and h))  # h == "": a role holding it
            system = tuple(g.reads_system_schema(grants[name], revoked[name])) if kind != "admin" else ()
            if system:
                warnings.append(self._exposure_text(name, system))
            if d.is_mariadb and not admins:
                warnings.append(f"nobody holds ADMIN OPTION on {name}: no account may grant it to new users; "
                                + g.role_admin_advice(d, name, me, ()))
            states.append(RoleState(name, True, grants[name], holders, tuple(diff.lines(flavor)), admins,
                                    revoked[name], system, diff))
        return tuple(states), modules, warnings

    def _user_state(self, d: GrantDialect, cat: AccountCatalog, user: str, host: str,
                    role_grants: dict[str, dict[str, frozenset[str]]], locked: bool) -> AccountState:
        """One login account: its djtui role (the default role it was given), grants and drift."""
        flavor = d.flavor
        held = cat.held.get((user, host), ())
        roles = tuple(sorted(r for r, adm in held if not adm))
        kinds = sorted((g.KIND_OF_ROLE[r] for r in roles if r in g.KIND_OF_ROLE), key=g.RANK.__getitem__)
        dflt = tuple(cat.defaults.get((user, host), ()))
        # the role djtui gave (the default role) is the definition; a role granted by hand beside it is drift
        chosen = [g.KIND_OF_ROLE[r] for r in dflt if r in g.KIND_OF_ROLE and r in roles]
        kind = chosen[0] if len(chosen) == 1 else (kinds[-1] if kinds else None)
        lines = self._show_grants(d.account(user, host))
        own = g.effective(g.parse_grants(lines).db, flavor)
        active = kind is not None and (cat.activate_all or g.ROLE_OF_KIND[kind] in dflt)
        eff = dict(own)
        for r in roles:
            if kind is not None and (r in dflt or cat.activate_all):
                for pattern, privs in role_grants.get(r, {}).items():
                    eff[pattern] = eff.get(pattern, frozenset()) | privs
        diff = None
        if kind is not None:
            role = g.ROLE_OF_KIND[kind]
            want = g.expected_privs(g.user_own_grants(kind, user, host), flavor)
            have = g.held_privs(lines, flavor, (user, host))
            extra, missing = g.diff_privs(want, have)
            extra_roles = [r for r in roles if r != role]
            extra_roles += [f"{r} WITH ADMIN OPTION" for r, adm in held if adm]
            other = () if active else (f"- DEFAULT ROLE {role} (the role is inactive at login)",)
            diff = g.GrantDiff(f"{user}@{host}", extra, missing, tuple(sorted(extra_roles)), (), other, want, have)
        return AccountState(user, host, kind, roles, dflt, active, own, eff,
                            tuple(diff.lines(flavor)) if diff else (), diff, locked)

    def _exposure_text(self, role: str, system: Sequence[str]) -> str:
        compat = " (accounts.read_scope: all, Spyglass's `%`)" if self.settings.read_scope == "all" else ""
        return (f"{role} can SELECT from {', '.join(f'`{s}`' for s in system)}: every holder can read the account "
                f"tables and password hashes{compat}; set accounts.read_scope: lab and run `djtui roles init`")

    def role_warnings(self) -> list[str]:
        """Blocking, cheap (three SHOW GRANTS): the non-admin roles that can read `mysql`, for `djtui doctor`.

        Raises UserError when this account may not read the roles' grants (not the lab's admin).
        """
        d = self.dialect()
        out: list[str] = []
        if d.per_object:
            return out  # no PostgreSQL schema holds password hashes: pg_authid is for superusers only
        for kind, name in g.ROLE_OF_KIND.items():
            if kind == "admin":
                continue
            try:
                lines = self.db.backend.show_grants(d.role(name))
            except self.db.backend.driver_error as exc:
                if exc.args and exc.args[0] in (1141, 1133, 1396):  # the role does not exist
                    continue
                raise UserError(f"the account {self.db.settings.user} may not read the roles' grants",
                                hint="run doctor as the lab's database admin to check the roles") from None
            parsed = g.parse_grants(lines)
            revoked = [x.pattern for x in parsed.revoked if "SELECT" in x.privileges]
            system = g.reads_system_schema(g.effective(parsed.db, d.flavor), revoked)
            if system:
                out.append(self._exposure_text(name, system))
        return out

    async def aread(self) -> ServerAccounts:
        return await self.db.run(self.read)

    def _modules(self, user_role: dict[str, frozenset[str]]) -> tuple[str, ...]:
        """Configured shared prefixes plus the prefixes dj_user holds ALL on (modules added later by add-module).

        Only a whole ALL (CREATE may be left out) counts: a hand-made `INSERT, DELETE` on a prefix
        is drift, not a module.
        """
        found = list(self.settings.shared_prefixes)
        whole = g.DB_ALL[self.db.server_info().flavor] - {"CREATE"}
        for pattern, privs in user_role.items():
            if pattern.endswith("\\_%") and privs >= whole:
                prefix = pattern[:-3].replace("\\_", "_").replace("\\%", "%").replace("\\\\", "\\")
                if prefix not in found:
                    found.append(prefix)
        return tuple(found)

    def read_patterns(self, modules: Iterable[str] | None = None, d: GrantDialect | None = None) -> tuple[str, ...]:
        mods = tuple(self.settings.shared_prefixes if modules is None else modules)
        return g.read_patterns(self.settings.read_scope, mods, partial_revokes=bool(d and d.partial_revokes))

    def expected_role_grants(self, kind: str, modules: Iterable[str] | None = None,
                             d: GrantDialect | None = None) -> list[g.ExpectedGrant]:
        mods = tuple(self.settings.shared_prefixes if modules is None else modules)
        return g.role_grants(kind, mods, user_can_create=self.settings.user_can_create,
                             read=self.read_patterns(mods, d))

    def _expected_revokes(self, kind: str, d: GrantDialect) -> tuple[str, ...]:
        if kind == "admin":
            return ()
        return g.read_revokes(self.settings.read_scope, partial_revokes=d.partial_revokes)

    def schemas_losing_read(self, before: dict[str, frozenset[str]], after: Sequence[str]) -> list[str]:
        """Schemas a role reads now (``before``) and would not with the ``after`` read patterns."""
        out = []
        for n in self.db.backend.schemas():
            if n.lower() in g.SYSTEM_SCHEMAS:
                continue
            if "SELECT" in g.privileges_on(n, before) and not any(g.like_match(p, n) for p in after if p != "*"):
                out.append(n)
        return sorted(out)
