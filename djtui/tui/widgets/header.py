"""The header every screen shows: screen, server, user, flavor/version, config, read-only."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


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

    def refresh_info(self) -> None:
        ctx = getattr(self.app, "ctx", None)
        t = Text()
        t.append("djtui", style="bold")
        t.append(f" · {self.title_text}")
        if ctx is None:
            self.update(t)
            return
        t.append("  │  ")
        if ctx.server_info is not None:
            t.append(f"{ctx.db_settings.user}@{ctx.db_settings.address}", style="bold")
            t.append(f"  {ctx.server_info.label}")
        elif ctx.db_error is not None:
            t.append("database unreachable", style="bold red")
        else:
            t.append(f"connecting to {ctx.db_settings.address if ctx.db_settings else '…'}", style="italic")
        t.append("  │  ")
        t.append(f"config: {ctx.config.label}", style="dim")
        if ctx.readonly:
            t.append("  READ-ONLY", style="bold reverse yellow")
        self.update(t)
