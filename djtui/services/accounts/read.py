"""Users, roles and grants on the live server: read them, plan changes, apply plans.

Reading needs SELECT on the ``mysql`` schema (an admin's account). Every
change is a ``Plan`` first; ``apply`` runs it statement by statement on a
dedicated connection, with passwords sent as parameters and registered as
secrets so no log or screen shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import pymysql

from djtui.config import AccountSettings
from djtui.domain import grants as g
from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog
from djtui.services.audit import AuditLog, db_user_of
from djtui.services.database import Database
from djtui.services.locks import exclusive
from djtui.services.testhook import pause_between_items


@dataclass(frozen=True)
class RoleState:
    name: str
    exists: bool
    grants: dict[str, frozenset[str]] = field(default_factory=dict)
    holders: tuple[str, ...] = ()
    drift: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()  # accounts that may grant the role (ADMIN OPTION)
    revoked: frozenset[str] = frozenset()  # schemas SELECT is partially revoked on (MySQL partial_revokes)
    reads_system: tuple[str, ...] = ()  # system schemas (`mysql`, `sys`) the role can SELECT from
    diff: g.GrantDiff | None = None  # expected against actual, privilege by privilege


@dataclass(frozen=True)
class AccountState:
    user: str
    host: str
    kind: str | None  # guest/collab/user/admin, or None for accounts djtui does not manage
    roles: tuple[str, ...]
    default_roles: tuple[str, ...]
    default_active: bool
    own: dict[str, frozenset[str]]
    effective: dict[str, frozenset[str]]
    drift: tuple[str, ...] = ()
    diff: g.GrantDiff | None = None  # expected against actual (None: not managed by djtui)
    locked: bool = False  # ACCOUNT LOCK: nobody can log in as it

    @property
    def account(self) -> str:
        return f"{self.user}@{self.host}"

    @property
    def role(self) -> str | None:
        return g.ROLE_OF_KIND[self.kind] if self.kind else None

    def level_on(self, schema: str) -> str:
        return g.level(g.privileges_on(schema, self.effective))


@dataclass(frozen=True)
class ServerAccounts:
    """The accounts side of the server at one moment."""

    flavor: str
    version: str
    notes: tuple[str, ...]
    roles: tuple[RoleState, ...]
    users: tuple[AccountState, ...]
    modules: tuple[str, ...]  # shared prefixes dj_user holds: configured ones plus modules added since
    warnings: tuple[str, ...] = ()  # risks that are not drift: roles that read `mysql`, roles nobody may grant
    account_admins: tuple[str, ...] = ()  # accounts with global CREATE USER and GRANT OPTION
    current_user: str = ""

    @property
    def drift(self) -> list[str]:
        out = [f"role {r.name}: {d}" for r in self.roles for d in r.drift]
        out += [f"user {u.account}: {d}" for u in self.users for d in u.drift]
        return out

    def role(self, name: str) -> RoleState:
        return next(r for r in self.roles if r.name == name)

    def find(self, user: str) -> list[AccountState]:
        return [u for u in self.users if u.user == user]

    def to_json(self) -> dict:
        return {
            "server": f"{self.flavor} {self.version}", "notes": list(self.notes), "modules": list(self.modules),
            "warnings": list(self.warnings),
            "roles": [{"name": r.name, "exists": r.exists, "holders": list(r.holders), "drift": list(r.drift),
                       "admins": list(r.admins), "reads_system_schemas": list(r.reads_system),
                       "grants": {p: sorted(v) for p, v in r.grants.items()}} for r in self.roles],
            "users": [{"user": u.user, "host": u.host, "role": u.role, "roles": list(u.roles),
                       "default_roles": list(u.default_roles), "default_role_active": u.default_active,
                       "locked": u.locked,
                       "drift": list(u.drift), "grants": {p: sorted(v) for p, v in u.own.items()}}
                      for u in self.users],
        }


class AccountsService:
    """Read, plan and apply account changes for one server, following ``accounts:`` in the config."""

    def __init__(self, db: Database, settings: AccountSettings):
        self.db = db
        self.settings = settings

    # -- reading ------------------------------------------------------------

    def dialect(self) -> g.Dialect:
        info = self.db.server_info()
        d = g.Dialect(info.flavor, info.version_tuple)
        if not d.supports_roles():
            raise UserError(d.notes()[0], hint="upgrade the server; roles are what djtui's accounts are built on")
        if not d.is_mariadb and int(self._q("SELECT @@partial_revokes")[0][0]):
            d = replace(d, partial_revokes=True)
        return d

    def _q(self, sql: str, args: Sequence | None = None) -> list:
        try:
            return self.db.query(sql, args)
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in (1142, 1044, 1227, 1045, 1141):
                raise UserError(f"the account {self.db.settings.user} may not read users and grants: {exc.args[1]}",
                                hint="run account commands as the lab's database admin") from None
            raise

    def _show_grants(self, account_sql: str) -> list[str]:
        return [r[0] for r in self._q(f"SHOW GRANTS FOR {account_sql}")]

    def read(self) -> ServerAccounts:
        """Blocking: users, roles, holders, default roles and grants, with drift from what is expected."""
        d = self.dialect()
        info = self.db.server_info()
        flavor = info.flavor
        role_names = set(g.ROLE_OF_KIND.values())
        held: dict[tuple[str, str], list[tuple[str, bool]]] = {}  # (user, host) -> [(role, admin_option)]
        defaults: dict[tuple[str, str], list[str]] = {}
        activate_all = False
        extra_notes: list[str] = []
        if d.is_mariadb:
            accounts = [(u, h) for u, h, is_role in self._q("SELECT User, Host, is_role FROM mysql.user")
                        if is_role != "Y"]
            existing_roles = {u for u, _h, is_role in self._q("SELECT User, Host, is_role FROM mysql.user")
                              if is_role == "Y"}
            for user, host, role, admin in self._q("SELECT User, Host, Role, Admin_option FROM mysql.roles_mapping"):
                held.setdefault((user, host), []).append((role, admin == "Y"))
            for user, host, role in self._q("SELECT User, Host, default_role FROM mysql.user WHERE is_role='N'"):
                if role:
                    defaults[(user, host)] = [role]
            account_admins = tuple(sorted(f"{u}@{h}" for u, h in self._q(
                "SELECT User, Host FROM mysql.user WHERE is_role='N' AND Grant_priv='Y' AND Create_user_priv='Y'")))
        else:
            rows = self._q("SELECT User, Host FROM mysql.user")
            existing_roles = {u for u, h in rows if u in role_names and h == "%"}
            accounts = [(u, h) for u, h in rows if not (u in role_names and h == "%")]
            for fu, _fh, tu, th, adm in self._q(
                    "SELECT FROM_USER, FROM_HOST, TO_USER, TO_HOST, WITH_ADMIN_OPTION FROM mysql.role_edges"):
                held.setdefault((tu, th), []).append((fu, adm == "Y"))
            for u, h, r in self._q("SELECT USER, HOST, DEFAULT_ROLE_USER FROM mysql.default_roles"):
                defaults.setdefault((u, h), []).append(r)
            activate_all = bool(int(self._q("SELECT @@activate_all_roles_on_login")[0][0]))
            account_admins = ()  # MySQL: ROLE_ADMIN (in ALL PRIVILEGES) grants any role
            if d.partial_revokes:
                extra_notes.append("partial_revokes is ON: MySQL then reads % and _ in grant patterns literally, "
                                   "so prefix grants such as `common\\_%` match nothing; with read_scope: all djtui "
                                   "grants SELECT ON *.* and partially revokes it on `mysql`; prefix grants need "
                                   "partial_revokes OFF")

        role_states: dict[str, RoleState] = {}
        role_grants: dict[str, dict[str, frozenset[str]]] = {}
        role_revoked: dict[str, frozenset[str]] = {}
        role_privs: dict[str, frozenset[g.Priv]] = {}
        for name in g.ROLE_OF_KIND.values():
            if name not in existing_roles:
                role_states[name] = RoleState(name, False, drift=("role does not exist (run `djtui roles init`)",))
                role_grants[name] = {}
                continue
            lines = self._show_grants(d.role(name))
            parsed = g.parse_grants(lines)
            role_privs[name] = g.held_privs(lines, flavor, (name, None if d.is_mariadb else "%"))
            role_grants[name] = g.effective(parsed.db, flavor)
            role_revoked[name] = frozenset(x.pattern for x in parsed.revoked if "SELECT" in x.privileges)
        modules = self._modules(role_grants.get("dj_user", {}))
        warnings: list[str] = []
        for kind, name in g.ROLE_OF_KIND.items():
            if name in role_states:
                continue
            expected = self.expected_role_grants(kind, modules, d)
            want = g.expected_privs(expected, flavor)
            extra, missing = g.diff_privs(want, role_privs[name])
            nested = sorted(r + (" WITH ADMIN OPTION" if adm else "")
                            for r, adm in held.get((name, "" if d.is_mariadb else "%"), []))
            other = tuple(f"- partial revoke of SELECT ON `{s}`.*"
                          for s in self._expected_revokes(kind, d) if s not in role_revoked[name])
            diff = g.GrantDiff(name, extra, missing, tuple(nested), (), other, want, role_privs[name])
            drift_text = diff.lines(flavor)
            holders = tuple(sorted(f"{u}@{h}" for (u, h), rs in held.items() for r, adm in rs
                                   if r == name and not adm))
            admins = tuple(sorted(f"{u}@{h}" for (u, h), rs in held.items() for r, adm in rs
                                  if r == name and adm and h))  # h == "": a role holding it
            system = tuple(g.reads_system_schema(role_grants[name], role_revoked[name])) if kind != "admin" else ()
            if system:
                warnings.append(self._exposure_text(name, system))
            if d.is_mariadb and not admins:
                warnings.append(f"nobody holds ADMIN OPTION on {name}: no account may grant it to new users; "
                                + g.role_admin_advice(d, name, info.current_user, ()))
            role_states[name] = RoleState(name, True, role_grants[name], holders, tuple(drift_text), admins,
                                          role_revoked[name], system, diff)

        locked = self._locked(d)
        users = []
        for user, host in sorted(accounts):
            roles = tuple(sorted(r for r, adm in held.get((user, host), []) if not adm))
            kinds = sorted((g.KIND_OF_ROLE[r] for r in roles if r in g.KIND_OF_ROLE), key=g.RANK.__getitem__)
            dflt = tuple(defaults.get((user, host), []))
            # the role djtui gave (the default role) is the definition; a role granted by hand beside it is drift
            chosen = [g.KIND_OF_ROLE[r] for r in dflt if r in g.KIND_OF_ROLE and r in roles]
            kind = chosen[0] if len(chosen) == 1 else (kinds[-1] if kinds else None)
            lines = self._show_grants(d.account(user, host))
            parsed = g.parse_grants(lines)
            own = g.effective(parsed.db, flavor)
            active = kind is not None and (activate_all or g.ROLE_OF_KIND[kind] in dflt)
            eff = dict(own)
            for r in roles:
                if kind is not None and (r in dflt or activate_all):
                    for pattern, privs in role_grants.get(r, {}).items():
                        eff[pattern] = eff.get(pattern, frozenset()) | privs
            diff = None
            if kind is not None:
                role = g.ROLE_OF_KIND[kind]
                want = g.expected_privs(g.user_own_grants(kind, user, host), flavor)
                have = g.held_privs(lines, flavor, (user, host))
                extra, missing = g.diff_privs(want, have)
                extra_roles = [r for r in roles if r != role]
                extra_roles += [f"{r} WITH ADMIN OPTION" for r, adm in held.get((user, host), []) if adm]
                other = () if active else (f"- DEFAULT ROLE {role} (the role is inactive at login)",)
                diff = g.GrantDiff(f"{user}@{host}", extra, missing, tuple(sorted(extra_roles)), (), other,
                                   want, have)
            users.append(AccountState(user, host, kind, roles, dflt, active, own, eff,
                                      tuple(diff.lines(flavor)) if diff else (), diff, (user, host) in locked))
        return ServerAccounts(flavor, info.version, tuple(d.notes() + extra_notes),
                              tuple(role_states[n] for n in g.ROLE_OF_KIND.values()), tuple(users), modules,
                              tuple(warnings), account_admins, info.current_user)

    def _exposure_text(self, role: str, system: Sequence[str]) -> str:
        compat = " (accounts.read_scope: all, Spyglass's `%`)" if self.settings.read_scope == "all" else ""
        return (f"{role} can SELECT from {', '.join(f'`{s}`' for s in system)}: every holder can read the account "
                f"tables and password hashes{compat}; set accounts.read_scope: lab and run `djtui roles init`")

    def role_warnings(self) -> list[str]:
        """Blocking, cheap (three SHOW GRANTS): the non-admin roles that can read `mysql`, for `djtui doctor`.

        Raises UserError when this account may not read the roles' grants (not the lab's admin).
        """
        d = self.dialect()
        out = []
        for kind, name in g.ROLE_OF_KIND.items():
            if kind == "admin":
                continue
            try:
                lines = [r[0] for r in self.db.query(f"SHOW GRANTS FOR {d.role(name)}")]
            except pymysql.err.MySQLError as exc:
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

    def _locked(self, d: g.Dialect) -> set[tuple[str, str]]:
        try:
            return {(u, h) for u, h in self._q(d.locked_accounts_sql())}
        except pymysql.err.MySQLError:
            return set()  # an old server without account locking

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

    def read_patterns(self, modules: Iterable[str] | None = None, d: g.Dialect | None = None) -> tuple[str, ...]:
        mods = tuple(self.settings.shared_prefixes if modules is None else modules)
        return g.read_patterns(self.settings.read_scope, mods, partial_revokes=bool(d and d.partial_revokes))

    def expected_role_grants(self, kind: str, modules: Iterable[str] | None = None,
                             d: g.Dialect | None = None) -> list[g.ExpectedGrant]:
        mods = tuple(self.settings.shared_prefixes if modules is None else modules)
        return g.role_grants(kind, mods, user_can_create=self.settings.user_can_create,
                             read=self.read_patterns(mods, d))

    def _expected_revokes(self, kind: str, d: g.Dialect) -> tuple[str, ...]:
        if kind == "admin":
            return ()
        return g.read_revokes(self.settings.read_scope, partial_revokes=d.partial_revokes)

    def _role_fix(self, kind: str, rs: RoleState, state: ServerAccounts, d: g.Dialect
                  ) -> tuple[list[g.Statement], list[str], g.GrantDiff]:
        """The statements that bring role ``rs`` to its definition, the diff lines, and the diff."""
        expected = self.expected_role_grants(kind, state.modules, d)
        diff = rs.diff if rs.diff is not None else g.GrantDiff(
            rs.name, missing=g.expected_privs(expected, state.flavor))
        stmts = g.fix_privs_statements(d, d.role(rs.name), expected, diff)
        lines = [line for line in diff.lines(state.flavor) if not line.startswith("- partial revoke")]
        for schema in self._expected_revokes(kind, d):
            if schema not in rs.revoked:
                stmts.append(g.Statement(d.revoke("SELECT", schema, d.role(rs.name)),
                                         f"partial revoke: {rs.name} must not read `{schema}`"))
                lines.append(f"- partial revoke of SELECT ON `{schema}`.*")
        return stmts, lines, diff

    def schemas_losing_read(self, before: dict[str, frozenset[str]], after: Sequence[str]) -> list[str]:
        """Schemas a role reads now (``before``) and would not with the ``after`` read patterns."""
        names = [n for (n,) in self._q("SELECT schema_name FROM information_schema.schemata")]
        out = []
        for n in names:
            if n.lower() in ("information_schema", "performance_schema", *g.SYSTEM_SCHEMAS):
                continue
            if "SELECT" in g.privileges_on(n, before) and not any(g.like_match(p, n) for p in after if p != "*"):
                out.append(n)
        return sorted(out)

    # -- planning -----------------------------------------------------------

    def plan_roles_init(self, state: ServerAccounts | None = None) -> g.Plan:
        state = state or self.read()
        d = self.dialect()
        statements: list[g.Statement] = []
        diff: list[str] = []
        notes = list(state.notes)
        read = self.read_patterns(state.modules, d)
        admin_grants: list[g.Statement] = []
        for kind, name in g.ROLE_OF_KIND.items():
            rs = state.role(name)
            if not rs.exists:
                statements.append(g.Statement(d.create_role(name), f"{name} does not exist"))
                diff.append(f"{name}: missing role")
            stmts, lines, rdiff = self._role_fix(kind, rs, state, d)
            statements += stmts
            diff += [f"{name}: {line}" for line in lines]
            if kind != "admin" and rs.exists and any(p.name == "SELECT" for p in rdiff.extra):
                lost = self.schemas_losing_read(rs.grants, read)
                if lost:
                    notes.append(f"{name} will no longer read {len(lost)} schema(s) outside accounts.read_scope: "
                                 f"{', '.join(lost[:10])}{' ...' if len(lost) > 10 else ''}; add their prefixes "
                                 "to read_scope, or set read_scope: all to keep Spyglass's `%`")
            admin_grants += self._admin_option_statements(d, state, name, created=not rs.exists)
            if d.is_mariadb and rs.exists and state.current_user not in rs.admins:
                notes.append(f"{state.current_user} cannot grant {name}, so `users add` will fail for it: "
                             + g.role_admin_advice(d, name, state.current_user, rs.admins))
        if admin_grants:
            diff.append("accounts that create users but may not grant the roles: "
                        + ", ".join(sorted({st.why.split(' ')[0] for st in admin_grants})))
        statements += admin_grants
        if self.settings.read_scope == "all":
            notes.append("accounts.read_scope: all (Spyglass's `%`) covers the `mysql` schema too: every guest, "
                         "collab and user can read every account's password hash; read_scope: lab avoids it")
        return g.Plan("roles init: the four djtui roles", tuple(statements), tuple(diff), tuple(notes))

    def _admin_option_statements(self, d: g.Dialect, state: ServerAccounts, role: str, *,
                                 created: bool) -> list[g.Statement]:
        """MariaDB: every account that may create users also gets ADMIN OPTION on the role.

        Only holders of ADMIN OPTION may grant a MariaDB role, and CREATE ROLE gives it to the
        creator alone: drop that account and no other admin can run `users add`. It widens
        nothing: these accounts hold ALL PRIVILEGES already. Only a holder may hand it on, so
        the statements are planned when the account running them holds it (or creates the role).
        """
        if not d.is_mariadb:
            return []
        have = set(() if created else state.role(role).admins)
        me = state.current_user
        if not created and me not in have:
            return []
        out = []
        for acct in state.account_admins:
            if acct in have or (created and acct == me):
                continue
            user, _, host = acct.rpartition("@")
            out.append(g.Statement(d.grant_role(role, user, host, admin_option=True),
                                   f"{acct} may create users, so it may grant {role}"))
        return out

    def plan_add_module(self, name: str, state: ServerAccounts | None = None) -> g.Plan:
        g.validate_module_name(name)
        state = state or self.read()
        d = self.dialect()
        rs = state.role("dj_user")
        if not rs.exists:
            raise UserError("the role dj_user does not exist", hint="run `djtui roles init` first")
        pattern = g.prefix_pattern(name)
        privs = g.Privileges.all() if self.settings.user_can_create else g.Privileges.all(minus=["CREATE"])
        expected = [g.ExpectedGrant("dj_user", pattern, privs)]
        drift = g.diff_grants(expected, {pattern: rs.grants.get(pattern, frozenset())}, state.flavor)
        notes = () if name in self.settings.shared_prefixes else (
            f"add {name!r} to accounts.shared_prefixes in the config so checks expect it everywhere",)
        stmts = g.fix_statements(d, d.role("dj_user"), expected, drift)
        if not rs.grants.get(pattern):  # nothing there before: a failure half-way takes the new grant back
            stmts = [replace(st, undo=d.revoke("ALL PRIVILEGES", pattern, d.role("dj_user")))
                     if st.sql.startswith("GRANT ") else st for st in stmts]
        if not isinstance(self.settings.read_scope, str):  # a list of prefixes: the module is read by all roles
            for reader in ("dj_guest", "dj_collab"):
                if state.role(reader).exists and "SELECT" not in state.role(reader).grants.get(pattern, frozenset()):
                    stmts.append(g.Statement(d.grant("SELECT", pattern, d.role(reader)),
                                             f"{reader} reads the shared module", undo=d.revoke(
                                                 "SELECT", pattern, d.role(reader))))
        return g.Plan(f"roles add-module {name}: dj_user gets {privs.label} on {pattern}",
                      tuple(stmts),
                      tuple(f"dj_user: {_drift_text(x, state.flavor)}" for x in drift), notes)

    def user_exists(self, name: str) -> list[str]:
        return [h for (h,) in self._q("SELECT Host FROM mysql.user WHERE User = %s", (name,))]

    def plan_add_user(self, name: str, kind: str, *, host: str | None = None, password: str | None = None,
                      state: ServerAccounts | None = None) -> tuple[g.Plan, str]:
        """The plan and the password (generated unless given); the password is registered as a secret."""
        g.validate_user_name(name)
        if kind not in g.KINDS:
            raise UserError(f"{kind!r} is not a role", where="--role", hint=f"one of {', '.join(g.KINDS)}")
        host = g.validate_host(host or self.settings.default_host)
        if password is not None:
            check_password(password)
        pw = password or g.generate_password()
        commandlog.add_secret(pw)
        state = state or self.read()
        role = g.ROLE_OF_KIND[kind]
        if not state.role(role).exists:
            raise UserError(f"the role {role} does not exist", hint="run `djtui roles init` first")
        hosts = [u.host for u in state.find(name)]
        if hosts:
            raise UserError(f"the user {name!r} already exists (host {', '.join(hosts)})", where="users add",
                            hint="pick another name, or `djtui users reset-password` for a new password")
        d = self.dialect()
        acct = d.account(name, host)
        stmts = [
            g.Statement(d.create_user(name, host, self.settings.password_expiry_days), "the account", password=pw,
                        undo=f"DROP USER {acct}"),  # takes the role, default role and own grants with it
            g.Statement(d.grant_role(role, name, host), f"the {kind} role"),
            g.Statement(d.set_default_role(role, name, host), "so the role is active at login"),
        ]
        for eg in g.user_own_grants(kind, name, host):
            stmts.append(g.Statement(d.grant("ALL PRIVILEGES", eg.pattern, acct), "the user's own schemas"))
        diff = [f"{name}@{host}: missing account", f"{name}@{host}: will hold {role} (default role)"]
        diff += [f"{name}@{host}: missing ALL PRIVILEGES on `{eg.pattern}`.*"
                 for eg in g.user_own_grants(kind, name, host)]
        notes = list(state.notes)
        if self.settings.password_expiry_days and not d.supports_expiry():
            notes.append("this server cannot expire passwords: password_expiry_days is ignored")
        return g.Plan(f"users add {name} as {kind} ({role}) from host {host}", tuple(stmts), tuple(diff),
                      tuple(notes)), pw

    def plan_reset_password(self, name: str, *, host: str | None = None,
                            password: str | None = None) -> tuple[g.Plan, str]:
        g.validate_user_name(name)
        hosts = self.user_exists(name)
        if not hosts:
            raise UserError(f"there is no user {name!r}", where="users reset-password",
                            hint="`djtui users list` shows who exists")
        if host is None:
            if len(hosts) > 1:
                raise UserError(f"{name!r} exists from several hosts: {', '.join(sorted(hosts))}",
                                where="--host", hint="name the host with --host")
            host = hosts[0]
        elif host not in hosts:
            raise UserError(f"{name!r} has no account from host {host!r}", where="--host",
                            hint=f"hosts: {', '.join(sorted(hosts))}")
        if password is not None:
            check_password(password)
        pw = password or g.generate_password()
        commandlog.add_secret(pw)
        d = self.dialect()
        return g.Plan(f"users reset-password {name}@{host}",
                      (g.Statement(d.alter_password(name, host), "a new password", password=pw),)), pw

    def plan_passwd(self, password: str) -> g.Plan:
        check_password(password)
        commandlog.add_secret(password)
        d = self.dialect()
        return g.Plan(f"passwd: a new password for {self.db.server_info().current_user}",
                      (g.Statement(d.own_password(), "your own password", password=password),))

    # -- bringing accounts back to their definition, and account admin --------

    def _accounts_named(self, state: ServerAccounts, name: str, host: str | None, where: str) -> list[AccountState]:
        user, _, at = name.partition("@")
        host = host or at or None
        found = [u for u in state.users if u.user == user and (host is None or u.host == host)]
        if not found:
            hosts = [u.host for u in state.users if u.user == user]
            raise UserError(f"there is no user {name!r}" + (f" from host {host!r}" if host and hosts else ""),
                            where=where, hint=(f"hosts: {', '.join(hosts)}" if hosts
                                               else "`djtui users list` shows who exists"))
        return found

    def _one_account(self, state: ServerAccounts, name: str, host: str | None, where: str) -> AccountState:
        found = self._accounts_named(state, name, host, where)
        if len(found) > 1:
            raise UserError(f"{name!r} exists from several hosts: {', '.join(u.host for u in found)}",
                            where="--host", hint="name the host with --host (or write NAME@HOST)")
        return found[0]

    @staticmethod
    def _refuse_self(state: ServerAccounts, acct: AccountState, what: str, where: str) -> None:
        if acct.account == state.current_user:
            raise UserError(f"{acct.account} is the account djtui runs as: {what} would change djtui's own "
                            "privileges while it uses them", where=where,
                            hint="do it as another admin account (a config whose database.user is someone else), "
                                 "or by hand in a SQL shell")

    def _user_fix(self, d: g.Dialect, u: AccountState) -> list[g.Statement]:
        assert u.kind is not None and u.diff is not None
        role = g.ROLE_OF_KIND[u.kind]
        return g.fix_privs_statements(d, d.account(u.user, u.host), g.user_own_grants(u.kind, u.user, u.host),
                                      u.diff, default_role=None if u.default_active else role,
                                      user=(u.user, u.host))

    def plan_fix(self, names: Sequence[str] = (), state: ServerAccounts | None = None) -> g.Plan:
        """Revoke what users and roles hold beyond their definition, grant what is missing.

        No names: every role and managed user that drifted (the account djtui runs as is left out,
        with a note). A name is a role (``dj_user``), a user (every host) or ``user@host``.
        """
        state = state or self.read()
        d = self.dialect()
        statements: list[g.Statement] = []
        diff: list[str] = []
        notes: list[str] = []
        kinds = {r: k for k, r in g.ROLE_OF_KIND.items()}
        roles: list[RoleState] = []
        users: list[AccountState] = []
        if not names:
            roles = [r for r in state.roles if r.drift]
            for u in state.users:
                if u.kind is None or not u.drift:
                    continue
                if u.account == state.current_user:
                    notes.append(f"left out {u.account}: djtui runs as it (fix it as another admin account)")
                    continue
                users.append(u)
        for name in names:
            if name in kinds:
                roles.append(state.role(name))
                continue
            g.validate_user_name(name.partition("@")[0], where="users fix NAME")
            for u in self._accounts_named(state, name, None, "users fix NAME"):
                if u.kind is None:
                    raise UserError(f"{u.account} holds no djtui role, so it has no definition to go back to",
                                    where="users fix NAME",
                                    hint=f"give it one first: `djtui users set-role {u.user} ROLE`")
                self._refuse_self(state, u, "fixing it", "users fix NAME")
                users.append(u)
        for rs in roles:
            if not rs.exists:
                statements.append(g.Statement(d.create_role(rs.name), f"{rs.name} does not exist"))
                diff.append(f"{rs.name}: missing role")
            stmts, lines, _ = self._role_fix(kinds[rs.name], rs, state, d)
            statements += stmts
            diff += [f"{rs.name}: {line}" for line in lines]
        for u in users:
            statements += self._user_fix(d, u)
            diff += [f"{u.account}: {line}" for line in u.drift]
        title = f"users fix {' '.join(names)}" if names else "users fix: every user and role that drifted"
        return g.Plan(title, tuple(statements), tuple(diff), tuple(notes))

    def plan_set_role(self, name: str, kind: str, *, host: str | None = None,
                      state: ServerAccounts | None = None) -> g.Plan:
        """Give a user another djtui role: the old role goes, the new one is granted and made default.

        The user's own prefix follows the role (a guest has none); other privileges are left
        as they are (``users fix`` is what takes extras away).
        """
        if kind not in g.KINDS:
            raise UserError(f"{kind!r} is not a role", where="users set-role ROLE", hint=f"one of {', '.join(g.KINDS)}")
        g.validate_user_name(name.partition("@")[0], where="users set-role NAME")
        state = state or self.read()
        d = self.dialect()
        u = self._one_account(state, name, host, "users set-role NAME")
        self._refuse_self(state, u, "changing its role", "users set-role NAME")
        role = g.ROLE_OF_KIND[kind]
        if not state.role(role).exists:
            raise UserError(f"the role {role} does not exist", hint="run `djtui roles init` first")
        stmts: list[g.Statement] = []
        for old in u.roles:
            if old in g.KIND_OF_ROLE and old != role:
                stmts.append(g.Statement(d.revoke_role(old, u.user, u.host), f"{old} is the old role"))
        if role not in u.roles:
            stmts.append(g.Statement(d.grant_role(role, u.user, u.host), f"the {kind} role"))
        if role not in u.default_roles or len(u.default_roles) > 1 or stmts:
            stmts.append(g.Statement(d.set_default_role(role, u.user, u.host), "so the role is active at login"))
        own = g.prefix_pattern(u.user)
        acct = d.account(u.user, u.host)
        have = u.own.get(own, frozenset())
        if kind == "guest" and have:
            stmts.append(g.Statement(d.revoke("ALL PRIVILEGES", own, acct), "a guest has no schemas of its own"))
        elif kind != "guest" and not have >= g.DB_ALL[state.flavor]:
            stmts.append(g.Statement(d.grant("ALL PRIVILEGES", own, acct), "the user's own schemas"))
        return g.Plan(f"users set-role {u.account}: {u.role or 'no djtui role'} -> {role}", tuple(stmts),
                      (f"{u.account}: role {u.role or '-'} -> {role}",), (), u.account)

    def plan_lock(self, name: str, *, host: str | None = None, locked: bool = True,
                  state: ServerAccounts | None = None) -> g.Plan:
        """ALTER USER ... ACCOUNT LOCK/UNLOCK; a locked account keeps its grants and cannot log in."""
        verb = "lock" if locked else "unlock"
        g.validate_user_name(name.partition("@")[0], where=f"users {verb} NAME")
        state = state or self.read()
        d = self.dialect()
        u = self._one_account(state, name, host, f"users {verb} NAME")
        if locked:
            self._refuse_self(state, u, "locking it", f"users {verb} NAME")
        stmts = () if u.locked == locked else (
            g.Statement(d.lock(u.user, u.host, locked=locked), "nobody can log in as it" if locked
                        else "it can log in again"),)
        notes = () if stmts else (f"{u.account} is already {'locked' if locked else 'unlocked'}",)
        if locked and stmts:
            notes = ("sessions already open stay open until they end; KILL them to end them now",)
        return g.Plan(f"users {verb} {u.account}", stmts, (), notes, u.account)

    def plan_drop(self, name: str, *, host: str | None = None, state: ServerAccounts | None = None) -> g.Plan:
        """DROP USER: the account, its grants and its roles go; its schemas stay (listed in a note)."""
        g.validate_user_name(name.partition("@")[0], where="users drop NAME")
        state = state or self.read()
        d = self.dialect()
        u = self._one_account(state, name, host, "users drop NAME")
        self._refuse_self(state, u, "dropping it", "users drop NAME")
        schemas = [s for (s,) in self._q("SELECT schema_name FROM information_schema.schemata")
                   if g.like_match(g.prefix_pattern(u.user), s)]
        notes = [f"its {len(schemas)} schema(s) stay: {', '.join(schemas[:10])}{' ...' if len(schemas) > 10 else ''}"
                 ] if schemas else []
        return g.Plan(f"users drop {u.account}", (g.Statement(d.drop_user(u.user, u.host), "the account goes"),),
                      (f"{u.account}: account, grants and roles ({', '.join(u.roles) or 'none'}) removed",),
                      tuple(notes), u.account)

    # -- applying -----------------------------------------------------------

    def apply(self, plan: g.Plan, *, audit: AuditLog | None = None, state_dir: Path | None = None,
              action: str = "accounts", target: str | None = None,
              recheck: Callable[[], g.Plan] | None = None, **details: object) -> int:
        """Run the plan's statements in order, under the accounts lock, audited; return how many ran.

        ``target`` is the user or role acted on; the actor (OS user, database user, host) is the
        audit log's own field, so a detail such as ``user=alice`` never stands in for who acted.
        ``recheck`` plans again under the lock, at the moment of action: if the server changed
        since the plan was shown (someone granted or revoked by hand), nothing runs.
        """
        if plan.empty:
            return 0
        if self.db.readonly:
            raise UserError("refused: account changes write, and djtui is running read-only",
                            hint="drop --readonly to allow writes")
        lock = exclusive(state_dir, "accounts", purpose=plan.title) if state_dir else nullcontext()
        with lock:
            if recheck is not None:
                fresh = recheck()
                if [s.sql for s in fresh.statements] != [s.sql for s in plan.statements]:
                    raise OperationFailed(f"{plan.title}: the server changed since the plan was shown; nothing "
                                          "was changed. The plan now would be:\n" + fresh.render())
            if audit is not None:
                with audit.action(action, target=target or plan.title, db_user=db_user_of(self.db),
                                  plan=plan.title, statements=[s.sql for s in plan.statements], **details) as rec:
                    done = self._execute(plan)
                    rec.outcome("ok", statements_run=done)
                    return done
            return self._execute(plan)

    async def aapply(self, plan: g.Plan, **kw: object) -> int:
        return await self.db.run(lambda: self.apply(plan, **kw))  # type: ignore[arg-type]

    def _execute(self, plan: g.Plan) -> int:
        """Statements in order; on a failure, the undo of those that ran, newest first.

        Account statements commit one by one (DDL), so a dropped connection half-way would
        leave, say, a user without its role; the undo (``DROP USER`` for a new account)
        puts the server back. Plans that only grant or revoke converge: running them again
        finishes the job.
        """
        conn = self.db.connect()
        done: list[g.Statement] = []
        try:
            with conn.cursor() as cur:
                for n, st in enumerate(plan.statements):
                    if n:
                        pause_between_items()
                    sql, args = st.executable()
                    commandlog.record("sql", st.sql)
                    try:
                        cur.execute(sql, args)
                    except pymysql.err.MySQLError as exc:
                        code = exc.args[0] if exc.args else "?"
                        msg = commandlog.mask(str(exc.args[1]) if len(exc.args) > 1 else str(exc))
                        ran = f"{len(done)} of {len(plan.statements)} statements ran before it"
                        why = self._role_denied_advice(st.sql, code)
                        raise OperationFailed(f"the server refused `{st.sql}`: ({code}) {msg}; {ran}"
                                              f"{self._undo(done)}{why}") from None
                    done.append(st)
        finally:
            conn.close()
        return len(done)

    def _role_denied_advice(self, sql: str, code: object) -> str:
        """Why granting a role was refused ("(1698) Access denied" says nothing) and how to fix it."""
        target = g.role_of_grant(sql)
        if target is None or code not in (1698, 1045, 1227, 1044, 3523):
            return ""
        role = target[0]
        d = g.Dialect(self.db.server_info().flavor, self.db.server_info().version_tuple)
        admins: list[str] = []
        try:
            conn = self.db.connect()
            try:
                with conn.cursor() as cur:
                    if d.is_mariadb:
                        cur.execute("SELECT User, Host FROM mysql.roles_mapping WHERE Role = %s "
                                    "AND Admin_option = 'Y' AND Host <> ''", (role,))
                    else:
                        cur.execute("SELECT TO_USER, TO_HOST FROM mysql.role_edges WHERE FROM_USER = %s "
                                    "AND WITH_ADMIN_OPTION = 'Y'", (role,))
                    admins = sorted(f"{u}@{h}" for u, h in cur.fetchall())
            finally:
                conn.close()
        except (pymysql.err.MySQLError, UserError):
            return f"\n  why: {g.role_admin_advice(d, role, self.db.server_info().current_user, ['(unknown)'])}"
        return f"\n  why: {g.role_admin_advice(d, role, self.db.server_info().current_user, admins)}"

    def _undo(self, done: Sequence[g.Statement]) -> str:
        """Undo what ran, on a fresh connection (the old one may be the one that was killed)."""
        undo = [st.undo for st in reversed(done) if st.undo]
        if not undo:
            return "; run the same command again to finish it (plans converge)" if done else ""
        try:
            conn = self.db.connect()
        except UserError as exc:
            return f"; could not undo ({exc.what}): run by hand: {'; '.join(undo)}"
        try:
            with conn.cursor() as cur:
                for sql in undo:
                    commandlog.record("sql", sql)
                    cur.execute(sql)
        except pymysql.err.MySQLError as exc:
            return f"; undo failed ({commandlog.mask(str(exc))}): run by hand: {'; '.join(undo)}"
        finally:
            conn.close()
        return f"; undone: {'; '.join(undo)}"


def check_password(password: str) -> str:
    if len(password) < 8:
        raise UserError("the password is shorter than 8 characters", where="password",
                        hint="use at least 8 characters, or let djtui generate one")
    if any(c in password for c in "\r\n\x00"):
        raise UserError("the password holds a line break or NUL", where="password")
    return password


def _drift_text(item: tuple[str, str, frozenset[str]], flavor: str) -> str:
    kind, pattern, privs = item
    target = "*.*" if pattern == "*" else f"`{pattern}`.*"
    return f"{kind} {g.describe_privs(privs, flavor)} on {target}"
