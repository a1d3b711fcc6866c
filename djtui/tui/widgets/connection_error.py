"""The dialog shown when the database cannot be reached: the reason, how to fix it, where settings came from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from djtui.errors import UserError
    from djtui.services.database import ConnectionSettings


class ConnectionErrorScreen(ModalScreen[str]):
    """Why the database could not be reached, and what to do about it."""

    DEFAULT_CSS = """
    ConnectionErrorScreen { align: center middle; }
    ConnectionErrorScreen > Vertical {
        width: 90%; max-width: 100; height: auto; border: thick $error; background: $surface; padding: 1 2;
    }
    ConnectionErrorScreen .title { text-style: bold; color: $error; }
    """
    BINDINGS = [
        Binding("r", "dismiss('retry')", "Retry", id="conn.retry"),
        Binding("escape,c", "dismiss('continue')", "Continue without database", id="conn.continue"),
        Binding("q", "app.quit", "Quit", id="conn.quit"),
    ]

    def __init__(self, error: UserError, settings: ConnectionSettings | None):
        super().__init__()
        self.error = error
        self.settings = settings

    def compose(self) -> ComposeResult:
        sources = "\n".join(f"  {s}" for s in (self.settings.sources if self.settings else ())) or "  (defaults)"
        with Vertical():
            yield Static("Cannot reach the database", classes="title")
            yield Static(self.error.what, markup=False)
            if self.error.hint:
                yield Static(f"\nHow to fix: {self.error.hint}", markup=False)
            yield Static(f"\nSettings came from:\n{sources}", markup=False)
            yield Static("\n[b]r[/b] retry   [b]c[/b]/Esc continue without the database   [b]q[/b] quit")


