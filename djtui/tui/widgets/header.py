"""The header every screen shows: screen, server, user, flavor/version, config, read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from djtui.tui.context import AppContext


class AppHeader(Static):
    DEFAULT_CSS = """
    AppHeader {
        dock: top;
        height: 1;
        background: $primary-background;
        color: $text;
        padding: 0 1;
    }
    """

    def __init__(self, title: str):
        super().__init__(id="app-header")
        self.title_text = title

    def on_mount(self) -> None:
        self.refresh_info()
        self.call_after_refresh(self.refresh_info)  # again once the width is known

    def on_resize(self) -> None:
        self.refresh_info()

    def refresh_info(self) -> None:
        """READ-ONLY and a database that does not answer come right after the title, so no width can
        cut them off; then the line is made
        narrower until it fits: the config path with ~ for home, then its file name, then tighter
        separators."""
        ctx: AppContext | None = getattr(self.app, "ctx", None)  # None in a bare App (widget tests)
        width = self.size.width or 1000  # the content area: the padding is already left out
        for sep, prefix in (("  │  ", "config: "), (" │ ", "")):
            t = Text()
            t.append("djtui", style="bold")
            t.append(f" · {self.title_text}")
            if ctx is None:
                break
            if ctx.readonly:
                t.append("  READ-ONLY", style="bold reverse yellow")
            wait = ctx.db_wait
            if wait is not None and ctx.db_answering is False:
                t.append(f"  database not answering ({int(wait)} s)", style="bold reverse red")
            elif wait is not None and ctx.db_answering is True:
                t.append(f"  database busy ({int(wait)} s)", style="bold yellow")
            t.append(sep)
            if ctx.server_info is not None:
                t.append(f"{ctx.db_settings.user}@{ctx.db_settings.address}", style="bold")
                t.append(f"{'  ' if prefix else ' '}{ctx.server_info.label}")  # tighter in the second pass
            elif ctx.db_error is not None:
                t.append("database unreachable", style="bold red")
            else:
                t.append(f"connecting to {ctx.db_settings.address if ctx.db_settings else '…'}", style="italic")
            t.append(sep)
            room = width - t.cell_len - len(prefix)
            path = _fit_path(ctx.config.label, room)
            t.append(f"{prefix}{path}", style="dim")
            if t.cell_len <= width:
                break
        self.update(t)


def _fit_path(label: str, room: int) -> str:
    """The config path as it fits in ``room`` cells: whole, with ~ for home, or the file name."""
    import os

    home = os.path.expanduser("~")
    short = "~" + label[len(home):] if home not in ("", "/") and label.startswith(home + "/") else label
    if label.startswith("("):  # "(no config file)": no path to shorten, shorter words instead
        return next((t for t in (label, "(no config)", "(none)") if len(t) <= room), "(none)")
    for text in (label, short):
        if len(text) <= room:
            return text
    return os.path.basename(label) or label
