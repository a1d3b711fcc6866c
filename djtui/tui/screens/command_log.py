"""The command log screen: every SQL statement and external command djtui ran, credentials masked.

The same terminal habits as every other screen (tui.navigation): j/k, g/G and Home/End move, / searches
the statements (n/N the next/previous match), O reverses the order. The table cuts a long statement to its
column; the line under it shows the highlighted one whole, wrapped.
"""

from __future__ import annotations

import time
from dataclasses import replace

from rich.markup import escape
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from djtui.services import commandlog
from djtui.tui.navigation import HABIT_BINDINGS, TerminalHabits

SHOWN_HABITS = ("nav.search", "nav.next")  # in the footer here: the log has no keys of its own to crowd it
SHOWN = 1000  # the newest entries
CELL = 300  # the statement column's width: a cell holds the whole statement (/ finds any part of it) but
# shows this much; the detail line shows the highlighted one whole


class CommandLogScreen(TerminalHabits, Screen):
    """Every SQL statement and external command, credentials masked."""

    BINDINGS = [*(replace(b, show=True) if b.id in SHOWN_HABITS else b for b in HABIT_BINDINGS),
                Binding("escape,q", "app.pop_screen", "Back", id="log.back"),
                Binding("r", "reload", "Refresh", id="log.refresh")]

    def compose(self) -> ComposeResult:
        yield Static("[b]Command log[/b]: what djtui ran (credentials masked) · / search, n/N next/previous, "
                     "j/k g/G move", id="log-title")
        yield DataTable(id="log", cursor_type="row", zebra_stripes=True)
        yield Static("", id="log-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        self.query_one(DataTable).focus()

    def on_key(self, event: events.Key) -> None:
        """Home/End go to the first/last entry (the table's own would scroll sideways)."""
        self.habit_key(event)

    _texts: dict[str, str] = {}

    def action_reload(self) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        shown = commandlog.entries()[-SHOWN:]
        self._texts = {str(i): e.text for i, e in enumerate(shown)}
        flat = [" ".join(e.text.split()) for e in shown]
        table.add_column("time")
        table.add_column("kind")
        table.add_column("statement", width=min(CELL, max(map(len, flat), default=9)))
        for i, (e, text) in enumerate(zip(shown, flat, strict=True)):
            table.add_row(time.strftime("%H:%M:%S", time.localtime(e.when)), e.kind, text, key=str(i))
        if table.row_count:
            table.move_cursor(row=table.row_count - 1)
        else:
            self.query_one("#log-detail", Static).update("(nothing run yet)")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if event.cursor_row < 0 or event.cursor_row >= table.row_count:
            return
        when, kind, _cell = table.get_row_at(event.cursor_row)
        text = self._texts.get(event.row_key.value or "", _cell)  # by key: O reverses the rows
        self.query_one("#log-detail", Static).update(
            f"[dim]{event.cursor_row + 1}/{table.row_count} · {when} · {kind}[/dim] {escape(text)}")
