"""Plans for the roles: ``roles init`` (create the four roles, bring each to its definition) and
``roles add-module`` (a shared prefix dj_user owns). Each is a ``Plan`` a person reads first."""

from __future__ import annotations

from dataclasses import replace

from djtui.domain import grants as g
from djtui.domain.dialects import GrantDialect
from djtui.errors import UserError
from djtui.services.accounts.read import AccountsReader
from djtui.services.accounts.state import RoleState, ServerAccounts


class RolePlanner(AccountsReader):
    """Plans that create roles and bring them to their definition."""

    def _role_fix(self, kind: str, rs: RoleState, state: ServerAccounts, d: GrantDialect
                  ) -> tuple[list[g.Statement], list[str], g.GrantDiff]:
        """The statements that bring role ``rs`` to its definition, the diff lines, and the diff."""
        if d.per_object:
            return self._po_role_fix(kind, rs, state)
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
            if kind != "admin" and rs.exists and not d.per_object and any(p.name == "SELECT" for p in rdiff.extra):
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
        if d.per_object and state.objects is not None:
            notes.append(f"default privileges cover tables and schemas made later by the {len(state.objects.creators)} "
                         "account(s) that hold dj_collab, dj_user or dj_admin or may create roles; `users add` "
                         "extends them to new users")
        elif self.settings.read_scope == "all":
            notes.append("accounts.read_scope: all (Spyglass's `%`) covers the `mysql` schema too: every guest, "
                         "collab and user can read every account's password hash; read_scope: lab avoids it")
        return g.Plan("roles init: the four djtui roles", tuple(statements), tuple(diff), tuple(notes))

    def _admin_option_statements(self, d: GrantDialect, state: ServerAccounts, role: str, *,
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
        if d.per_object:
            stmts, lines, notes = self._po_add_module(name, state)
            if name not in self.settings.shared_prefixes:
                notes.append(f"add {name!r} to accounts.shared_prefixes in the config so checks expect it everywhere")
            return g.Plan(f"roles add-module {name}: dj_user writes in the schemas {name}_...", tuple(stmts),
                          tuple(lines), tuple(notes))
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


def _drift_text(item: tuple[str, str, frozenset[str]], flavor: str) -> str:
    kind, pattern, privs = item
    target = "*.*" if pattern == "*" else f"`{pattern}`.*"
    return f"{kind} {g.describe_privs(privs, flavor)} on {target}"
