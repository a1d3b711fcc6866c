"""The detail pane of one session: each side's files and size, what differs, what DataJoint lacks."""

from __future__ import annotations

from rich.markup import escape
from textual.widgets import Static

from djtui.domain.sessions import SessionStatus
from djtui.domain.units import human_bytes


def _mark(ok: bool) -> str:
    return "[green]✓[/]" if ok else "[red]✗[/]"


def detail_text(st: SessionStatus) -> str:
    """Markup for one session; every value from disk or the database is escaped."""
    lines = [f"[b]{escape(st.key.participant_id)} {st.key.date_str}[/b]  "
             f"(database participant {escape(st.db_participant)})", ""]
    if st.dj.imported:
        lines.append(f"{_mark(True)} DataJoint: imported")
    else:
        what = ", ".join(st.dj.missing) or st.dj.error or "unknown"
        lines.append(f"{_mark(False)} DataJoint: missing {escape(what)}")
    src = f"{st.source.count} files, {human_bytes(st.source.bytes)}, {st.videos} videos" \
        if st.source.exists else "missing"
    lines.append(f"  Source  {escape(st.source_path)}")
    lines.append(f"          {src}")
    if st.source.special:
        lines.append(f"  [yellow]⚠ special files (not copied): {escape(', '.join(st.source.special[:5]))}[/]")
    for d in st.destinations:
        lines.append("")
        if d.mount == "hung":
            lines.append(f"[yellow]⚠ {escape(d.name)}: not answering (stale mount?)[/]")
            lines.append("  remount it: sudo umount -l MOUNT && sudo mount MOUNT")
            continue
        if d.mount != "ok":
            lines.append(f"{_mark(False)} {escape(d.name)}: {escape(d.detail or d.mount)}")
            continue
        lines.append(f"{_mark(d.backup)} {escape(d.name)}  {escape(d.path)}")
        if d.listing is not None and d.listing.exists:
            lines.append(f"          {d.listing.count} files, {human_bytes(d.listing.bytes)}")
        if d.comparison is not None:
            lines.append(f"  {_mark(d.comparison.ok)} compare: {escape(d.comparison.summary())}")
        if d.backup:
            state = "current" if not d.drift else "; ".join(d.drift[:4])
            lines.append(f"  {_mark(not d.drift)} verification: {escape(state)}")
    lines.append("")
    if st.safe:
        lines.append("[green b]Safe to delete[/]")
    else:
        lines.append("[red b]Not safe to delete:[/]")
        lines += [f"  • {escape(r)}" for r in st.reasons_unsafe()]
    return "\n".join(lines)


class SessionDetail(Static):
    DEFAULT_CSS = """
    SessionDetail { width: 1fr; height: 1fr; border: round $primary; padding: 0 1; overflow-y: auto; }
    """

    def show(self, status: SessionStatus | None) -> None:
        self.update(detail_text(status) if status is not None else "no session selected")
