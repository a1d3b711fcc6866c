"""The Transfers screen: the app-wide queue of sync and verify jobs, live.

The queue lives on the app context, so jobs keep running while this screen
is hidden; the screen only polls the jobs' state a few times a second and
updates rows by key.
"""

from __future__ import annotations

import time

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, ProgressBar, Sparkline, Static

from djtui.domain.rsync import bwlimit_label
from djtui.domain.units import human_bytes, plural
from djtui.errors import UserError
from djtui.services.transfers import Job, JobQueue
from djtui.tui.screens.base import DjtuiScreen, refuse_readonly

# what changes first, the job's name and its file last: at 80 columns a long name would push ETA off (issue 16)
COLUMNS = ("#", "State", "%", "ETA", "Rate", "Bytes", "Files", "Job", "Current file / result")
# the widest value each short column can take ("cancelled", "100%", "00:00:00"): a column sized by
# its first rows would cut later values ("10" for 100%)
MIN_WIDTHS = {"State": 9, "%": 4, "ETA": 8}
ROW_EVERY = 1.0  # seconds between rewrites of a running job's row (the panel below it moves four times a second)
STATE_STYLE = {"queued": "dim", "running": "bold cyan", "done": "bold green", "failed": "bold red",
               "cancelled": "yellow"}


def eta_text(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


def limit_of(queue: JobQueue | None, job: Job | None) -> str:
    """``limit 9.8 MB/s`` for a sync to a destination with a bandwidth_limit, else empty."""
    if queue is None or job is None or job.kind != "sync":
        return ""
    try:
        return bwlimit_label(queue.service.backup.destination(job.destination).rsync.bandwidth_limit)
    except UserError:
        return ""


def job_cells(job: Job, limit: str = "") -> tuple:
    p = job.progress
    tail = job.message if not job.active else (p.current_file if p else "")
    if job.kind == "verify" and job.state == "running":
        tail = f"hashing… {plural(job.files_done, 'file')}" if job.checksum else "comparing sizes…"
    label = f"{job.label} · {limit}" if limit else job.label
    running = p is not None and job.state == "running"
    return (str(job.id), Text(job.state, style=STATE_STYLE.get(job.state, "")),
            "100%" if job.ok else (f"{p.percent}%" if p else ""),
            eta_text(p.eta_seconds) if p and running else "", f"{human_bytes(int(p.rate))}/s" if p and running else "",
            human_bytes(p.bytes) if p else "", str(job.files_done) if job.files_done else "", label, Text(tail[:200]))


class TransferPanel(Vertical):
    """Progress bar, rate sparkline and final word of the highlighted job."""

    DEFAULT_CSS = """
    TransferPanel { height: 7; border: round $primary; padding: 0 1; }
    TransferPanel ProgressBar { width: 1fr; }
    TransferPanel Sparkline { height: 2; }
    """

    def compose(self) -> ComposeResult:
        yield Static("no job selected", id="xfer-title")
        yield ProgressBar(total=100, show_eta=False, id="xfer-bar")
        yield Sparkline([], id="xfer-rate")

    def show(self, job: Job | None, limit: str = "") -> None:
        title = self.query_one("#xfer-title", Static)
        bar = self.query_one(ProgressBar)
        spark = self.query_one(Sparkline)
        if job is None:
            title.update("no job selected")
            bar.update(progress=0)
            spark.display = False
            return
        p = job.progress
        words = f"{job.label}: {job.state}" + (f" · {limit}" if limit else "")
        if p:
            words += f" · {human_bytes(p.bytes)}"
            if job.files_done and job.active:  # a finished job's message says how many, once
                words += f" · {plural(job.files_done, 'file')} done"
            elif job.active:
                words += " · first file in progress" if p.bytes else " · starting"
            if job.state == "running":  # a finished job has no rate and nothing left to wait for
                words += f" · {human_bytes(int(p.rate))}/s · ETA {eta_text(p.eta_seconds)}"
        if not job.active and job.message:
            words += f" · {job.message}"
        title.update(Text(words))
        bar.update(progress=100 if job.ok else (p.percent if p else 0))  # rsync's last line may say less
        spark.display = len(job.rates) > 1
        if spark.display:
            spark.data = list(job.rates)


class TransfersScreen(DjtuiScreen):
    SCREEN_TITLE = "Transfers"
    DEFAULT_CSS = """
    TransfersScreen #xfer-table { height: 1fr; }
    TransfersScreen #xfer-summary { height: 1; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("c", "cancel", "Cancel job", id="transfers.cancel"),
        Binding("x", "clear_finished", "Clear finished", id="transfers.clear"),
        Binding("t", "retry", "Retry job", id="transfers.retry"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.hidden_ids: set[int] = set()
        self._shown: dict[str, tuple] = {}  # row key -> the cells last written (a refresh skips what is unchanged)
        self._written: dict[str, float] = {}  # row key -> when its cells were last written

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="xfer-table", cursor_type="row", zebra_stripes=True)
        yield TransferPanel()
        yield Static("no jobs yet: press s or v on the Sessions screen (1)", id="xfer-summary")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col, width=MIN_WIDTHS.get(col))
        table.focus()
        self.set_interval(0.25, self.refresh_jobs)

    def queue(self) -> JobQueue | None:
        try:
            return self.ctx.job_queue()
        except UserError:
            return None

    def refresh_jobs(self) -> None:
        if not self.is_current:
            return
        q = self.queue()
        if q is None:
            self.query_one("#xfer-summary", Static).update("no `backup:` section in the config: nothing to transfer")
            return
        jobs = [j for j in q.jobs if j.id not in self.hidden_ids]
        self._write_rows(jobs, q)
        running = sum(j.state == "running" for j in jobs)
        queued = sum(j.state == "queued" for j in jobs)
        failed = sum(j.state == "failed" for j in jobs)
        done = sum(j.state == "done" for j in jobs)
        self.query_one("#xfer-summary", Static).update(
            f"{running} running · {queued} queued · {done} done · {failed} failed")
        self.query_one(TransferPanel).show(self.current_job(), limit_of(q, self.current_job()))

    def _write_rows(self, jobs: list[Job], q: JobQueue) -> None:
        """Write only the cells that changed, and size the columns once from the cells held here.

        DataTable.update_cell(update_width=True) re-measures a whole column for every cell that got
        narrower: four times a second over every row of every column, 168 finished jobs held the event
        loop for up to 2.3 s (issue 17). Any written cell makes the table render every visible cell again,
        so a running job's row (its state unchanged) is rewritten once a second; the panel shows it live."""
        table = self.query_one(DataTable)
        changed = False
        now = time.monotonic()
        with self.app.batch_update():
            for job in jobs:
                k = str(job.id)
                cells = job_cells(job, limit_of(q, job))
                old = self._shown.get(k)
                if old == cells or (old is not None and old[1] == cells[1] and job.state == "running" and old[2]
                                    and now - self._written.get(k, 0.0) < ROW_EVERY):  # its first % at once
                    continue
                changed = True
                self._shown[k] = cells
                self._written[k] = now
                if old is None:
                    table.add_row(*cells, key=k)
                    continue
                for col, value, was in zip(COLUMNS, cells, old, strict=True):
                    if value != was:
                        table.update_cell(k, col, value)
            for k in [k for k in self._shown if int(k) in self.hidden_ids]:
                table.remove_row(k)
                del self._shown[k]
                self._written.pop(k, None)
                changed = True
            if changed:
                self._size_columns(table)

    def _size_columns(self, table: DataTable) -> None:
        """Each auto-sized column as wide as its widest cell or title (it shrinks when that row goes)."""
        for i, column in enumerate(table.ordered_columns):
            if not column.auto_width:
                continue
            width = max([cell_len(str(column.label)), *(cell_len(str(c[i])) for c in self._shown.values())])
            if width != column.content_width:
                column.content_width = width
                table._require_update_dimensions = True
        table.refresh()

    def current_job(self) -> Job | None:
        q = self.queue()
        table = self.query_one(DataTable)
        if q is None or not table.row_count:
            return None
        try:
            k = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None
        return next((j for j in q.jobs if str(j.id) == k), None)

    @on(DataTable.RowHighlighted)
    def _highlight(self) -> None:
        self.query_one(TransferPanel).show(self.current_job(), limit_of(self.queue(), self.current_job()))

    def action_cancel(self) -> None:
        job = self.current_job()
        q = self.queue()
        if job is None or q is None:
            return
        if not job.active:
            self.notify(f"job {job.id} has already finished ({job.state})")
            return
        q.cancel(job)
        self.notify(f"cancelling job {job.id}")

    def action_retry(self) -> None:
        """Queue the highlighted failed or cancelled job again (a new row, 'retry of #N')."""
        job = self.current_job()
        q = self.queue()
        if job is None or q is None:
            self.notify("no job selected", severity="warning")
            return
        if self.ctx.readonly and job.kind == "sync" and not job.dry_run:  # a verify or a dry run writes nothing
            refuse_readonly(self, "retrying a sync (copies files to the destination)")
            return
        try:
            new = q.retry(job)
        except UserError as exc:
            self.notify(exc.render(), severity="warning", markup=False)
            return
        self.notify(f"queued job {new.id}: {new.label}", markup=False)
        self.refresh_jobs()

    def action_clear_finished(self) -> None:
        q = self.queue()
        if q is not None:
            self.hidden_ids.update(j.id for j in q.jobs if not j.active)
        self.refresh_jobs()
