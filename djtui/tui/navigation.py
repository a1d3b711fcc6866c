"""Terminal habits on every screen (as in k9s or lazygit), acting on the focused list.

``j``/``k`` down/up, ``g``/``G`` (and Home/End in a table) first/last row, ``/`` search the focused
list then ``n``/``N`` next/previous match, ``O`` reverse the current sort. A screen's own binding for
one of these keys wins (Sessions' ``/`` filters, Export's ``/`` searches its table list). In a text
field letters are text: the field takes them before any of these bindings.

The lists: DataTable, OptionList, Tree, and any widget with ``items``/``cursor``/``line(i)``/
``action_move(delta)`` (the Orphans list). Nothing here knows a screen.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, OptionList, Tree

from djtui.tui.widgets.search import SearchBar

SEARCH_INLINE_ROWS = 5_000  # longer lists are searched in a thread, on Enter and n/N only (not as typed)

HABIT_BINDINGS = [
    Binding("j", "habit_move(1)", "Down", show=False, id="nav.down"),
    Binding("k", "habit_move(-1)", "Up", show=False, id="nav.up"),
    Binding("g", "habit_jump(0)", "First row", show=False, id="nav.first"),
    Binding("G", "habit_jump(-1)", "Last row", show=False, id="nav.last"),
    Binding("slash", "habit_search", "Search", show=False, id="nav.search"),
    Binding("n", "habit_next(1)", "Next match", show=False, id="nav.next"),
    Binding("N", "habit_next(-1)", "Previous match", show=False, id="nav.previous"),
    Binding("O", "habit_reverse", "Reverse sort", show=False, id="nav.reverse"),
]


def _is_list(widget: object) -> bool:
    if isinstance(widget, (DataTable, OptionList, Tree)):
        return True
    return all(hasattr(widget, a) for a in ("items", "cursor", "line", "action_move"))


def _plain(value: Any) -> str:
    return value.plain if isinstance(value, Text) else str(value)


def row_count(widget: Any) -> int:
    if isinstance(widget, DataTable):
        return widget.row_count
    if isinstance(widget, OptionList):
        return widget.option_count
    if isinstance(widget, Tree):
        return widget.last_line + 1
    return len(widget.items)


def cursor_of(widget: Any) -> int:
    if isinstance(widget, DataTable):
        return widget.cursor_row
    if isinstance(widget, OptionList):
        return -1 if widget.highlighted is None else widget.highlighted
    if isinstance(widget, Tree):
        return widget.cursor_line
    return widget.cursor


def row_text(widget: Any, index: int) -> str:
    """One row as the eye reads it: its cells joined by spaces."""
    if isinstance(widget, DataTable):
        return " ".join(_plain(c) for c in widget.get_row_at(index))
    if isinstance(widget, OptionList):
        return _plain(widget.get_option_at_index(index).prompt)
    if isinstance(widget, Tree):
        node = widget.get_node_at_line(index)
        return "" if node is None else _plain(node.label)
    return " ".join(_plain(c) for c in widget.line(index))


def move_to(widget: Any, index: int) -> None:
    """Put the cursor on row ``index`` (-1: the last row) and scroll it into view."""
    count = row_count(widget)
    if count == 0:
        return
    index = count - 1 if index < 0 else min(index, count - 1)
    if isinstance(widget, DataTable):
        widget.move_cursor(row=index, animate=False)
    elif isinstance(widget, OptionList):
        widget.highlighted = index
    elif isinstance(widget, Tree):
        widget.cursor_line = index
        widget.scroll_to_line(index, animate=False)
    else:
        widget.action_move(index - widget.cursor)


def step(widget: Any, delta: int) -> None:
    cur = cursor_of(widget)
    move_to(widget, max(0, (0 if cur < 0 and delta > 0 else cur + delta)))


def find(widget: Any, text: str, start: int, direction: int) -> int | None:
    """The first row from ``start`` on (wrapping) whose text holds ``text`` (case-insensitive)."""
    count = row_count(widget)
    needle = text.lower()
    if not needle or count == 0:
        return None
    try:
        for i in range(count):
            index = (start + direction * i) % count
            if needle in row_text(widget, index).lower():
                return index
    except (IndexError, KeyError):  # the list was reloaded under a search running in a thread
        return None
    return None


def reverse_rows(table: DataTable) -> None:
    """Reverse the rows of a table as they stand (the reverse of whatever order it was sorted in); the
    cursor stays on its row.

    DataTable.sort hands its key function the rows in the order they were added (``table.rows``'
    order), once each and in turn, so the key can be each row's place now, negated: 50,000 rows in
    0.35 s, where clearing and re-adding them took 2.2 s of the event loop."""
    cursor = table.cursor_row
    places = iter([table.get_row_index(key) for key in table.rows])
    table.sort(key=lambda _cells: -next(places))
    if table.row_count and cursor >= 0:
        table.move_cursor(row=table.row_count - 1 - cursor, animate=False)


class TerminalHabits:
    """The habit actions for a Screen. The screen's own bindings for the same keys win over these."""

    _search_text = ""
    _search_target: Widget | None = None

    # -- which list ------------------------------------------------------------------------------

    def habit_target(self, *, focus: bool = True) -> Any | None:
        """The focused list; with nothing list-like focused, the first visible list (focused, so the eye
        and the keys agree)."""
        screen: Any = self
        if _is_list(screen.focused):
            return screen.focused
        for widget in screen.query("*"):
            if _is_list(widget) and widget.display and widget.visible and widget.focusable:
                if focus:
                    widget.focus()
                return widget
        return None

    # -- actions ---------------------------------------------------------------------------------

    def action_habit_move(self, delta: int) -> None:
        screen: Any = self
        was_focused = _is_list(screen.focused)
        target = self.habit_target()
        if target is None:
            return
        if was_focused:
            step(target, delta)
        else:  # the key only brought the eye there: stay on (or show) the row the list was on
            move_to(target, max(cursor_of(target), 0))

    def action_habit_jump(self, where: int) -> None:
        target = self.habit_target()
        if target is not None:
            move_to(target, where)

    def action_habit_search(self) -> None:
        screen: Any = self
        target = self.habit_target()
        if target is None:
            screen.notify("nothing to search on this screen: / searches a list or a table", severity="warning")
            return
        for old in screen.query(SearchBar):
            old.remove()
        self._search_target = target
        screen.mount(SearchBar(self._search_text, origin=max(cursor_of(target), 0)))

    def action_habit_next(self, direction: int) -> None:
        screen: Any = self
        target = self._search_target if self._search_target is not None and self._search_target.is_attached \
            else self.habit_target()
        if target is None:
            return
        if not self._search_text:
            own = "slash" in type(screen)._merged_bindings.key_to_bindings and not any(
                b.id == "nav.search" for b in type(screen)._merged_bindings.key_to_bindings["slash"])
            screen.notify("n / N repeat a search made with / in a list" + (" (on this screen / is its own key)"
                          if own else ": press / and type what to find"), severity="information")
            return
        target.focus()
        self._search(target, self._search_text, cursor_of(target) + direction, direction)

    def _search(self, target: Any, text: str, start: int, direction: int) -> None:
        """Move to the next row holding ``text``; a long list is searched in a thread (a million orphan
        lines take seconds), so the screen keeps answering."""
        if row_count(target) <= SEARCH_INLINE_ROWS:
            self._found(target, text, find(target, text, start, direction))
            return
        screen: Any = self
        screen.notify(f"searching {row_count(target):,} rows for {text!r}…", timeout=3)

        async def in_thread() -> None:
            self._found(target, text, await asyncio.to_thread(find, target, text, start, direction))

        screen.run_worker(in_thread(), group="habit-search", exclusive=True, exit_on_error=False)

    def _found(self, target: Any, text: str, index: int | None) -> None:
        screen: Any = self
        if index is None:
            screen.notify(f"no row holds {text!r}", severity="warning")
        elif target.is_attached:
            move_to(target, index)

    def action_habit_reverse(self) -> None:
        """A screen that keeps its own order (``sort_reverse`` and ``render_rows``) flips it; otherwise the
        focused table's rows are reversed as they stand."""
        screen: Any = self
        if isinstance(getattr(screen, "sort_reverse", None), bool) and callable(getattr(screen, "render_rows", None)):
            screen.sort_reverse = not screen.sort_reverse
            screen.render_rows()
            return
        target = self.habit_target()
        if isinstance(target, DataTable):
            reverse_rows(target)
        else:
            screen.notify("O reverses a table's order: focus a table first", severity="warning")

    # -- the search bar's messages -----------------------------------------------------------------

    def on_search_bar_changed(self, message: SearchBar.Changed) -> None:
        """As you type: the cursor goes to the first match from where the search started."""
        target = self._search_target
        if target is None or not target.is_attached or row_count(target) > SEARCH_INLINE_ROWS:
            return  # a long list is searched on Enter only, in a thread
        found = find(target, message.text, message.origin, 1)
        if found is not None:
            move_to(target, found)

    def on_search_bar_done(self, message: SearchBar.Done) -> None:
        target = self._search_target
        if target is None or not target.is_attached:
            return
        target.focus()
        if message.text is None:
            move_to(target, message.origin)  # Esc: back where the search started
        elif message.text:
            self._search_text = message.text
            self._search(target, message.text, message.origin, 1)  # as typed, or (a long list) now

    # -- Home / End in a table ---------------------------------------------------------------------

    def habit_key(self, event: events.Key) -> bool:
        """Home/End in a row table go to the first/last row, not sideways (the table's own Home/End
        scroll to the first/last column); in a list without Home/End of its own (a Tree) too. Called from
        the screen's on_key, which runs before the focused widget's bindings. True when it took the key."""
        screen: Any = self
        focused = screen.focused
        if event.key not in ("home", "end") or not _is_list(focused):
            return False
        row_table = isinstance(focused, DataTable) and focused.cursor_type == "row"
        if row_table or event.key not in focused._bindings.key_to_bindings:  # a Tree has no Home/End of its own
            event.stop()
            event.prevent_default()
            move_to(focused, 0 if event.key == "home" else -1)
            return True
        return False
