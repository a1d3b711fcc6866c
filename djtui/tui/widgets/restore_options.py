"""Where a backup is restored: over the same schema names, or each under a prefix; which schemas."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class RestoreOptions(ModalScreen["tuple[str | None, list[str] | None] | None"]):
    """Returns ``(prefix or None, schemas or None)``, or None when cancelled. Nothing is loaded here:
    the plan (what goes where, what is overwritten) comes next, with its typed confirmation."""

    DEFAULT_CSS = """
    RestoreOptions { align: center middle; }
    RestoreOptions > Vertical {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    RestoreOptions .title { text-style: bold; padding: 1 0 0 0; }
    RestoreOptions #restore-holds { width: 1fr; max-height: 4; color: $text-muted; }
    RestoreOptions Input { margin: 0 0 1 0; }
    RestoreOptions Input.-textual-compact { margin: 0; }
    RestoreOptions Horizontal { height: auto; align: right middle; }
    RestoreOptions Button { margin: 0 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="restore_options.cancel")]

    def __init__(self, backup: str, schemas: Sequence[str]):
        super().__init__()
        self.backup = backup
        self.schemas = list(schemas)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Restore {self.backup} into the server", classes="title")
            yield Label(f"It holds {len(self.schemas)} schema(s): {', '.join(self.schemas)}", id="restore-holds")
            yield Label("Schemas to restore (space-separated; blank: all):")
            yield Input(placeholder="all", id="restore-schemas")
            yield Label("Restore each schema S as PREFIX+S (blank: over the same names):")
            yield Input(placeholder="e.g. restored_", id="restore-prefix")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Show plan", id="ok", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#restore-prefix", Input).focus()
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """On a short terminal the fields and buttons lose their borders, so the buttons stay on screen."""
        short = self.size.height < 30
        for w in (*self.query(Input), *self.query(Button)):
            w.compact = short

    def _result(self) -> tuple[str | None, list[str] | None]:
        prefix = self.query_one("#restore-prefix", Input).value.strip() or None
        names = self.query_one("#restore-schemas", Input).value.split()
        return prefix, (names or None)

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.dismiss(self._result())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self._result() if event.button.id == "ok" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
