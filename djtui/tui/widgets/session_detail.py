"""The detail pane of one session: each side's files and size, what differs, what DataJoint lacks.

The verdict (safe or not, and why) comes first: at 80x24 the pane has room for a dozen lines,
and the reasons are what an operator opens it for. The pane scrolls (focus it, then arrows/PageDown).
"""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from djtui.domain.sessions import BACKUP_COMPLETE, BACKUP_PARTIAL, SessionStatus, plural
from djtui.domain.units import human_bytes


def _mark(ok: bool) -> str:
    return "[green]✓[/]" if ok else "[red]✗[/]"


def detail_text(st: SessionStatus) -> str:
    """Markup for one session; every value from disk or the database is escaped."""
    lines = [f"[b]{escape(st.key.participant_id)} {st.key.date_str}[/b]  "
             f"(database participant {escape(st.db_participant)})"]
    if not st.local:
        lines.append("[yellow]not on local disk[/]: only in the database or at a destination; "
                     "Safe does not apply, nothing to delete")
    elif st.safe:
        lines.append("[green b]Safe to delete[/]")
    else:
        lines.append("[red b]Not safe to delete:[/]")
        lines += [f"  • {escape(r)}" for r in st.reasons_unsafe()]
    lines.append("")
    if st.dj.imported:
        lines.append(f"{_mark(True)} DataJoint: imported")
    else:
        what = ", ".join(st.dj.missing) or st.dj.error or "unknown"
        lines.append(f"{_mark(False)} DataJoint: missing {escape(what)}")
    src = f"{plural(st.source.count, 'file')}, {human_bytes(st.source.bytes)}, {plural(st.videos, 'video')}" \
        if st.source.exists else "not on local disk"
    lines.append(f"  Source  {escape(st.source_path)}")
    lines.append(f"          {src}")
    if st.source.special:
        lines.append(f"  [yellow]⚠ special files (not copied): {escape(', '.join(st.source.special[:5]))}[/]")
    for d in st.destinations:
        lines.append("")
        if d.mount == "hung":
            lines.append(f"[yellow]⚠ {escape(d.name)}: not answering (stale mount?)[/]")
            if not st.local:  # otherwise the hint is among the reasons at the top: said once
                lines.append(f"  {escape(d.remount_hint)}")
            continue
        if d.mount != "ok":
            lines.append(f"{_mark(False)} {escape(d.name)}: {escape(d.detail or d.mount)}")
            continue
        state = d.backup_state
        if state == BACKUP_COMPLETE:
            head = f"{_mark(True)} {escape(d.name)}: complete"
        elif state == BACKUP_PARTIAL:
            head = f"[yellow]⚠[/] {escape(d.name)}: partial, {d.backup_files} of {plural(st.source.count, 'file')}"
        else:
            head = f"{_mark(False)} {escape(d.name)}: no backup"
        lines.append(head)
        lines.append(f"  {escape(d.path)}")
        if d.listing is not None and d.listing.exists:
            lines.append(f"          {plural(d.listing.count, 'file')}, {human_bytes(d.listing.bytes)}")
        if d.comparison is not None:
            lines.append(f"  {_mark(d.comparison.ok)} compare: {escape(d.comparison.summary())}")
        if d.comparison is not None and st.local:
            verdict = "current" if not d.drift else "; ".join(d.drift[:4])
            lines.append(f"  {_mark(not d.drift)} verification: {escape(verdict)}")
    return "\n".join(lines)


class SessionDetail(Static):
    DEFAULT_CSS = """
    SessionDetail { width: 1fr; height: auto; }
    """

    def show(self, status: SessionStatus | None) -> None:
        self.update(detail_text(status) if status is not None else "no session selected")


class SessionDetailPane(VerticalScroll, can_focus=True):
    """The scrolling frame around ``SessionDetail``: Tab (or enter at narrow sizes) focuses it, arrows scroll."""

    DEFAULT_CSS = """
    SessionDetailPane { width: 1fr; height: 1fr; border: round $primary; padding: 0 1; }
    SessionDetailPane:focus { border: round $accent; }
    """

    def compose(self) -> ComposeResult:
        yield SessionDetail("")

    def show(self, status: SessionStatus | None) -> None:
        self.query_one(SessionDetail).show(status)
