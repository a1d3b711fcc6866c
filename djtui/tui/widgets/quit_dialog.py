"""The question asked when quitting would stop transfers, and what cancelling them leaves behind."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class QuitScreen(ModalScreen[bool]):
    """Quitting would stop transfers: ask first, and say what cancelling leaves behind."""

    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Vertical { width: 90%; max-width: 76; height: auto; border: thick $warning;
        background: $surface; padding: 1 2; }
    QuitScreen .title { text-style: bold; }
    """
    BINDINGS = [Binding("y", "dismiss(True)", "Quit and cancel them", id="quit.yes"),
                Binding("escape,n,q", "dismiss(False)", "Keep them running", id="quit.no")]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, classes="title", markup=False)
            yield Static("\nrsync is stopped and the jobs are marked cancelled; files it had copied stay as "
                         "rsync leaves them (t on Transfers retries a job).", markup=False)
            yield Static("\n[b]y[/b] quit and cancel them   [b]n[/b]/Esc keep them running")


def quit_question(jobs: list) -> str:
    """'2 transfers running: quit and cancel them?' (queued ones are named too)."""
    running = sum(j.state == "running" for j in jobs)
    queued = len(jobs) - running
    noun = "transfer" if len(jobs) == 1 else "transfers"
    them = "it" if len(jobs) == 1 else "them"
    if queued and running:
        what = f"{len(jobs)} {noun} running or queued ({running} running, {queued} queued)"
    else:
        what = f"{len(jobs)} {noun} {'running' if running else 'queued'}"
    return f"{what}: quit and cancel {them}?"


