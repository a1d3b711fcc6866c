"""Plans for users: add, new password, own password, role change, lock, drop, and ``users fix``
(revoke what a user or role holds beyond its definition, grant what is missing)."""

from __future__ import annotations

from collections.abc import Sequence

from djtui.domain import grants as g
from djtui.domain.dialects import GrantDialect
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.accounts.perobject import host_of
from djtui.services.accounts.plan import RolePlanner
from djtui.services.accounts.state import AccountState, RoleState, ServerAccounts


class UserAdmin(RolePlanner):
    """Plans that act on user accounts."""

    def user_exists(self, name: str) -> list[str]:
        with self._readable():
            return self.db.backend.user_hosts(name)

    def plan_add_user(self, name: str, kind: str, *, host: str | None = None, password: str | None = None,
                      state: ServerAccounts | None = None) -> tuple[g.Plan, str]:
        """The plan and the password (generated unless given); the password is registered as a secret."""
        g.validate_user_name(name)
        if kind not in g.KINDS:
            raise UserError(f"{kind!r} is not a role", where="--role", hint=f"one of {', '.join(g.KINDS)}")
        d = self.dialect()
        host = g.validate_host(host or self.settings.default_host) if d.has_hosts else host_of(host)
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
        if d.per_object:
            stmts, diff = self._po_add_user(d, name, kind, pw, state)  # type: ignore[arg-type]
            return g.Plan(f"users add {name} as {kind} ({role})", tuple(stmts), tuple(diff),
                          tuple(state.notes), name), pw
        acct = d.account(name, host)
        stmts = [
            g.Statement(d.create_user(name, host, self.settings.password_expiry_days), "the account",
                        password=d.password_parameter(pw),
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
        who = f"{name}@{host}" if host else name
        return g.Plan(f"users reset-password {who}",
                      (g.Statement(d.alter_password(name, host), "a new password",
                                   password=_secret(d.password_parameter(pw))),), (), (), who), pw

    def plan_passwd(self, password: str) -> g.Plan:
        check_password(password)
        commandlog.add_secret(password)
        d = self.dialect()
        return g.Plan(f"passwd: a new password for {self.db.server_info().current_user}",
                      (g.Statement(d.own_password(), "your own password",
                                   password=_secret(d.password_parameter(password))),))

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
        if d.per_object:
            return g.Plan(f"users set-role {u.account}: {u.role or 'no djtui role'} -> {role}",
                          tuple(self._po_set_role(d, u, kind, state)),  # type: ignore[arg-type]
                          (f"{u.account}: role {u.role or '-'} -> {role}",), (), u.account)
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
            notes = ("sessions already open stay open until they end; " + (
                "pg_terminate_backend(pid) ends them now" if d.per_object else "KILL them to end them now"),)
        return g.Plan(f"users {verb} {u.account}", stmts, (), notes, u.account)

    def plan_drop(self, name: str, *, host: str | None = None, state: ServerAccounts | None = None) -> g.Plan:
        """DROP USER: the account, its grants and its roles go; its schemas stay (listed in a note)."""
        g.validate_user_name(name.partition("@")[0], where="users drop NAME")
        state = state or self.read()
        d = self.dialect()
        u = self._one_account(state, name, host, "users drop NAME")
        self._refuse_self(state, u, "dropping it", "users drop NAME")
        schemas = [s for s in self.db.backend.schemas()
                   if g.like_match(g.prefix_pattern(u.user), s)]
        notes = [f"its {len(schemas)} schema(s) stay: {', '.join(schemas[:10])}{' ...' if len(schemas) > 10 else ''}"
                 ] if schemas else []
        if d.per_object:
            stmts = tuple(g.Statement(sql, why) for sql, why in zip(
                d.drop_user_statements(u.user),  # type: ignore[attr-defined]
                ("what it owns (schemas, tables) goes to the admin running this: its schemas stay",
                 "its grants and default privileges go", "the account goes"), strict=True))
            return g.Plan(f"users drop {u.account}", stmts,
                          (f"{u.account}: account, grants and roles ({', '.join(u.roles) or 'none'}) removed",),
                          tuple(notes), u.account)
        return g.Plan(f"users drop {u.account}", (g.Statement(d.drop_user(u.user, u.host), "the account goes"),),
                      (f"{u.account}: account, grants and roles ({', '.join(u.roles) or 'none'}) removed",),
                      tuple(notes), u.account)

    def _user_fix(self, d: GrantDialect, u: AccountState) -> list[g.Statement]:
        assert u.kind is not None and u.diff is not None
        if d.per_object:
            return self._po_user_fix(d, u)  # type: ignore[arg-type]
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


def _secret(value: str) -> str:
    """A value standing in for a password (a PostgreSQL SCRAM verifier) is masked in logs like one."""
    commandlog.add_secret(value)
    return value


def check_password(password: str) -> str:
    if len(password) < 8:
        raise UserError("the password is shorter than 8 characters", where="password",
                        hint="use at least 8 characters, or let djtui generate one")
    if any(c in password for c in "\r\n\x00"):
        raise UserError("the password holds a line break or NUL", where="password")
    return password


