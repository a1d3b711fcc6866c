"""SearchBar: the one-line field ``/`` opens at the bottom of a screen to find a row in the focused list.

It only reports: ``Changed`` as text is typed, ``Done`` on Enter (the text) or Esc (None), then removes
itself; it covers the footer while it is open. The screen (tui.navigation.TerminalHabits) moves the
cursor. Its field's own Input messages stop here, so a screen's handlers for its fields never see them.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Label


class SearchBar(Widget):
    DEFAULT_CSS = """
    SearchBar { dock: bottom; height: 1; layout: horizontal; background: $panel; }
    SearchBar Label { width: auto; padding: 0 1; color: $accent; text-style: bold; }
    SearchBar Input, SearchBar Input:focus { width: 1fr; height: 1; border: none; padding: 0; background: $panel; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel search", show=False, id="search.cancel")]

    class Changed(Message):
        def __init__(self, text: str, origin: int):
            super().__init__()
            self.text = text
            self.origin = origin

    class Done(Message):
        def __init__(self, text: str | None, origin: int):
            super().__init__()
            self.text = text  # None: cancelled
            self.origin = origin

    def __init__(self, text: str = "", *, origin: int = 0):
        super().__init__(id="search-bar")
        self.initial = text
        self.origin = origin  # the row the search started from

    def compose(self) -> ComposeResult:
        yield Label("/")
        yield Input(self.initial, placeholder="find in this list · Enter keeps it (n/N next) · Esc cancels",
                    id="search-input", select_on_focus=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(event.value, self.origin))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._finish(event.value)

    def action_cancel(self) -> None:
        self._finish(None)

    def _finish(self, text: str | None) -> None:
        self.screen.post_message(self.Done(text, self.origin))  # to the screen: this bar is going away
        self.remove()
