"""The Export screen's write dialog: which format, where, and whether to strip the default charsets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

FORMATS = {
    "sql": "sql     export.sql to load with the mysql client",
    "script": "script  export.sh: mysqldump runs on a machine of yours",
    "docker": "docker  a MySQL 8.0 container that loads the export",
}


@dataclass(frozen=True)
class WriteChoice:
    fmt: str  # sql, script or docker (djtui.services.export.write_plan's fmt)
    out_dir: Path
    strip: bool | None  # None: the format has no such option (script)


def check_out_dir(text: str) -> tuple[Path | None, str]:
    """The directory typed, or None and why it cannot be written to (an export never goes over another)."""
    if not text.strip():
        return None, "type the directory to write to"
    path = Path(text.strip()).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        if path.exists() and not path.is_dir():
            return None, f"{path} is a file: choose a new directory"
        if path.is_dir() and any(path.iterdir()):
            return None, f"{path} is not empty: choose a new directory"
    except OSError as exc:
        return None, f"cannot use {path}: {exc.strerror or exc}"
    return path, ""


class ExportWriteDialog(ModalScreen[WriteChoice | None]):
    """Format (sql / script / docker), output directory, strip-charset switch; Write or Cancel.

    The strip switch starts at the config's ``export.strip_charset``; choosing docker turns it on
    (MySQL 8.0 may not know MariaDB's collations), and script has no such option.
    """

    DEFAULT_CSS = """
    ExportWriteDialog { align: center middle; }
    ExportWriteDialog > Vertical {
        width: 90%; max-width: 90; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    ExportWriteDialog .title { text-style: bold; color: $accent; }
    ExportWriteDialog .field { margin: 1 0 0 0; color: $text-muted; }
    ExportWriteDialog RadioSet { width: 1fr; }
    ExportWriteDialog #write-error { color: $error; height: auto; }
    ExportWriteDialog Horizontal { height: auto; align: right middle; margin: 1 0 0 0; }
    ExportWriteDialog Button { margin: 0 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export_write.cancel")]

    def __init__(self, default_dir: Path, strip_default: bool, summary: str = ""):
        super().__init__()
        self.default_dir = default_dir
        self.strip_default = strip_default
        self.summary = summary
        self.fmt = "sql"

    def compose(self) -> ComposeResult:
        with Vertical(id="write-box"):
            yield Label("Write the export", classes="title")
            if self.summary:
                yield Static(self.summary, markup=False, id="write-summary")
            yield Label("Format", classes="field")
            with RadioSet(id="write-format", compact=True):
                for fmt, text in FORMATS.items():
                    yield RadioButton(text, value=fmt == "sql", id=f"write-{fmt}")
            yield Label("Output directory (new or empty)", classes="field")
            yield Input(str(self.default_dir), id="write-dir", compact=True)
            yield Checkbox("strip the default charsets and collations of the tables", self.strip_default,
                           id="write-strip", compact=True, classes="field")
            yield Static("", id="write-error")
            with Horizontal():
                yield Button("Cancel", id="write-cancel", compact=True)
                yield Button("Write", id="write-ok", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#write-ok", Button).focus()

    @on(RadioSet.Changed, "#write-format")
    def _format(self, event: RadioSet.Changed) -> None:
        self.fmt = (event.pressed.id or "write-sql").removeprefix("write-")
        strip = self.query_one("#write-strip", Checkbox)
        strip.disabled = self.fmt == "script"  # mysqldump writes the DDL as the server has it
        strip.value = True if self.fmt == "docker" else (False if self.fmt == "script" else self.strip_default)

    @on(Input.Submitted, "#write-dir")
    def _submitted(self) -> None:
        self._write()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "write-ok":
            self._write()
        else:
            self.dismiss(None)

    def _write(self) -> None:
        path, problem = check_out_dir(self.query_one("#write-dir", Input).value)
        error = self.query_one("#write-error", Static)
        if path is None:
            error.update(Text(problem))
            return
        error.update("")
        strip = None if self.fmt == "script" else self.query_one("#write-strip", Checkbox).value
        self.dismiss(WriteChoice(self.fmt, path, strip))

    def action_cancel(self) -> None:
        self.dismiss(None)
