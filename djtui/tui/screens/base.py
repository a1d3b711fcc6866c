"""What every djtui screen shares: the header, the footer, the app context, the read-only guard of
write keys, and the terminal habits (tui.navigation: j/k, g/G, / n N, O) on whatever list is focused."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from djtui.errors import ReadOnlyError
from djtui.tui.keys import current_keymap, key_label, lost_bindings
from djtui.tui.navigation import HABIT_BINDINGS, TerminalHabits
from djtui.tui.widgets.header import AppHeader

if TYPE_CHECKING:
    from djtui.tui.context import AppContext


# Every key that changes the lab (see READONLY_RULE), by binding id, with what it writes: under
# read-only these keys are not offered in the footer, and pressing one gives the one refusal.
# tests/reliability/test_readonly.py fails while a screen key is in neither this table nor its list
# of keys that write nothing. A key that writes only sometimes (Transfers `t`: retrying a sync writes,
# retrying a verify or a dry run does not) is offered, and refuses with refuse_readonly when it would.
WRITE_BINDINGS: dict[str, str] = {
    "sessions.sync": "sync (copies files to the destination)",
    "sessions.delete": "delete",
    "sessions.bulk_delete": "bulk delete",
    "orphans.quarantine": "quarantine (moves files, deletes rows)",
    "orphans.restore": "restore (moves files back, inserts rows)",
    "orphans.purge": "purge (deletes quarantined files)",
    "export.write": "writing the export (files in the export folder)",
    "export.mermaid": "saving the graph (a file in the export folder)",
    "accounts.add_user": "adding a user",
    "accounts.add_module": "adding a module",
    "accounts.reset_password": "resetting a password",
    "accounts.roles_init": "creating or fixing the roles",
    "accounts.fix": "fixing drift (grants and revokes)",
    "accounts.set_role": "changing a user's role",
    "accounts.lock": "locking or unlocking a user",
    "accounts.drop": "dropping a user",
    "backups.run": "a database backup (writes a dump)",
    "backups.verify": "restore-verify (writes verified.json into the dump's folder)",
    "backups.restore": "restore (loads dumps into the server)",
    "backups.prune": "prune (removes backups)",
}


# Shown first in every footer, so a narrow terminal (80 columns) cuts screen keys, never these.
FOOTER_FIRST = ("screen.cancel_wait", "app.cancel_wait", "app.help", "app.quit")


def refuse_readonly(widget: object, action: str) -> None:
    """The one read-only refusal of the app: the same words as the CLI's (ReadOnlyError)."""
    widget.notify(ReadOnlyError(action).render(), title="Read-only", severity="warning")  # type: ignore[attr-defined]


class DjtuiScreen(TerminalHabits, Screen):
    """A capability screen: subclasses override ``compose_body`` and, to load data, ``on_db_ready``.

    ``HELP`` (optional): what a person needs to know on this screen, shown by ``?``; without it the
    help text kept in tui/help/ for the screen's title is shown.
    """

    SCREEN_TITLE = "djtui"
    HELP = ""
    BINDINGS = [
        *HABIT_BINDINGS,  # a subclass binding on the same key wins (Textual merges BINDINGS by key)
        Binding("escape", "leave_input", "Leave field", show=False, id="screen.leave_input"),
        # first in every footer, so no narrow terminal cuts it off; offered only while a wait runs
        # (DjtuiApp.check_action); the app's own priority binding covers dialogs and text fields
        Binding("ctrl+x", "app.cancel_wait", "Cancel wait", id="screen.cancel_wait"),
    ]

    @property
    def ctx(self) -> AppContext:
        return self.app.ctx  # type: ignore[attr-defined]

    @property
    def active_bindings(self):  # type: ignore[override]
        """Textual's bindings, with Cancel wait, Help and Quit first: the footer shows them in this order."""
        bindings = super().active_bindings
        first = {key: b for key, b in bindings.items() if b.binding.id in FOOTER_FIRST}
        first = dict(sorted(first.items(), key=lambda kb: FOOTER_FIRST.index(kb[1].binding.id)))
        return {**first, **{key: b for key, b in bindings.items() if key not in first}}

    def _write_binding(self, *, action: str | None = None, key: str | None = None) -> Binding | None:
        """This screen's write binding for an action name or a key (as the user's key map has it), if any."""
        bindings = self._bindings
        keymap = current_keymap(self.app)
        if keymap:
            bindings = bindings.copy()
            bindings.apply_keymap(keymap)
        table = bindings.key_to_bindings
        candidates = table.get(key, []) if key is not None else [b for bs in table.values() for b in bs]
        for binding in candidates:
            if binding.id in WRITE_BINDINGS and (action is None or binding.action == action):
                return binding
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only: write keys are not offered (the footer hides them, the palette leaves them out)."""
        return not (self.ctx.readonly and self._write_binding(action=action) is not None)

    def on_key(self, event: events.Key) -> None:
        """Home/End in a table move to the first/last row. Read-only: a write key that reached the screen
        (no field took it) gets the one refusal."""
        if self.habit_key(event) or not self.ctx.readonly:
            return
        binding = self._write_binding(key=event.key)
        if binding is not None and binding.id is not None:
            event.stop()
            event.prevent_default()
            refuse_readonly(self, WRITE_BINDINGS[binding.id])

    def compose(self) -> ComposeResult:
        yield AppHeader(self.SCREEN_TITLE)
        with Vertical(id="body"):
            yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield Static("")

    def action_leave_input(self) -> None:
        """Esc in a text field moves focus out of it, so the screen keys (1-6, q, ?) work again."""
        if not isinstance(self.focused, Input):
            return
        for widget in self.focus_chain:
            if not isinstance(widget, Input):
                widget.focus()
                return
        self.set_focus(None)

    def on_db_ready(self) -> None:
        """Called once the database answers (also at mount when it already has)."""

    def on_mount(self) -> None:
        if self.ctx.db is not None:
            self.call_after_refresh(self.on_db_ready)
        self._report_lost_keys()

    def _report_lost_keys(self) -> None:
        """A key the config's keys: gave to one binding that another binding of this screen had: say so."""
        keymap = current_keymap(self.app)
        if not keymap:
            return
        merged = [b for bs in self._bindings.key_to_bindings.values() for b in bs]
        for lost, winner in lost_bindings(merged, keymap):
            self.notify(f"`{key_label(lost.key)}` is {winner} now (keys: in the config), so {lost.id} "
                        f"({lost.description or lost.action}) has no key on this screen: give it one under keys:",
                        title="Key map clash", severity="warning", timeout=15)

    def on_screen_resume(self) -> None:
        self.query_one(AppHeader).refresh_info()

    def on_resize(self) -> None:
        """Below 120 columns the footer drops the padding around keys, so more of them fit."""
        for footer in self.query(Footer):
            footer.compact = footer.compact or self.size.width < 120


class PlannedScreen(DjtuiScreen):
    """A capability whose issue is not done yet: says what the screen will hold."""

    PLANNED: tuple[str, ...] = ()
    CLI_HINT = ""

    def compose_body(self) -> ComposeResult:
        lines = "\n".join(f"  • {line}" for line in self.PLANNED)
        hint = f"\n\nUntil then: {self.CLI_HINT}" if self.CLI_HINT else ""
        yield Static(f"[b]{self.SCREEN_TITLE}[/b] is being built. It will hold:\n\n{lines}{hint}",
                     classes="planned")
