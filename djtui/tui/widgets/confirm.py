"""A destructive action's confirmation: what will happen, and a word typed exactly."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

# below this many rows (DjtuiApp's "-short" breakpoint) the field and the buttons lose their borders
SHORT_ROWS = 20


class ConfirmTyped(ModalScreen[bool]):
    """Returns True only when ``expected`` is typed exactly and confirmed.

    The plan can be long (a bulk delete lists every session): it scrolls in whatever height is
    left, so the prompt, the field and the buttons stay on screen at any terminal size.
    """

    DEFAULT_CSS = """
    ConfirmTyped { align: center middle; }
    ConfirmTyped > Vertical {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: thick $error; background: $surface; padding: 0 1;
    }
    ConfirmTyped .title { text-style: bold; color: $error; padding: 1 0 0 0; }
    ConfirmTyped VerticalScroll { height: auto; max-height: 16; }
    ConfirmTyped #confirm-prompt { width: 1fr; }
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
        with Vertical(id="confirm-box"):
            yield Label(self.title_text, classes="title")
            with VerticalScroll(id="confirm-plan"):
                yield Static("\n".join(self.lines), markup=False)
            yield Label(f"Type [b]{self.expected}[/b] to confirm, Esc to cancel:", id="confirm-prompt")
            yield Input(placeholder=self.expected, id="confirm-input")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Confirm", id="ok", variant="error", disabled=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        short = self.size.height < SHORT_ROWS
        self.query_one(Input).compact = short
        for button in self.query(Button):
            button.compact = short
        self.call_after_refresh(self._fit_plan)

    def _fit_plan(self) -> None:
        """Give the plan only the rows the rest of the dialog leaves (Textual has no flex-shrink)."""
        box = self.query_one("#confirm-box", Vertical)
        plan = self.query_one("#confirm-plan", VerticalScroll)
        room = self.size.height if self.size.height < SHORT_ROWS else int(self.size.height * 0.9)
        others = sum(w.outer_size.height for w in box.children if w is not plan and w.display)
        fit = max(1, room - box.styles.gutter.height - others)
        if plan.styles.max_height is None or plan.styles.max_height.value != fit:
            plan.styles.max_height = fit

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
