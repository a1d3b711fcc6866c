"""The floor of a first frame: a bare Textual app with the widgets of djtui's first screen (a header
line, three inputs, a 9-column table, a status line and a footer of 10 keys) and nothing of djtui's.

Run by ``bench startup`` under a pseudo-terminal; it draws "config:" like djtui's header does.
"""

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Input, Static


class Floor(App):
    BINDINGS = [Binding(k, "bell", k.upper()) for k in "abcdefghij"]

    def compose(self) -> ComposeResult:
        yield Static("djtui  config: (none)")
        with Horizontal():
            yield Input(placeholder="from YYYYMMDD")
            yield Input(placeholder="to YYYYMMDD")
            yield Input(placeholder="filter")
        table = DataTable()
        table.add_columns("", "Date", "Participant", "Videos", "Size", "DJ", "Backup", "Verified", "Safe")
        yield table
        yield Static("scanning sessions…")
        yield Footer()


if __name__ == "__main__":
    Floor().run()
