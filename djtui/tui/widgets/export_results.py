"""What the Export screen shows of a counted plan: rows per table, and the stored files with their problems.

A problem (why a file could not be checked, a size that differs) is a numbered note below the
files table, once per distinct text: usually one store's problem is every one of its files' problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable, Static


def fill_counts(table: DataTable, counts: Sequence[Any]) -> None:
    """One row per table of the plan (``TableCount``): the number first, then where the rows come from."""
    table.clear()
    for c in counts:
        table.add_row(str(c.rows), Text(c.table), Text("; ".join(c.sources)))


def fill_files(table: DataTable, problems: Static, files: Sequence[Any]) -> None:
    """Every needed file (``NeededFile``) with its mark; the problems as numbered notes below."""
    from djtui.services.export import problem_notes

    notes = problem_notes(files)
    table.clear()
    for f in files:
        style = "bold red" if f.exists is False else ("yellow" if f.problem or f.exists is None else "")
        table.add_row(Text(f.mark(notes), style=style), "" if f.size is None else str(f.size), Text(f.store),
                      Text(f.path), Text(f.table))
    problems.update(Text("\n".join(f"[{n}] {text}" for text, n in notes.items())))
