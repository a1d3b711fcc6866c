"""A DataTable whose rows are replaced in one go, built off the event loop.

``DataTable.add_row`` costs O(columns) work per row on the loop, and the table then measures every new
cell when idle: 50,000 sessions took seconds of the event loop per filter keystroke. Here the rows
(keys, cell dicts, row records, line offsets, column widths) are built by :func:`build_rows`, a pure
function a worker thread can run, and :meth:`SessionTable.install` swaps them in with a few
assignments. The widget stays a DataTable: its cursor, keys, messages and the terminal habits
(djtui/tui/navigation.py) work unchanged.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey, Row, RowKey


@dataclass
class BuiltRows:
    """Everything :meth:`SessionTable.install` needs, made without touching the widget."""

    data: dict
    rows: dict
    locations: TwoWayDict
    y_offsets: list
    widths: list[int]


def _widest(column: Sequence[object]) -> int:
    """The widest cell of a column, measuring each distinct cell once (the marks are shared objects)."""
    texts = {c.plain if isinstance(c, Text) else str(c) for c in {id(c): c for c in column}.values()}
    return max(map(cell_len, texts), default=0)


def cell_widths(cells: Sequence[object]) -> tuple[int, ...]:
    """Each cell's width on screen (what a column must be to show it whole)."""
    return tuple(cell_len(c.plain if isinstance(c, Text) else str(c)) for c in cells)


def build_rows(columns: Sequence[str], rows: Sequence[tuple[str, tuple]]) -> BuiltRows:
    """The table's internal records for ``rows`` ((key, cells) pairs, one line each)."""
    col_keys = [ColumnKey(c) for c in columns]
    dicts = [dict(zip(col_keys, cells, strict=True)) for _, cells in rows]
    widths = [cell_len(c) for c in columns]
    if rows:
        cols = list(zip(*(cells for _, cells in rows), strict=True))
        widths = [max(w, _widest(col)) for w, col in zip(widths, cols, strict=True)]
    return assemble_rows([k for k, _ in rows], dicts, widths)


def assemble_rows(keys: Sequence[str], dicts: list[dict], widths: Sequence[int]) -> BuiltRows:
    """The records from rows already made: each row's cell dict (ColumnKey -> cell) and the columns' widths.

    A caller that keeps each row's cells between builds (a filter keystroke picks rows again) hands
    copies of its dicts here and skips making cells, which was most of a 50,000-row build."""
    row_keys = [RowKey(k) for k in keys]
    data = dict(zip(row_keys, dicts, strict=True))
    records = {rk: Row(rk, 1) for rk in row_keys}
    locations = TwoWayDict(dict(zip(row_keys, range(len(row_keys)), strict=True)))
    offsets = [(rk, 0) for rk in row_keys]
    return BuiltRows(data, records, locations, offsets, list(widths))


def build_quietly(fn, *args):  # type: ignore[no-untyped-def]
    """``fn(*args)`` in a worker thread with the cyclic collector paused: the rows it allocates would
    otherwise set off full collections that hold the GIL (and so the event loop) for hundreds of ms."""
    was = gc.isenabled()
    gc.disable()
    try:
        return fn(*args)
    finally:
        if was:
            gc.enable()


def _release(old: list) -> None:
    """Drop the replaced rows a thousand at a time, so the GIL passes back to the loop between batches
    (freeing 50,000 rows in one go held it for tens of ms)."""
    for d in old:
        while d:
                for _ in range(min(1000, len(d))):
                    d.popitem()
    old.clear()


class SessionTable(DataTable):
    """A row table for tens of thousands of rows: :meth:`install` replaces every row at once."""

    natural_widths: list[int] = []  # each column's widest cell, as last installed
    caps: dict[int, int] = {}  # column index -> at most this wide (a longer cell is cut at the end)

    def cap_columns(self, caps: dict[int, int]) -> None:
        """Keep the columns in ``caps`` at most that wide, so a long value leaves the columns after it on screen."""
        self.caps = caps
        for i, (column, width) in enumerate(zip(self.ordered_columns, self.natural_widths, strict=False)):
            capped = min(width, caps.get(i, width))
            if column.content_width != capped:
                column.content_width = capped
                self._require_update_dimensions = True
                self.refresh()

    def install(self, built: BuiltRows, cursor_key: str | None = None) -> None:
        """Show ``built`` (from :func:`build_rows`); the cursor goes back to ``cursor_key`` if it is still there."""
        old = [self._data, self.rows, self._row_locations._forward, self._row_locations._reverse]
        self._data, self.rows, self._row_locations = {}, {}, TwoWayDict({})
        self._offset_cache.clear()  # the previous offsets: their row keys are also in ``old``
        self.clear()
        if sum(len(d) for d in old) > 1000:
            threading.Thread(target=_release, args=(old,), daemon=True, name="djtui-rows-release").start()
        self._data = built.data
        self.rows = built.rows
        self._row_locations = built.locations
        self.natural_widths = built.widths
        for i, (column, width) in enumerate(zip(self.ordered_columns, built.widths, strict=True)):
            column.content_width = min(width, self.caps.get(i, width))
        self._update_count += 1
        self._offset_cache[self._update_count] = built.y_offsets
        self._require_update_dimensions = True  # no new rows to measure: the virtual size only
        self.cursor_coordinate = self.cursor_coordinate
        self.check_idle()
        if cursor_key is not None:
            index = built.locations.get(RowKey(cursor_key))
            if index is not None:
                self.move_cursor(row=index, animate=False)
        self.refresh()
