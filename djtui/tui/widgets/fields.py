"""Text fields that say in the footer which keys work while they have focus.

In a text field letters are text, so Textual leaves every letter key of the screen out of the footer
(``?`` Help and ``q`` Quit too): a bare Input left the Export footer empty. These fields put their own
keys there instead: what Enter does, Esc to leave the field (then the screen's keys work again), Tab to
the next pane.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input

LEAVE = Binding("escape", "screen.leave_input", "Leave field", id="field.leave")
NEXT = Binding("tab", "app.focus_next", "Next pane", id="field.next")


class RestrictionInput(Input):
    """The Export screen's restriction: Enter adds the leaf."""

    BINDINGS = [Binding("enter", "submit", "Add leaf", id="field.add_leaf"), LEAVE, NEXT]


class TableSearchInput(Input):
    """The Export screen's table search: Enter (or Down) goes into the list of tables."""

    BINDINGS = [Binding("enter", "submit", "To the list", id="field.to_list"), LEAVE, NEXT]
