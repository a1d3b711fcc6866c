"""The command log screen: every SQL statement and external command djtui ran, credentials masked."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from djtui.services import commandlog


class CommandLogScreen(Screen):
    """Every SQL statement and external command, credentials masked."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", id="log.back"),
                Binding("r", "reload", "Refresh", id="log.refresh")]

    def compose(self) -> ComposeResult:
        yield Static("[b]Command log[/b]: what djtui ran (credentials masked)")
        yield DataTable(id="log", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("time", "kind", "statement")
        self.action_reload()

    def action_reload(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for e in commandlog.entries()[-1000:]:
            table.add_row(time.strftime("%H:%M:%S", time.localtime(e.when)), e.kind, e.text[:300])
        if table.row_count:
            table.move_cursor(row=table.row_count - 1)


