"""The Export screen's load dialog: leaves from Spyglass's export log (a paper) or from a leaves file,
as ``djtui export plan --paper ID [--analysis ID] [--export-log SCHEMA]`` and ``--leaves FILE`` read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


@dataclass(frozen=True)
class LoadChoice:
    paper: str = ""  # a paper id of the export log, or ""
    analysis: str | None = None
    export_log: str = "common_usage"
    file: Path | None = None  # a leaves file (djtui.record_export's JSON), or None


class ExportLoadDialog(ModalScreen[LoadChoice | None]):
    """A paper id (with an optional analysis and the log's schema) or a leaves file; Load or Cancel."""

    DEFAULT_CSS = """
    ExportLoadDialog { align: center middle; }
    ExportLoadDialog > Vertical {
        width: 90%; max-width: 90; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    ExportLoadDialog .title { text-style: bold; color: $accent; }
    ExportLoadDialog .field { margin: 1 0 0 0; color: $text-muted; }
    ExportLoadDialog #load-error { color: $error; height: auto; }
    ExportLoadDialog Horizontal { height: auto; align: right middle; margin: 1 0 0 0; }
    ExportLoadDialog #load-paper-row { margin: 0; align: left middle; }
    ExportLoadDialog #load-paper-row Input { width: 1fr; margin: 0 1 0 0; }
    ExportLoadDialog Button { margin: 0 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export_load.cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="load-box"):
            yield Label("Load leaves", classes="title")
            yield Label("A paper of Spyglass's export log (--paper), optionally one analysis (--analysis)",
                        classes="field")
            with Horizontal(id="load-paper-row"):
                yield Input(placeholder="paper id", id="load-paper", compact=True)
                yield Input(placeholder="analysis id (all)", id="load-analysis", compact=True)
                yield Input("common_usage", placeholder="log schema", id="load-log", compact=True)
            yield Label("or a leaves file (--leaves: JSON written by djtui.record_export)", classes="field")
            yield Input(placeholder="path of the leaves file", id="load-file", compact=True)
            yield Static("", id="load-error")
            with Horizontal():
                yield Button("Cancel", id="load-cancel", compact=True)
                yield Button("Load", id="load-ok", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#load-paper", Input).focus()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self._load()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "load-ok":
            self._load()
        else:
            self.dismiss(None)

    def _load(self) -> None:
        paper = self.query_one("#load-paper", Input).value.strip()
        analysis = self.query_one("#load-analysis", Input).value.strip() or None
        log = self.query_one("#load-log", Input).value.strip() or "common_usage"
        file = self.query_one("#load-file", Input).value.strip()
        error = self.query_one("#load-error", Static)
        if bool(paper) == bool(file):
            error.update(Text("give a paper id or a leaves file (one of them)"))
            return
        if analysis and not paper:
            error.update(Text("an analysis belongs to a paper: give the paper id too"))
            return
        path = Path(file).expanduser() if file else None
        if path is not None and not path.is_file():
            error.update(Text(f"no such file: {path}"))
            return
        self.dismiss(LoadChoice(paper, analysis, log, path))

    def action_cancel(self) -> None:
        self.dismiss(None)
