"""A virtual list of orphan items: only the visible lines are ever rendered.

DataTable costs O(rows) per change, which a store with a million orphans
cannot afford; this view keeps the items in a plain list and draws
``render_line`` on demand, so scrolling stays constant-time.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Mapping, Sequence

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from djtui.domain.stores import OrphanItem
from djtui.domain.units import human_bytes
from djtui.services.orphans.model import line_of as orphan_line


def human_size(n: int) -> str:
    return human_bytes(n, compact=True)


def human_age(mtime: float | None, now: float) -> str:
    if mtime is None:
        return "-"
    s = max(0.0, now - mtime)
    if s < 3600:
        return f"{int(s // 60)}m"
    if s < 86400 * 2:
        return f"{s / 3600:.0f}h"
    return f"{s / 86400:.0f}d"


def middle_truncate(text: str, width: int) -> str:
    """``dir:/very/long/path/analysis`` -> ``dir:/…/analysis``: the kind and the last part stay readable."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = max(1, (width - 1) // 3)
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def source_label(name: str, width: int) -> str:
    """A source name in ``width`` columns: its kind whole (``dir:``, ``external:``) and the end of the rest
    (a path's last part, a store's name), cut in the middle (``dir:…/analysis``)."""
    kind, sep, rest = name.partition(":")
    if len(name) <= width or not sep or width < len(kind) + 4:
        return middle_truncate(name, width)
    return kind + ":…" + rest[len(rest) - (width - len(kind) - 2):]


def line_of(item: OrphanItem, group: Sequence[OrphanItem] | None = None) -> tuple[str, int, str]:
    """(reasons, size, size as shown) of one line: all its reasons, its largest size; a row shows "-"."""
    reason, size = orphan_line(item, tuple(group) if group is not None else None)
    return reason, size or 0, "-" if size is None else human_size(size)


def row_text(width: int, ident: str, size: str, age: str, reason: str) -> str:
    """One line of the list (without the 2-column mark), shared with the header so columns line up."""
    width -= 2
    right = f" {size:>7} {age:>5} {reason:<16}" if width >= 60 else f" {size:>7} {reason:<16}"
    room = max(1, width - len(right))
    ident = middle_truncate(ident, room)  # start and end stay: two keys never read the same
    return f"{ident:<{room}}{right}"[:width]


class OrphanListHeader(Static):
    """The column titles above an :class:`OrphanList`, laid out by the same rule."""

    def render(self) -> str:
        width = self.size.width - 2  # the list's vertical scrollbar
        return "  " + row_text(width, "path / key", "size", "age", "reason")


class OrphanList(ScrollView, can_focus=True):
    """The items of one source: cursor, space to select, a header line drawn by the screen."""

    DEFAULT_CSS = """
    OrphanList { height: 1fr; overflow-x: hidden; }
    OrphanList:focus { background-tint: $accent 6%; }
    OrphanListHeader { height: 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False, id="orphans.list.up"),
        Binding("down", "move(1)", "Down", show=False, id="orphans.list.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="orphans.list.pageup"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="orphans.list.pagedown"),
        Binding("home", "jump(0)", "First", show=False, id="orphans.list.home"),
        Binding("end", "jump(-1)", "Last", show=False, id="orphans.list.end"),
        Binding("space", "toggle", "Select", id="orphans.list.select"),
        Binding("a", "select_all", "Select all", id="orphans.list.select_all"),
    ]

    class SelectionChanged(Message):
        def __init__(self, count: int, nbytes: int):
            super().__init__()
            self.count = count
            self.bytes = nbytes

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.items: Sequence[OrphanItem] = ()
        self.more: Mapping[int, tuple[OrphanItem, ...]] = {}  # line -> every item of an object with several reasons
        self.selected: set[int] = set()
        self.cursor = 0
        self._now = time.time()

    def set_items(self, items: Sequence[OrphanItem], more: Mapping[int, tuple[OrphanItem, ...]] | None = None) -> None:
        """One line per orphan; ``more`` lists, by line, the items of an object listed under several reasons."""
        # A million items are long-lived: left to the cyclic collector, each full collection walks them all
        # (0.4-0.8 s, freeing nothing) and lands in a keypress. Frozen, the collector skips them; the previous
        # load is unfrozen first so what it left behind is collectable again rather than kept forever.
        gc.unfreeze()
        self.items = items
        self.more = more or {}
        self.selected = set()
        self.cursor = 0
        self._now = time.time()
        self.virtual_size = Size(self.size.width, len(items))
        self.scroll_to(y=0, animate=False)
        self.refresh()
        self.post_message(self.SelectionChanged(0, 0))
        gc.freeze()

    def selected_items(self) -> list[OrphanItem]:
        """Every item of the selected lines (all reasons of an object that has several)."""
        return [item for i in sorted(self.selected) for item in self.more.get(i, (self.items[i],))]

    def line(self, index: int) -> tuple[str, str, str, str]:
        """One line's cells as the eye reads them (path or key, size, age, reasons): what search matches."""
        item = self.items[index]
        reason, _size, shown = line_of(item, self.more.get(index))
        return item.ident, shown, human_age(item.mtime, self._now), reason

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self.scroll_offset.y + y
        if index >= len(self.items):
            return Strip.blank(width, Style())  # a None style crashes Textual's NO_COLOR (Monochrome) filter
        ident, shown, age, reason = self.line(index)
        mark = "●" if index in self.selected else " "
        text = mark + " " + row_text(width, ident, shown, age, reason)
        style = Style(reverse=True) if index == self.cursor and self.has_focus else (
            Style(bold=True) if index == self.cursor else Style())
        if index in self.selected:
            style += Style(color="yellow")
        return Strip([Segment(text[:width].ljust(width), style)], width)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.items))

    def _set_cursor(self, index: int) -> None:
        if not self.items:
            return
        old = self.cursor
        self.cursor = max(0, min(len(self.items) - 1, index))
        top, height = self.scroll_offset.y, self.scrollable_content_region.height
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)
        self._refresh_index(old)
        self._refresh_index(self.cursor)

    def _refresh_index(self, index: int) -> None:
        y = index - self.scroll_offset.y
        if 0 <= y < self.size.height:
            self.refresh_line(y)
        else:
            self.refresh()

    def action_move(self, delta: int) -> None:
        self._set_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._set_cursor(self.cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_jump(self, where: int) -> None:
        self._set_cursor(len(self.items) - 1 if where < 0 else where)

    def action_toggle(self) -> None:
        if not self.items:
            return
        self.selected ^= {self.cursor}
        self._refresh_index(self.cursor)
        self._announce()
        self._set_cursor(self.cursor + 1)

    def action_select_all(self) -> None:
        """Toggle: select every item, or clear the selection when everything is selected."""
        self.selected = set() if len(self.selected) == len(self.items) else set(range(len(self.items)))
        self.refresh()
        self._announce()

    def _announce(self) -> None:
        size = sum(line_of(self.items[i], self.more.get(i))[1] for i in self.selected)
        self.post_message(self.SelectionChanged(len(self.selected), size))

    def on_click(self, event) -> None:
        self._set_cursor(self.scroll_offset.y + event.y)
