"""HelpScreen: the keys of the whole app and of the screen it was opened on, and the read-only rule."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from djtui.errors import READONLY_RULE


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 90; height: 80%; border: thick $primary;
        background: $surface; padding: 0 2; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, screen_bindings: list[tuple[str, str]], *, screens: Sequence[tuple[str, str, str]] = (),
                 readonly: bool = False):
        """``screens``: (key, title, name) of every screen the app switches to by key."""
        super().__init__()
        self.screen_bindings = screen_bindings
        self.screens = list(screens)
        self.readonly = readonly

    def compose(self) -> ComposeResult:
        lines = ["[b]djtui keys[/b]", ""]
        for key, title, name in self.screens:
            lines.append(f"  [b]{key}[/b]  {title} ({name})")
        lines += ["", "  [b]?[/b]  this help", "  [b]ctrl+p[/b]  command palette (every action)",
                  "  [b]L[/b]  command log: every SQL statement and command djtui ran",
                  "  [b]ctrl+x[/b]  cancel a wait for the database (offered while one runs)", "  [b]q[/b]  quit"]
        if self.screen_bindings:
            lines += ["", "[b]This screen[/b]", ""]
            lines += [f"  [b]{k}[/b]  {escape(d)}" for k, d in self.screen_bindings]
        state = "djtui is read-only now" if self.readonly else "djtui is not read-only now"
        lines += ["", f"[b]Read-only[/b] ({state})", "", escape(READONLY_RULE)]
        with VerticalScroll():
            yield Static("\n".join(lines))
