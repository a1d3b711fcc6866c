"""The Accounts screen: who can do what, drift from the role scheme, and changes shown as SQL first.

Every change goes through a dialog that shows the plan (the exact SQL,
passwords as '****') before it runs; a generated password is shown once, in
a dialog of its own, and never again.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from djtui.domain import grants as g
from djtui.errors import OperationFailed, UserError
from djtui.services.accounts import AccountsService, AccountState, RoleState, ServerAccounts
from djtui.tui.screens.base import DjtuiScreen
from djtui.tui.widgets.confirm import ConfirmTyped
from djtui.tui.widgets.footer_fit import fit_footer
from djtui.tui.widgets.grant_matrix import PAD, legend, module_headers

USER_MIN = 6  # the matrix's user column is never cut narrower: then the table scrolls sideways (it stays put)
USER_COLUMNS = ("user", "host", "role", "role at login", "locked", "drift")
MATRIX_LABEL = "Grant matrix (ALL create tables · RW write rows · R read · - nothing)"



def fit_name(name: str, width: int) -> str:
    """``name`` in ``width`` cells: cut with an ellipsis, keeping ``@host`` when a few letters of the user
    name still fit before it (``averyverylo…@%``)."""
    if len(name) <= width:
        return name
    user, at, host = name.rpartition("@")
    if at and width - len(host) - 2 >= 3:
        return user[:width - len(host) - 2] + "…@" + host
    return name[:width - 1] + "…"


_DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 90%; max-width: 110; height: auto; max-height: 90%;
    border: thick $primary; background: $surface; padding: 0 1;
}}
{name} .title {{ text-style: bold; padding: 1 0 0 0; }}
{name} .error {{ color: $error; height: auto; }}
{name} Horizontal {{ height: auto; align: right middle; }}
{name} Button {{ margin: 0 1; }}
{name} VerticalScroll {{ height: auto; max-height: 20; }}
"""


class _FormDialog(ModalScreen):
    """A small form: Enter or "ok" submits (the subclass validates), anything else cancels."""

    def _submit(self) -> None:
        raise NotImplementedError

    @on(Input.Submitted)
    def _on_enter(self) -> None:
        self._submit()

    @on(Button.Pressed)
    def _on_button(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)


class AddUserDialog(_FormDialog):
    """Name, role and host of a new user; names are checked before anything is planned."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="AddUserDialog")
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="accounts.adduser.cancel")]

    def __init__(self, default_host: str, *, hosts: bool = True):
        super().__init__()
        self.default_host = default_host
        self.hosts = hosts  # False on PostgreSQL: a role has no host, so the dialog asks for none

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Add a user", classes="title")
            yield Input(placeholder="user name (letters, digits, _)", id="name")
            yield Select([(f"{k} (dj_{k})", k) for k in g.KINDS], value="user", allow_blank=False, id="kind")
            if self.hosts:
                yield Input(value=self.default_host, placeholder="host pattern", id="host")
            yield Static("", classes="error", id="error")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Show plan", id="ok", variant="primary")

    def _submit(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        host = self.query_one("#host", Input).value.strip() if self.hosts else ""
        try:
            g.validate_user_name(name)
            if self.hosts:
                g.validate_host(host)
        except UserError as exc:
            self.query_one("#error", Static).update(exc.render())
            return
        self.dismiss((name, str(self.query_one("#kind", Select).value), host))


class AddModuleDialog(_FormDialog):
    DEFAULT_CSS = _DIALOG_CSS.format(name="AddModuleDialog")
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="accounts.addmodule.cancel")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Add a shared module prefix (dj_user gets ALL on it)", classes="title")
            yield Input(placeholder="module prefix, e.g. spikesorting", id="name")
            yield Static("", classes="error", id="error")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Show plan", id="ok", variant="primary")

    def _submit(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        try:
            g.validate_module_name(name)
        except UserError as exc:
            self.query_one("#error", Static).update(exc.render())
            return
        self.dismiss(name)


class PlanDialog(ModalScreen[bool]):
    """The plan as text (diff and exact SQL); Apply runs it, anything else changes nothing."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="PlanDialog")
    BINDINGS = [Binding("escape,n", "dismiss(False)", "Cancel", id="accounts.plan.cancel"),
                Binding("y", "apply", "Apply", id="accounts.plan.apply")]

    def __init__(self, plan: g.Plan):
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.plan.title, classes="title")
            with VerticalScroll():
                yield Static("\n".join(self.plan.render().splitlines()[1:]), markup=False, id="plan-text")
            yield Label("y applies, n or Esc cancels" if not self.plan.empty else "Esc closes")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Apply", id="apply", variant="warning", disabled=self.plan.empty)

    def action_apply(self) -> None:
        if not self.plan.empty:
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "apply")


class SetRoleDialog(_FormDialog):
    """The role a user should hold from now on."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="SetRoleDialog")
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="accounts.setrole.cancel")]

    def __init__(self, account: AccountState):
        super().__init__()
        self.account = account

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Role of {self.account.account} (now {self.account.role or 'none'})", classes="title")
            yield Select([(f"{k} (dj_{k})", k) for k in g.KINDS], value=self.account.kind or "guest",
                         allow_blank=False, id="kind")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Show plan", id="ok", variant="primary")

    def _submit(self) -> None:
        self.dismiss(str(self.query_one("#kind", Select).value))


class PasswordOnce(ModalScreen[None]):
    """A generated password, shown this one time; ``c`` copies it to the terminal's clipboard (OSC 52)."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="PasswordOnce")
    BINDINGS = [Binding("escape,enter", "dismiss(None)", "Close", id="accounts.password.close"),
                Binding("c", "copy", "Copy (OSC 52)", id="accounts.password.copy")]

    def __init__(self, user: str, password: str):
        super().__init__()
        self.user = user
        self.password = password

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Password for {self.user}", classes="title")
            yield Static(self.password, markup=False, id="password")
            yield Static("Shown once: give it to the user now. They can change it with `djtui passwd`.\n"
                         "c copies it to the clipboard (OSC 52: over ssh and tmux too, if the terminal allows it).")
            with Horizontal():
                yield Button("Copy", id="copy")
                yield Button("Close", id="close", variant="primary")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.password)
        self.notify("copied to the clipboard (OSC 52)", timeout=4)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
            return
        self.dismiss(None)


class AccountsScreen(DjtuiScreen):
    """Roles and users with their drift (a +/- diff of the highlighted one); a grant matrix; add user, add module,
    reset password, init roles, fix drift, set role, lock/unlock, drop."""

    SCREEN_TITLE = "Accounts"
    DEFAULT_CSS = """
    AccountsScreen #acct-summary { height: auto; padding: 0 1; }
    AccountsScreen #acct-users { height: auto; max-height: 50%; }
    AccountsScreen #acct-matrix { height: 1fr; }
    AccountsScreen #acct-detail { height: auto; max-height: 10; padding: 0 1; }
    AccountsScreen .acct-label { padding: 0 1; text-style: bold; }
    AccountsScreen #acct-matrix-label { width: 100%; }
    """
    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="accounts.refresh"),
        Binding("a", "add_user", "Add user", id="accounts.add_user"),
        Binding("m", "add_module", "Add module", id="accounts.add_module"),
        Binding("p", "reset_password", "Reset password", id="accounts.reset_password"),
        Binding("i", "roles_init", "Init/fix roles", id="accounts.roles_init"),
        Binding("f", "fix", "Fix drift", id="accounts.fix"),
        Binding("e", "set_role", "Set role", id="accounts.set_role"),
        Binding("l", "lock", "Lock/unlock", id="accounts.lock"),
        Binding("d", "drop", "Drop user", id="accounts.drop"),
    ]

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.state: ServerAccounts | None = None

    @property
    def active_bindings(self):  # type: ignore[override]
        """The keys the footer has room for, whole, most used first (at 80 columns the others are in help ?
        and the palette); Init/fix roles first while a role is missing."""
        missing = self.state is not None and not all(r.exists for r in self.state.roles)
        ranked = ("accounts.roles_init",) * missing + (
            "accounts.add_user", "accounts.reset_password", "accounts.fix", "accounts.set_role", "accounts.lock",
            "accounts.drop", "accounts.roles_init", "accounts.add_module", "accounts.refresh")
        return fit_footer(self, super().active_bindings, ranked)

    def compose_body(self) -> ComposeResult:
        yield Static("Waiting for the database…", id="acct-summary")
        yield Label("Users", classes="acct-label")
        yield DataTable(id="acct-users", cursor_type="row", zebra_stripes=True)
        yield Label(MATRIX_LABEL, classes="acct-label", id="acct-matrix-label")
        yield DataTable(id="acct-matrix", cursor_type="row", fixed_columns=1)
        yield Static("", id="acct-detail", markup=False)

    def on_mount(self) -> None:
        self.query_one("#acct-users", DataTable).add_columns(*USER_COLUMNS)
        super().on_mount()

    def on_db_ready(self) -> None:
        self.load()

    def _service(self) -> AccountsService:
        assert self.ctx.db is not None
        return AccountsService(self.ctx.db, self.ctx.config.accounts)

    # -- loading ------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="accounts-load")
    async def load(self) -> None:
        summary = self.query_one("#acct-summary", Static)
        try:
            await self.ctx.wait_db()
            state = await self._service().aread()
        except (UserError, OperationFailed) as exc:
            summary.update(f"[b red]Cannot read accounts:[/] {exc}")
            return
        self.state = state
        self._show(state)

    def _show(self, state: ServerAccounts) -> None:
        drift = state.drift
        roles = ", ".join(f"{r.name} {'✓' if r.exists and not r.drift else '✗'}" for r in state.roles)
        # say what the count is made of: missing roles are no user's drift (every user row shows - then)
        text = (f"{state.flavor} {state.version} · {len(state.users)} accounts · roles: {roles} · "
                + (f"[b red]{state.drift_summary()}[/]" if drift else "[green]no drift[/]"))
        if not all(r.exists for r in state.roles):
            text += "  (press i to create the roles)"
        exposed = [r.name for r in state.roles if r.reads_system]
        if exposed:  # `accounts.read_scope: all`: `users check` and `doctor` say the same
            text += f"  [b yellow]⚠ {', '.join(exposed)} can read `mysql` (password hashes)[/]"
        self.query_one("#acct-summary", Static).update(text)
        with self.app.batch_update():
            self._fill_users(state)
            self._fill_matrix(state)
        self._update_detail()
        self.refresh_bindings()  # whether a role is missing ranks the footer's keys

    def _fill_users(self, state: ServerAccounts) -> None:
        """Roles, then users; the user column is cut (…) where a long name would push the last columns out of
        view: the detail line under the tables names the highlighted account in full."""
        users = self.query_one("#acct-users", DataTable)
        keep = self._highlighted_key() if users.row_count else None  # what was highlighted stays highlighted
        rows = [(f"role:{r.name}", [r.name, "(role)", "-", "-", "-",  # a role's extra grants are drift as well
                 "✗ missing" if not r.exists else (f"✗ {len(r.drift)}" if r.drift else "✓")]) for r in state.roles]
        rows += [(u.account, [u.user, u.host, u.role or "-", "✓" if u.default_active else ("✗" if u.kind else "-"),
                              "locked" if u.locked else "-",
                              (f"✗ {len(u.drift)}" if u.drift else "✓") if u.kind else "-"]) for u in state.users]
        others = sum(max(cell_len(head), *(cell_len(cells[i]) for _, cells in rows)) + PAD
                     for i, head in enumerate(USER_COLUMNS[1:], 1))
        room = (users.size.width or self.app.size.width) - 2 - others - PAD
        user_w = max(4, min(max([4, *(cell_len(cells[0]) for _, cells in rows)]), max(room, USER_MIN)))
        users.clear(columns=True)
        users.add_column("user", width=user_w)
        users.add_columns(*USER_COLUMNS[1:])
        for key, cells in rows:
            users.add_row(fit_name(cells[0], user_w), *cells[1:], key=key)
        if keep is not None and keep in {r.value for r in users.rows}:
            users.move_cursor(row=users.get_row_index(keep))

    def _fill_matrix(self, state: ServerAccounts) -> None:
        """user, own and other first (they say the most), then one column per module, abbreviated to fit.
        A user column too wide for every module column to stay in view is cut (…): the detail line under
        the tables names the highlighted account in full."""
        matrix = self.query_one("#acct-matrix", DataTable)
        matrix.clear(columns=True)
        managed = [u for u in state.users if u.kind is not None]
        # the host only where a name has more than one (the Users table above shows every host)
        names = [u.user for u in managed]
        shown = {u.account: u.account if names.count(u.user) > 1 else u.user for u in managed}
        width = (matrix.size.width or self.app.size.width) - 2
        own_other = 3 + 5 + 2 * PAD
        narrowest, _ = module_headers(state.modules, 0, 0)  # nothing fits in 0: each module's shortest header
        room = width - own_other - PAD - sum(max(len(h), 3) + PAD for h in narrowest)
        user_w = max(4, min(max([0, *(len(s) for s in shown.values())]), max(room, USER_MIN)))
        heads, cut = module_headers(state.modules, width, user_w + PAD + own_other)
        matrix.add_column("user", width=user_w)
        matrix.add_columns("own", "other", *heads)
        for u in managed:
            cells = [u.level_on(f"{u.user}_x"), u.level_on("zz_someone_else_x")]
            cells += [u.level_on(f"{m}_x") for m in state.modules]
            matrix.add_row(fit_name(shown[u.account], user_w), *cells, key=u.account)
        self.query_one("#acct-matrix-label", Label).update(
            MATRIX_LABEL + (f"\nmodules: {legend(state.modules, heads)}" if cut else ""))

    @on(DataTable.RowHighlighted, "#acct-matrix")
    def _matrix_row(self) -> None:
        """The row moved to in the matrix becomes the highlighted account: the detail line names it in full
        (the matrix may cut it) and the keys act on it."""
        matrix = self.query_one("#acct-matrix", DataTable)
        users = self.query_one("#acct-users", DataTable)
        if self.focused is not matrix or matrix.row_count == 0:
            return  # a refill moves the matrix's cursor too: only the user's moves count
        key = matrix.coordinate_to_cell_key(matrix.cursor_coordinate).row_key.value
        if key in {r.value for r in users.rows}:
            users.move_cursor(row=users.get_row_index(key))

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if event.widget.id == "acct-matrix":  # entering the matrix: its row is the one the keys act on
            self._matrix_row()

    def on_resize(self) -> None:
        if self.state is not None:
            with self.app.batch_update():
                self._fill_users(self.state)
                self._fill_matrix(self.state)
        self.call_after_refresh(self.refresh_bindings)  # the footer's keys follow the width (active_bindings)

    def _highlighted_key(self) -> str | None:
        if self.state is None:
            return None
        users = self.query_one("#acct-users", DataTable)
        if users.row_count == 0:
            return None
        return users.coordinate_to_cell_key(users.cursor_coordinate).row_key.value

    def _selected(self) -> AccountState | None:
        key = self._highlighted_key()
        if key is None or self.state is None:
            return None
        return next((u for u in self.state.users if u.account == key), None)

    def _selected_role(self) -> RoleState | None:
        key = self._highlighted_key()
        if key is None or self.state is None or not key.startswith("role:"):
            return None
        return next((r for r in self.state.roles if r.name == key[5:]), None)

    @on(DataTable.RowHighlighted, "#acct-users")
    def _update_detail(self) -> None:
        """The highlighted user's or role's diff: + held beyond its definition, - missing from it."""
        detail = self.query_one("#acct-detail", Static)
        u, r = self._selected(), self._selected_role()
        if r is not None:
            head = Text(f"role {r.name}: held by {len(r.holders)}", style="bold")
            drift = r.drift
            ok = "✓ matches its definition"
        elif u is not None:
            head = Text(f"{u.account}: roles {', '.join(u.roles) or '-'}; default {', '.join(u.default_roles) or '-'}"
                        + ("; LOCKED" if u.locked else ""), style="bold")
            drift = u.drift
            ok = "✓ matches its role" if u.kind else "not managed by djtui (holds no djtui role)"
        else:
            detail.update("")
            return
        text = Text()
        text.append_text(head)
        if drift:
            text.append(f"\n✗ {len(drift)} difference(s) from the definition (+ held beyond it, - missing); "
                        "f fixes", style="red")
        for line in drift:
            text.append("\n  " + line, style="yellow" if line.startswith("+") else "cyan")
        if not drift:
            text.append("\n" + ok)
        detail.update(text)

    def action_refresh(self) -> None:
        self.load()

    # -- changes ------------------------------------------------------------

    def _writable(self, what: str) -> bool:
        if self.ctx.readonly:
            self.notify(f"read-only: {what} is a write and is refused", severity="error")
            return False
        if self.ctx.db is None:
            self.notify("the database is not connected", severity="error")
            return False
        return True

    def action_add_user(self) -> None:
        if self._writable("adding a user"):
            hosts = self.ctx.db is None or self.ctx.db.backend.account_hosts
            self.app.push_screen(AddUserDialog(self.ctx.config.accounts.default_host, hosts=hosts),
                                 self._plan_add_user)

    def _plan_add_user(self, answer: tuple[str, str, str] | None) -> None:
        if answer:
            name, kind, host = answer
            self.run_change(lambda s: s.plan_add_user(name, kind, host=host), action="users-add", target=name,
                            user=name)

    def action_add_module(self) -> None:
        if self._writable("adding a module"):
            self.app.push_screen(AddModuleDialog(), self._plan_module)

    def _plan_module(self, name: str | None) -> None:
        if name:
            self.run_change(lambda s: (s.plan_add_module(name), None), action="roles-add-module", target=name,
                            module=name)

    def action_roles_init(self) -> None:
        if self._writable("initialising roles"):
            self.run_change(lambda s: (s.plan_roles_init(), None), action="roles-init")

    def action_reset_password(self) -> None:
        u = self._selected()
        if u is None:
            self.notify("select a user first", severity="warning")
            return
        if self._writable("resetting a password"):
            self.run_change(lambda s: s.plan_reset_password(u.user, host=u.host), action="users-reset-password",
                            target=u.account, user=u.user, confirm_word=u.user)

    def action_fix(self) -> None:
        """Bring the highlighted user or role back to its definition (the same plan as `users fix`)."""
        u, r = self._selected(), self._selected_role()
        name = r.name if r is not None else (u.account if u is not None else None)
        if name is None:
            self.notify("highlight a user or role first", severity="warning")
            return
        if not (r.drift if r is not None else u.drift):  # type: ignore[union-attr]
            self.notify(f"{name} matches its definition: nothing to fix")
            return
        if self._writable("fixing drift"):
            self.run_change(lambda s: (s.plan_fix([name]), None), action="users-fix", target=name,
                            confirm_word="FIX", recheck=lambda s: s.plan_fix([name]), names=[name])

    def _user_or_warn(self) -> AccountState | None:
        u = self._selected()
        if u is None:
            self.notify("highlight a user first", severity="warning")
        return u

    def action_set_role(self) -> None:
        u = self._user_or_warn()
        if u is not None and self._writable("changing a role"):
            self.app.push_screen(SetRoleDialog(u), lambda kind: self._plan_set_role(u, kind))

    def _plan_set_role(self, u: AccountState, kind: str | None) -> None:
        if kind:
            self.run_change(lambda s: (s.plan_set_role(u.user, kind, host=u.host), None), action="users-set-role",
                            target=u.account, confirm_word=u.user, user=u.user, role=kind,
                            recheck=lambda s: s.plan_set_role(u.user, kind, host=u.host))

    def action_lock(self) -> None:
        u = self._user_or_warn()
        if u is not None and self._writable("locking an account"):
            locked = not u.locked
            self.run_change(lambda s: (s.plan_lock(u.user, host=u.host, locked=locked), None),
                            action="users-lock" if locked else "users-unlock", target=u.account,
                            confirm_word=u.user, user=u.user,
                            recheck=lambda s: s.plan_lock(u.user, host=u.host, locked=locked))

    def action_drop(self) -> None:
        u = self._user_or_warn()
        if u is not None and self._writable("dropping a user"):
            self.run_change(lambda s: (s.plan_drop(u.user, host=u.host), None), action="users-drop",
                            target=u.account, confirm_word=f"DROP {u.user}", user=u.user,
                            recheck=lambda s: s.plan_drop(u.user, host=u.host))

    @work(exclusive=True, exit_on_error=False, group="accounts-change")
    async def run_change(self, make_plan, *, action: str, confirm_word: str | None = None,
                         recheck=None, **details: object) -> None:
        """Plan in the db thread, show it, apply only after the user says so, then reload."""
        db = await self.ctx.wait_db()
        service = self._service()
        try:
            plan, password = await db.run(lambda: make_plan(service))
        except (UserError, OperationFailed) as exc:
            self.notify(str(exc), title="Not possible", severity="error", timeout=10)
            return
        if plan.empty:
            await self.app.push_screen_wait(PlanDialog(plan))
            return
        if confirm_word:
            lines = plan.render().splitlines()[1:]
            ok = await self.app.push_screen_wait(ConfirmTyped(plan.title, lines, confirm_word))
        else:
            ok = await self.app.push_screen_wait(PlanDialog(plan))
        if not ok:
            self.notify("nothing was changed")
            return
        try:
            done = await service.aapply(plan, audit=self.ctx.audit, state_dir=self.ctx.config.state_dir,
                                        action=action, recheck=(lambda: recheck(service)) if recheck else None,
                                        **details)
        except (UserError, OperationFailed) as exc:
            self.notify(str(exc), title="Failed", severity="error", timeout=15)
            self.load()
            return
        self.notify(f"{plan.title}: {done} statement(s) ran")
        if password is not None:
            await self.app.push_screen_wait(PasswordOnce(str(details.get("user", "")), password))
        self.load()
