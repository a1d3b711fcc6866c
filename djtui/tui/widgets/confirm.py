"""A destructive action's confirmation: what will happen, and a word typed exactly."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmTyped(ModalScreen[bool]):
    """Returns True only when ``expected`` is typed exactly and confirmed."""

    DEFAULT_CSS = """
    ConfirmTyped { align: center middle; }
    ConfirmTyped > Vertical {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: thick $error; background: $surface; padding: 0 1;
    }
    ConfirmTyped .title { text-style: bold; color: $error; padding: 1 0 0 0; }
    ConfirmTyped VerticalScroll { height: auto; max-height: 16; }
    ConfirmTyped Horizontal { height: auto; align: right middle; }
    ConfirmTyped Button { margin: 0 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]

    def __init__(self, title: str, lines: Sequence[str], expected: str):
        super().__init__()
        self.title_text = title
        self.lines = list(lines)
        self.expected = expected

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title")
            with VerticalScroll():
                yield Static("\n".join(self.lines), markup=False)
            yield Label(f"Type [b]{self.expected}[/b] to confirm, Esc to cancel:")
            yield Input(placeholder=self.expected, id="confirm-input")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Confirm", id="ok", variant="error", disabled=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#ok", Button).disabled = event.value != self.expected

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value == self.expected:
            self.dismiss(True)
        else:
            self.notify(f"type {self.expected} exactly", severity="warning")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "ok" and self.query_one(Input).value == self.expected)

    def action_cancel(self) -> None:
        self.dismiss(False)
