"""What every djtui screen shares: the header, the footer and the app context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from djtui.tui.widgets.header import AppHeader

if TYPE_CHECKING:
    from djtui.tui.app import AppContext


class DjtuiScreen(Screen):
    """A capability screen: subclasses override ``compose_body`` and, to load data, ``on_db_ready``."""

    SCREEN_TITLE = "djtui"
    BINDINGS = [
        Binding("escape", "leave_input", "Leave field", show=False, id="screen.leave_input"),
        # first in every footer, so no narrow terminal cuts it off; offered only while a wait runs
        # (DjtuiApp.check_action); the app's own priority binding covers dialogs and text fields
        Binding("ctrl+x", "app.cancel_wait", "Cancel wait", id="screen.cancel_wait"),
    ]

    @property
    def ctx(self) -> AppContext:
        return self.app.ctx  # type: ignore[attr-defined]

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

    def on_screen_resume(self) -> None:
        self.query_one(AppHeader).refresh_info()


class PlannedScreen(DjtuiScreen):
    """A capability whose issue is not done yet: says what the screen will hold."""

    PLANNED: tuple[str, ...] = ()
    CLI_HINT = ""

    def compose_body(self) -> ComposeResult:
        lines = "\n".join(f"  • {line}" for line in self.PLANNED)
        hint = f"\n\nUntil then: {self.CLI_HINT}" if self.CLI_HINT else ""
        yield Static(f"[b]{self.SCREEN_TITLE}[/b] is being built. It will hold:\n\n{lines}{hint}",
                     classes="planned")
