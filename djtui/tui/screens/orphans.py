"""The Orphans screen: sources with counts, the items of one, quarantine, restore, purge.

Everything it knows comes from :class:`djtui.services.orphans.OrphanService`,
awaited in async workers on the database's thread pool; the screen never
builds SQL or touches a file. Acting needs a typed confirmation, and the
service re-scans under a lock before it moves anything.

A scan runs in the database's thread pool; ``c`` (or leaving the screen) sets the
scan's cancel event, which the service checks between batches, so a cancelled scan
stops its thread too instead of running on unseen.
"""

from __future__ import annotations

import threading
from functools import partial

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Label, ProgressBar, Static, TabbedContent, TabPane

from djtui.errors import OperationFailed, UserError
from djtui.services.orphans import CleanupPlan, OrphanService, ScanCancelled, ScanProgress, ScanResult, SourceInfo
from djtui.tui.screens.base import DjtuiScreen
from djtui.tui.widgets.confirm import ConfirmTyped
from djtui.tui.widgets.orphans_list import OrphanList, OrphanListHeader, human_size, middle_truncate, source_label


def _num(text: str) -> Text:
    """A count or a size, right-aligned so a column of them reads at a glance."""
    return Text(text, justify="right")


class ScanProgressed(Message):
    """Posted from a scan's threads (post_message is thread-safe): how far the running scan has come."""

    def __init__(self, progress: ScanProgress) -> None:
        super().__init__()
        self.progress = progress


class OrphansScreen(DjtuiScreen):
    SCREEN_TITLE = "Orphans"
    DEFAULT_CSS = """
    OrphansScreen #orphans-main { height: 1fr; }
    OrphansScreen #orphans-sources { width: 38%; min-width: 41; max-width: 70; height: 1fr; border-right: tall $panel; }
    OrphansScreen #orphans-sources DataTable { height: 1fr; }
    OrphansScreen #orphans-progress { height: 1; }
    OrphansScreen #orphans-right { width: 1fr; height: 1fr; }
    OrphansScreen .orphans-head { height: 1; color: $text-muted; padding: 0 1; }
    OrphansScreen #orphans-status { height: 1; padding: 0 1; }
    OrphansScreen #batches { height: 1fr; }
    """
    BINDINGS = [
        Binding("r", "rescan", "Rescan", id="orphans.rescan"),
        Binding("c", "cancel_scan", "Cancel scan", id="orphans.cancel_scan"),
        Binding("Q", "quarantine", "Quarantine", id="orphans.quarantine"),
        Binding("o", "tab('items')", "Items", id="orphans.tab_items"),
        Binding("z", "tab('quarantine')", "Quarantine tab", id="orphans.tab_quarantine"),
        Binding("R", "restore", "Restore batch", id="orphans.restore"),
        Binding("P", "purge", "Purge old batches", id="orphans.purge"),
        Binding("space", "open_items", "Items of the source", show=False, id="orphans.open_items"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, ScanResult] = {}
        self.failed: dict[str, str] = {}  # source -> why its last scan failed
        self._shown: tuple[str | None, int] = (None, 0)  # (source, id of its result) the items pane shows
        self.sources: list[SourceInfo] = []
        self.current: str | None = None
        self.cancel_event = threading.Event()
        self.scanning = False
        self.scan_cancelled = False  # the last scan was stopped before the end: rescan on return
        self.progress: ScanProgress | None = None  # the running source's last progress report
        self._scan_label = ""  # "<source> (2 of 5)" while a source is scanned

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="orphans-main"):
            with Vertical(id="orphans-sources"):
                yield Label("Sources", classes="orphans-head")
                yield ProgressBar(id="orphans-progress", show_eta=False, show_percentage=False)
                yield DataTable(id="sources", cursor_type="row", zebra_stripes=True)
            with Vertical(id="orphans-right"), TabbedContent(id="orphans-tabs", initial="items"):
                with TabPane("Items", id="items"):
                    yield OrphanListHeader()
                    yield OrphanList(id="orphan-list")
                with TabPane("Quarantine", id="quarantine"):
                    yield DataTable(id="batches", cursor_type="row", zebra_stripes=True)
        yield Static("waiting for the database…", id="orphans-status")

    def on_mount(self) -> None:
        super().on_mount()
        sources = self.query_one("#sources", DataTable)
        # counts first: at 80 columns a long source name would push them out of the pane
        sources.add_column("orphans", key="orphans", width=7)
        sources.add_column("bytes", key="bytes", width=8)
        sources.add_column("source", key="source")
        batches = self.query_one("#batches", DataTable)
        # the state next to the batch: at 80 columns the last columns are cut ("restore" for "restored")
        for col in ("batch", "state", "files", "bytes", "created", "source"):
            batches.add_column(col, key=col)

    def on_db_ready(self) -> None:
        self.scan_all()

    def _status(self, text: str) -> None:
        self.query_one("#orphans-status", Static).update(text)

    def _service(self, db) -> OrphanService:
        return OrphanService(self.ctx.config, db, audit=self.ctx.audit)

    # --- scanning ---------------------------------------------------------------

    def scan_all(self) -> None:
        """Start a scan of every source; a running one is cancelled first (its thread too)."""
        self.cancel_event.set()
        self.cancel_event = threading.Event()
        self._scan_worker(self.cancel_event)

    @work(exclusive=True, group="orphans-scan", exit_on_error=False)
    async def _scan_worker(self, cancel: threading.Event) -> None:
        self.scanning, self.scan_cancelled = True, False
        try:
            await self._scan_sources(cancel)
        finally:
            if cancel is self.cancel_event:  # not replaced by a newer scan meanwhile
                self.scanning = False

    async def _scan_sources(self, cancel: threading.Event) -> None:
        db = await self.ctx.wait_db()
        svc = self._service(db)
        self._status("finding sources…")
        self.sources = await db.run(svc.sources)
        table = self.query_one("#sources", DataTable)
        keep = self.highlighted_source() or self.current
        table.clear()
        self.results.clear()
        self.failed.clear()
        room = self._source_room()
        for s in self.sources:
            table.add_row(_num("…"), _num(""), source_label(s.name, room), key=s.name)
        # the cursor stays on the source it was on (by name); if that one is gone, the pane follows row 0
        names = [s.name for s in self.sources]
        self.show_source(keep if keep in names else (names[0] if names else None))
        bar = self.query_one("#orphans-progress", ProgressBar)
        bar.update(total=max(1, len(self.sources)), progress=0)
        if not self.sources:
            self._status("no sources: configure orphans.tables, orphans.directories or stores")
            return
        failed = 0
        for n, s in enumerate(self.sources):
            if cancel.is_set():
                self._cancelled(self.sources[n:])
                return
            self.progress, self._scan_label = None, f"{s.name} ({n + 1} of {len(self.sources)})"
            self._status(f"scanning {self._scan_label}; c cancels…")
            try:
                result = await db.run(partial(svc.scan, s, cancel, progress=self._post_progress))
            except ScanCancelled:
                self._cancelled(self.sources[n:])
                return
            except (UserError, OperationFailed, OSError) as exc:
                failed += 1
                table.update_cell(s.name, "orphans", _num("error"))
                self.notify(str(exc), title=f"scan of {s.name} failed", severity="error", timeout=10)
                self.failed[s.name] = str(exc)
                if self.highlighted_source() == s.name:
                    self.show_source(s.name)
            else:
                self.results[s.name] = result
                for w in result.warnings:
                    self.notify(w, title=s.name, severity="warning", timeout=15)
                table.update_cell(s.name, "orphans", _num(str(result.orphans)))
                table.update_cell(s.name, "bytes", _num(human_size(result.bytes)))
                if self.highlighted_source() == s.name:
                    self.show_source(s.name)
            bar.advance(1)
        total = sum(r.orphans for r in self.results.values())
        failures = f", {failed} failed" if failed else ""
        here = self.highlighted_source()
        # the totals first: a narrow terminal keeps the start of the line, and a source name can be long
        where = f"; {self.results[here].orphans} orphan(s) in {here}" if here in self.results else ""
        self._status(f"{len(self.sources)} source(s) scanned, {total} orphan(s){failures}{where}; "
                     "space selects, Q quarantines, z shows the quarantine")
        await self.load_batches()

    def _post_progress(self, progress: ScanProgress) -> None:
        """Called on the scan's threads: hand the report to the screen's own loop."""
        self.post_message(ScanProgressed(progress))

    @on(ScanProgressed)
    def _progressed(self, event: ScanProgressed) -> None:
        p = event.progress
        if not self._scan_label.startswith(f"{p.source} ("):
            return  # a late report of a source scanned before
        self.progress = p
        if self.scanning and not p.done and not self.cancel_event.is_set():
            self._status(f"scanning {self._scan_label}: {p.describe()}; c cancels…")

    def _source_room(self) -> int:
        """Columns the source name has in the sources pane (the counts keep theirs, 7 + 8, and padding)."""
        width = self.query_one("#sources", DataTable).scrollable_content_region.width
        return max(12, width - (7 + 2) - (8 + 2) - 2)

    def on_resize(self) -> None:
        """Names are cut in the middle to the pane's width (``dir:/…/analysis``), again when it changes."""
        table = self.query_one("#sources", DataTable)
        room = self._source_room()
        for s in self.sources:
            if s.name in table.rows:
                table.update_cell(s.name, "source", source_label(s.name, room), update_width=True)

    def _cancelled(self, left: list[SourceInfo]) -> None:
        self.scan_cancelled = True
        table = self.query_one("#sources", DataTable)
        for s in left:
            if s.name in table.rows:
                table.update_cell(s.name, "orphans", _num("–"))
        self._status(f"scan cancelled; {len(left)} source(s) not scanned; r rescans")

    def action_cancel_scan(self) -> None:
        if not self.scanning:
            self.notify("no scan is running", severity="information")
            return
        self.cancel_event.set()
        self._status("cancelling the scan…")

    def on_screen_suspend(self) -> None:
        """Leaving the screen stops its scan: nobody watches it, and it holds a database thread."""
        if self.scanning:
            self.cancel_event.set()

    def on_screen_resume(self) -> None:  # the base class's handler runs too (Textual walks the MRO)
        if self.scan_cancelled and not self.scanning and self.ctx.db is not None:
            self.scan_all()

    def on_unmount(self) -> None:
        self.cancel_event.set()

    def highlighted_source(self) -> str | None:
        """The source under the cursor of the sources table, read now (never a remembered one)."""
        table = self.query_one("#sources", DataTable)
        if not table.row_count:
            return None
        row = min(max(table.cursor_row, 0), table.row_count - 1)
        return str(table.coordinate_to_cell_key((row, 0)).row_key.value)

    def show_source(self, name: str | None) -> None:
        """Highlight ``name`` and show its items and status: the cursor, the pane and the status agree."""
        table = self.query_one("#sources", DataTable)
        if name is not None and name in table.rows and self.highlighted_source() != name:
            table.move_cursor(row=table.get_row_index(name), animate=False)
        self.current = name
        result = self.results.get(name) if name else None
        shown = (name, id(result) if result else 0)
        if shown != self._shown:  # a repeated highlight of the same scan keeps the selection
            self._shown = shown
            lines, more = result.listing if result else ((), {})
            self.query_one(OrphanList).set_items(lines, more)
        if name is None:
            return
        if result:
            extra = "; " + ", ".join(f"{c}: {n}" for c, n in result.children) if result.children else ""
            self._status(f"{name}: {result.orphans} orphan(s), {human_size(result.bytes)}, "
                         f"{result.total} checked{extra}")
        elif name in self.failed:
            self._status(f"{name}: the scan failed ({self.failed[name]}); r rescans")
        else:
            self._status(f"{name}: not scanned yet" + ("…" if self.scanning else "; r rescans"))

    @on(DataTable.RowHighlighted, "#sources")
    def _source_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # the event may be stale (posted before a rebuild of the table): follow the cursor as it is now
        self.show_source(self.highlighted_source())

    @on(DataTable.RowSelected, "#sources")
    def _source_chosen(self, event: DataTable.RowSelected) -> None:
        self.action_open_items()

    def action_open_items(self) -> None:
        """From the sources table, enter or space goes to the highlighted source's items (one key, not two
        Tabs); in the items list space selects, as before."""
        if self.focused is not self.query_one("#sources", DataTable):
            return
        self.query_one("#orphans-tabs", TabbedContent).active = "items"
        listing = self.query_one(OrphanList)
        listing.focus()
        if not listing.items:
            self._status(f"{self.current or 'this source'}: no items to select")

    @on(OrphanList.SelectionChanged)
    def _selection(self, event: OrphanList.SelectionChanged) -> None:
        if self.current and not event.count:
            self.show_source(self.current)  # back to the source's own status line
        elif self.current:
            self._status(f"{self.current}: {event.count} selected ({human_size(event.bytes)}); "
                         "Q quarantines the selection")

    def action_rescan(self) -> None:
        if self.ctx.db is None:
            self.notify("the database is not connected", severity="warning")
            return
        self.scan_all()

    def action_tab(self, tab: str) -> None:
        self.query_one("#orphans-tabs", TabbedContent).active = tab

    # --- acting -----------------------------------------------------------------

    def action_quarantine(self) -> None:
        if self.ctx.readonly:
            self.notify("djtui is read-only: quarantine refused", severity="warning")
            return
        source = self.highlighted_source()  # what is highlighted is what is acted on
        if source != self.current:  # cannot happen by design; never act on a pane of another source
            self.show_source(source)
            self.notify(f"the items pane now shows {source}; press Q again", severity="warning")
            return
        if not source or source not in self.results:
            self.notify(f"{source} is not scanned yet" if source else "no source", severity="warning")
            return
        result = self.results[source]
        selected = self.query_one(OrphanList).selected_items()
        chosen = selected or None
        # the same plan the CLI confirms: built from the scan in hand (no I/O), executed once
        plan = self._service(self.ctx.db).plan_for(result, chosen)
        if not plan.items:
            self.notify("nothing to act on", severity="information")
            return
        head = plan.title()
        box = min(100, int(self.app.size.width * 0.9)) - 4  # ConfirmTyped: 90%, max 100, border and padding
        title = head + middle_truncate(source, max(12, box - len(head)))
        override = plan.override

        def done(ok: bool | None) -> None:
            if ok:
                self.run_quarantine(plan, override)

        self.app.push_screen(ConfirmTyped(title, plan.confirmation_lines(), plan.confirm_word()), done)

    @work(exclusive=True, group="orphans-act", exit_on_error=False)
    async def run_quarantine(self, plan: CleanupPlan, max_share: float | None = None) -> None:
        db = await self.ctx.wait_db()
        svc = self._service(db)
        source = plan.source.name
        self._status(f"cleaning {len(plan.items)} item(s) of {source}…")
        try:
            result = await db.run(lambda: svc.execute(plan, max_share=max_share))
        except (UserError, OperationFailed) as exc:
            self.notify(str(exc), title="quarantine refused", severity="error", timeout=15)
            self._status(f"{source}: nothing was changed")
            return
        self.notify(result.describe(), title="Quarantine")
        self.scan_all()

    async def load_batches(self) -> None:
        db = self.ctx.db
        if db is None:
            return
        batches = await db.run(lambda: self._service(db).quarantine().batches())
        table = self.query_one("#batches", DataTable)
        keep = self._highlighted_batch()
        table.clear()
        for b in batches:
            d = b.to_json()
            table.add_row(d["batch"], d["state"], _num(str(d["items"])), _num(human_size(d["bytes"])), d["created"],
                          d["source"], key=b.batch_id)
        if keep is not None and keep in table.rows:  # the cursor stays on the same batch across a reload
            table.move_cursor(row=table.get_row_index(keep), animate=False)

    def _highlighted_batch(self) -> str | None:
        table = self.query_one("#batches", DataTable)
        if not table.row_count:
            return None
        row = min(max(table.cursor_row, 0), table.row_count - 1)
        return str(table.coordinate_to_cell_key((row, 0)).row_key.value)

    def action_restore(self) -> None:
        if self.ctx.readonly:
            self.notify("djtui is read-only: restore refused", severity="warning")
            return
        batch = self._highlighted_batch()
        if batch is None:
            self.notify("the quarantine is empty", severity="information")
            return

        def done(ok: bool | None) -> None:
            if ok:
                self.run_restore(batch)

        self.app.push_screen(ConfirmTyped(f"Restore batch {batch}",
                                          ["Every file or row of the batch goes back where it was; a row whose key "
                                           "exists again with other contents refuses the batch."], "RESTORE"), done)

    @work(exclusive=True, group="orphans-act", exit_on_error=False)
    async def run_restore(self, batch: str) -> None:
        db = await self.ctx.wait_db()
        try:
            restored = await db.run(self._service(db).restore, batch)
        except (UserError, OperationFailed) as exc:
            self.notify(str(exc), title="restore failed", severity="error", timeout=15)
            return
        self.notify(f"restored {len(restored)} item(s) of {batch}", title="Restore")
        self.scan_all()

    def action_purge(self) -> None:
        if self.ctx.readonly:
            self.notify("djtui is read-only: purge refused", severity="warning")
            return
        days = self.ctx.config.orphans.purge_after_days
        old = [r for r in self.query_one("#batches", DataTable).ordered_rows]
        lines = [f"Batches quarantined more than {days:g} day(s) ago lose their files for good.",
                 f"{len(old)} batch(es) are listed now; younger ones are kept."]

        def done(ok: bool | None) -> None:
            if ok:
                self.run_purge()

        self.app.push_screen(ConfirmTyped("Purge old quarantine batches", lines, "PURGE"), done)

    @work(exclusive=True, group="orphans-act", exit_on_error=False)
    async def run_purge(self) -> None:
        db = await self.ctx.wait_db()
        purged = await db.run(self._service(db).purge)
        self.notify(f"purged {len(purged)} batch(es)", title="Purge")
        await self.load_batches()

