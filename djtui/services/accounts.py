"""Users, roles and grants on the live server: read them, plan changes, apply plans.

Reading needs SELECT on the ``mysql`` schema (an admin's account). Every
change is a ``Plan`` first; ``apply`` runs it statement by statement on a
dedicated connection, with passwords sent as parameters and registered as
secrets so no log or screen shows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
        for name in g.ROLE_OF_KIND.values():
            if name not in existing_roles:
                role_states[name] = RoleState(name, False, drift=("role does not exist (run `djtui roles init`)",))
                role_grants[name] = {}
                continue
            parsed = g.parse_grants(self._show_grants(d.role(name)))
            role_grants[name] = g.effective(parsed.db, flavor)
            role_revoked[name] = frozenset(x.pattern for x in parsed.revoked if "SELECT" in x.privileges)
        modules = self._modules(role_grants.get("dj_user", {}))
        warnings: list[str] = []
        for kind, name in g.ROLE_OF_KIND.items():
            if name in role_states:
                continue
            expected = self.expected_role_grants(kind, modules, d)
            drift = g.diff_grants(expected, role_grants[name], flavor,
                                  managed_extra=self._managed_extra(kind, modules))
            drift_text = [_drift_text(x, flavor) for x in drift]
            drift_text += [f"missing partial revoke of SELECT on `{s}`.*"
                           for s in self._expected_revokes(kind, d) if s not in role_revoked[name]]
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
                                          role_revoked[name], system)

        users = []
        for user, host in sorted(accounts):
            roles = tuple(sorted(r for r, adm in held.get((user, host), []) if not adm))
            kinds = sorted((g.KIND_OF_ROLE[r] for r in roles if r in g.KIND_OF_ROLE), key=g.RANK.__getitem__)
            kind = kinds[-1] if kinds else None
            parsed = g.parse_grants(self._show_grants(d.account(user, host)))
            own = g.effective(parsed.db, flavor)
            dflt = tuple(defaults.get((user, host), []))
            active = kind is not None and (activate_all or g.ROLE_OF_KIND[kind] in dflt)
            eff = dict(own)
            for r in roles:
                if kind is not None and (r in dflt or activate_all):
                    for pattern, privs in role_grants.get(r, {}).items():
                        eff[pattern] = eff.get(pattern, frozenset()) | privs
            drift: list[str] = []
            if kind is not None:
                if len(kinds) > 1:
                    drift.append(f"holds several djtui roles: {', '.join(roles)}")
                if not active:
                    drift.append(f"{g.ROLE_OF_KIND[kind]} is not active at login (no default role)")
                expected = g.user_own_grants(kind, user, host)
                for x in g.diff_grants(expected, own, flavor, managed_extra=[g.prefix_pattern(user)]):
                    drift.append(_drift_text(x, flavor))
            users.append(AccountState(user, host, kind, roles, dflt, active, own, eff, tuple(drift)))
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

    def _modules(self, user_role: dict[str, frozenset[str]]) -> tuple[str, ...]:
        """Configured shared prefixes plus any prefix pattern dj_user writes to (modules added later)."""
        found = list(self.settings.shared_prefixes)
        for pattern, privs in user_role.items():
            if pattern.endswith("\\_%") and privs - {"SELECT"}:
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

    def _managed_extra(self, kind: str, modules: Iterable[str]) -> list[str]:
        """Patterns where a grant djtui does not expect is drift: the read scopes djtui may have set before."""
        if kind == "admin":
            return []
        out = [g.ANY_SCHEMA, g.LAB_SCHEMAS, "*"]
        if kind in ("guest", "collab"):
            out += [g.prefix_pattern(p) for p in modules]
        return out

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
            expected = self.expected_role_grants(kind, state.modules, d)
            drift = g.diff_grants(expected, rs.grants, state.flavor,
                                  managed_extra=self._managed_extra(kind, state.modules))
            diff += [f"{name}: {_drift_text(x, state.flavor)}" for x in drift]
            statements += g.fix_statements(d, d.role(name), expected, drift)
            for schema in self._expected_revokes(kind, d):
                if schema not in rs.revoked:
                    statements.append(g.Statement(d.revoke("SELECT", schema, d.role(name)),
                                                  f"partial revoke: {name} must not read `{schema}`"))
                    diff.append(f"{name}: missing partial revoke of SELECT on `{schema}`.*")
            if kind != "admin" and rs.exists and any(x[0] == "extra" and "SELECT" in x[2] for x in drift):
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

    # -- applying -----------------------------------------------------------

    def apply(self, plan: g.Plan, *, audit: AuditLog | None = None, state_dir: Path | None = None,
              action: str = "accounts", target: str | None = None, **details: object) -> int:
        """Run the plan's statements in order, under the accounts lock, audited; return how many ran.

        ``target`` is the user or role acted on; the actor (OS user, database user, host) is the
        audit log's own field, so a detail such as ``user=alice`` never stands in for who acted.
        """
        if plan.empty:
            return 0
        if self.db.readonly:
            raise UserError("refused: account changes write, and djtui is running read-only",
                            hint="drop --readonly to allow writes")
        lock = exclusive(state_dir, "accounts", purpose=plan.title) if state_dir else nullcontext()
        with lock:
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
