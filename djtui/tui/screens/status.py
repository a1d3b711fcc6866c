"""The Sessions screen: the status-range table, filters, selection, detail, and the actions on sessions.

Everything slow (disk scans, queries, deletes) runs in workers that await
the services; sync and verify go to the app-wide job queue so they keep
running while the operator looks at another screen.
"""

from __future__ import annotations

import asyncio
import gc
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static
from textual.widgets._data_table import ColumnKey

from djtui.domain.sessions import SessionKey, SessionStatus, parse_range, plural
from djtui.domain.units import human_bytes
from djtui.errors import UserError
from djtui.tui.screens.base import DjtuiScreen
from djtui.tui.widgets.session_detail import SessionDetailPane
from djtui.tui.widgets.session_table import BuiltRows, SessionTable, assemble_rows, build_quietly, cell_widths

if TYPE_CHECKING:  # the services (psutil, sqlite3, hashing, rsync) load after the first frame (issue 17)
    from djtui.services.sessions.service import SessionService
    from djtui.services.transfers import Job
    from djtui.tui.widgets.confirm import ConfirmTyped

FIRST_BATCH = 120
PARTICIPANT_AT_80 = 16  # the Participant column's widest at 80 columns (the others take the rest)
INLINE_ROWS = 2_000  # more sessions than this: the rows are built in a thread (a filter at 50,000 took seconds)
NARROW = 120  # below this width the detail pane takes the whole width (and the focus) instead of a third
COLUMNS = ("", "Date", "Participant", "Videos", "Size", "DJ", "Backup", "Verified", "Safe")
COLUMN_KEYS = tuple(ColumnKey(c) for c in COLUMNS)
SORTS: dict[str, Callable[[SessionStatus], Any]] = {
    "Date": operator.attrgetter("key.session_date", "key.participant_id"),
    "Participant": operator.attrgetter("key.participant_id", "key.session_date"),
    "Videos": lambda s: s.videos,
    "Size": lambda s: s.source.bytes,
    "DJ": lambda s: s.dj.imported,
    "Backup": lambda s: s.backup,
    "Verified": lambda s: s.verified,
    "Safe": lambda s: s.safe,
}
OK = Text("✓", style="bold green")
BAD = Text("✗", style="bold red")
WARN = Text("⚠", style="bold yellow")
NA = Text("–", style="dim")  # Safe does not apply: the session is not on local disk


def mark(ok: bool, warn: bool = False) -> Text:
    return WARN if warn else (OK if ok else BAD)


def row_key(key: SessionKey) -> str:
    return f"{key.participant_id}|{key.date_str}"


SELECTED = Text("●", style="bold cyan")
UNSELECTED = Text(" ")


def row_cells(s: SessionStatus) -> tuple:
    """A row's cells after the selection mark, as the eye reads them."""
    if not s.local:  # Backup: does a destination hold it; Verified and Safe do not apply
        return (s.key.date_str, s.key.participant_id, Text("0", justify="right"),
                Text("not local", style="dim", justify="right"), mark(s.dj.imported),
                mark(s.at_destination, s.hung), NA, NA)
    return (s.key.date_str, s.key.participant_id, Text(str(s.videos), justify="right"),
            Text(human_bytes(s.source.bytes), justify="right"), mark(s.dj.imported),
            mark(s.backup, s.hung or s.backup_partial), mark(s.verified, s.hung or s.needs_verify), mark(s.safe))


def cells_of(s: SessionStatus, selected: bool) -> tuple:
    """One row of the table, as the eye reads it."""
    return (SELECTED if selected else UNSELECTED, *row_cells(s))


class RowCache:
    """Each status's row key, cells and filter text, made once per status object: a filter keystroke or a
    sort picks rows again but does not make them again (making the rows of 50,000 sessions took 0.8 s,
    and a filter that matched no participant formatted 50,000 dates).

    A row is kept as the table's cell dict (ColumnKey -> cell, unselected) and its cells' widths; a
    build hands the table a copy of the dict (the table changes its dicts in place: ``update_cell``).
    Entries hold their status, so an id is never reused while cached; a reload starts a new cache.
    A worker thread may fill it while the loop reads it: each entry is one dict assignment.
    """

    def __init__(self) -> None:
        self._rows: dict[int, tuple[SessionStatus, str, dict, tuple[int, ...], str]] = {}

    def _entry(self, s: SessionStatus) -> tuple[SessionStatus, str, dict, tuple[int, ...], str]:
        hit = self._rows.get(id(s))
        if hit is not None and hit[0] is s:
            return hit
        cells = (UNSELECTED, *row_cells(s))
        pid, day = s.key.participant_id, s.key.date_str
        # the filter's text: the participant id (lower case) and the date, apart (a NUL between them,
        # which no typed filter holds, so a match never spans the two)
        entry = (s, f"{pid}|{day}", dict(zip(COLUMN_KEYS, cells, strict=True)), cell_widths(cells),
                 f"{pid.lower()}\0{day}")
        self._rows[id(s)] = entry
        return entry

    def get(self, s: SessionStatus) -> tuple[str, dict, tuple[int, ...]]:
        """The row key, the row's cell dict (unselected; copy it before handing it out) and its widths."""
        entry = self._entry(s)
        return entry[1], entry[2], entry[3]

    def text(self, s: SessionStatus) -> str:
        """What the text filter searches in a row."""
        return self._entry(s)[4]

    def forget(self, s: SessionStatus) -> None:
        self._rows.pop(id(s), None)


def visible_of(statuses: list[SessionStatus], needle: str, sort_by: str, reverse: bool,
               cache: RowCache | None = None) -> list[SessionStatus]:
    """The sessions the text filter shows (in the participant id or the date), in the screen's order
    (pure: a worker thread runs it)."""
    needle = needle.lower()
    if needle:
        text = (cache if cache is not None else RowCache()).text
        statuses = [s for s in statuses if needle in text(s)]
    return sorted(statuses, key=SORTS[sort_by], reverse=reverse)


def build_view(statuses: list[SessionStatus], selected: frozenset[str], needle: str, sort_by: str,
               reverse: bool, cache: RowCache | None = None, wanted: Callable[[], bool] | None = None
               ) -> tuple[list[str], BuiltRows] | None:
    """The shown rows' keys and the table's records for them, from a snapshot of the screen's state.

    ``wanted`` is asked every few thousand rows; once it says no (a newer key superseded this build)
    the build stops and returns None, so a filter typed quickly does not wait for the rows of each key."""
    cache = cache if cache is not None else RowCache()
    get, mark_col = cache.get, COLUMN_KEYS[0]
    keys: list[str] = []
    dicts: list[dict] = []
    widths = [cell_len(c) for c in COLUMNS]
    per_row = []
    for i, s in enumerate(visible_of(statuses, needle, sort_by, reverse, cache)):
        if wanted is not None and not i & 4095 and not wanted():
            return None
        k, data, w = get(s)
        data = data.copy()  # no key is hashed again: the copy keeps the stored hashes
        if k in selected:
            data[mark_col] = SELECTED
        keys.append(k)
        dicts.append(data)
        per_row.append(w)
    if per_row:
        widths = [max(a, b) for a, b in zip(widths, map(max, zip(*per_row, strict=True)), strict=True)]
    return keys, assemble_rows(keys, dicts, widths)


class SessionsScreen(DjtuiScreen):
    SCREEN_TITLE = "Sessions"
    DEFAULT_CSS = """
    SessionsScreen #sess-filters { height: 3; }
    SessionsScreen #sess-filters Input { width: 20; }  /* the placeholder "from YYYYMMDD" whole (issue 16) */
    SessionsScreen #sess-filters #sess-text { width: 1fr; }
    SessionsScreen #sess-main { height: 1fr; }
    SessionsScreen #sess-table { width: 2fr; height: 1fr; }
    SessionsScreen SessionDetailPane { display: none; }
    SessionsScreen.-detail SessionDetailPane { display: block; }
    SessionsScreen.-detail.-narrow #sess-table { display: none; }
    SessionsScreen #sess-summary { height: 1; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="sessions.filter"),
        Binding("r", "reload", "Refresh", id="sessions.refresh"),  # early: the footer at 80 columns is cut
        Binding("space", "toggle_select", "Select", id="sessions.select"),
        Binding("enter", "detail", "Detail", id="sessions.detail"),
        Binding("o", "sort", "Sort", id="sessions.sort"),
        Binding("s", "sync", "Sync", id="sessions.sync"),
        Binding("v", "verify", "Verify", id="sessions.verify"),
        Binding("d", "delete", "Delete", id="sessions.delete"),
        Binding("D", "bulk_delete", "Bulk delete", id="sessions.bulk_delete"),
        Binding("escape", "clear", "Clear", show=False, id="sessions.clear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.statuses: dict[str, SessionStatus] = {}
        self.selected: set[str] = set()
        self.sort_by = "Date"
        self.sort_reverse = False
        self.text_filter = ""
        self.loaded = asyncio.Event()
        self._listening = False
        self._shown: list[str] = []  # the keys of the rows the table holds, in order
        self._shown_set: set[str] = set()
        self._generation = 0  # bumped by every render: a slower, older build is not installed over a newer one
        self._rows = RowCache()  # the cells of each loaded status, made once

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="sess-filters"):
            yield Input(placeholder="from YYYYMMDD", id="sess-start")
            yield Input(placeholder="to YYYYMMDD", id="sess-end")
            yield Input(placeholder="/ filter participant or date", id="sess-text")
        with Horizontal(id="sess-main"):
            yield SessionTable(id="sess-table", cursor_type="row", zebra_stripes=True)
            yield SessionDetailPane()
        yield Static("loading sessions…", id="sess-summary")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col)
        table.focus()  # DjtuiScreen.on_mount also runs (Textual dispatches along the MRO)
        self._without_db()

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW, "-narrow")
        # every column on screen at 80: a long participant id is cut at the end rather than pushing Safe off
        room = max(len("Participant"), self.size.width - (80 - PARTICIPANT_AT_80))
        self.query_one(SessionTable).cap_columns({COLUMNS.index("Participant"): room})

    @work(group="sessions-nodb", exit_on_error=False)
    async def _without_db(self) -> None:
        """If the database cannot be reached, still show the disks (DJ then says why it is unknown)."""
        try:
            await self.ctx.wait_db()
        except UserError:
            self.on_db_ready()

    # -- data -----------------------------------------------------------------------------------
    def service(self) -> SessionService:
        from djtui.services.sessions.service import SessionService  # after the first frame: psutil, sqlite3
        return SessionService(self.ctx.config, self.ctx.db)

    def on_db_ready(self) -> None:
        if not self._listening:
            try:
                self.ctx.job_queue().listeners.append(self._job_changed)
                self._listening = True
            except UserError as exc:
                self._summary(exc.what)
                return
        self.load()

    def _range(self) -> tuple[Any, Any]:
        return parse_range(self.query_one("#sess-start", Input).value, self.query_one("#sess-end", Input).value,
                           where=("from", "to"))

    @work(exclusive=True, group="sessions-load", exit_on_error=False)
    async def load(self) -> None:
        self.loaded.clear()
        self._rows = RowCache()  # the statuses are made again: the old cells go with them
        gc.unfreeze()  # what the previous load froze (below) becomes collectable again once it is dropped
        try:
            start, end = self._range()
            svc = self.service()
            self._summary("scanning sessions…")
            keys = await asyncio.to_thread(svc.range_keys, start, end)
            self._warn_odd(svc)
            # the first screenful first (same batched queries, fewer rows), then everything
            head = await asyncio.to_thread(svc.statuses, keys[:FIRST_BATCH])
            if len(keys) > FIRST_BATCH:
                self.statuses = {row_key(s.key): s for s in head}
                await self.rebuild()
                self._summary(f"{len(head)} of {len(keys)} sessions shown · loading the rest…")
                rest = await asyncio.to_thread(svc.statuses, keys[FIRST_BATCH:])
            else:
                rest = []
        except UserError as exc:
            self._summary(exc.what)
            self.notify(exc.render(), severity="error")
            self.loaded.set()
            return
        self.statuses = {row_key(s.key): s for s in [*head, *rest]}
        self.selected &= set(self.statuses)
        await self.rebuild()
        self.loaded.set()

    def _warn_odd(self, svc: SessionService) -> None:
        """The folders discovery skipped (odd participant or date names), as the CLI warns on stderr."""
        odd, dates = svc.last_discovery.odd_folders, svc.last_discovery.odd_dates
        lines = [f"{p}: participant folder name is not a usable id (letters, digits, _ - . only)" for p in odd[:5]]
        lines += [f"{p}: holds files but its date folder name is not a valid date (YYYYMMDD)" for p in dates[:5]]
        more = len(odd) + len(dates) - len(lines)
        if more > 0:
            lines.append(f"... and {plural(more, 'more folder')}")
        if lines:
            self.notify("\n".join(lines) + "\nrename them to back them up with djtui",
                        title=f"Skipped {plural(len(odd) + len(dates), 'folder')}", severity="warning", timeout=30)

    async def refresh_keys(self, keys: list[SessionKey]) -> None:
        svc = self.service()
        fresh = await asyncio.to_thread(svc.statuses, keys)
        table = self.query_one(DataTable)
        for st in fresh:
            k = row_key(st.key)
            if k in self.statuses:
                self._rows.forget(self.statuses[k])
            self.statuses[k] = st
            if k in table.rows:
                for col, value in zip(COLUMNS, self._cells(st), strict=True):
                    table.update_cell(k, col, value)
        self._show_detail_for_cursor()
        self._update_summary()

    def _job_changed(self, job: Job) -> None:
        if job.state in ("done", "failed", "cancelled") and self.is_attached:
            self.run_worker(self.refresh_keys([job.key]), group="sessions-row", exit_on_error=False)

    def _cells(self, s: SessionStatus) -> tuple:
        return cells_of(s, row_key(s.key) in self.selected)

    def visible(self) -> list[SessionStatus]:
        """The sessions the table shows, in its order."""
        return [self.statuses[k] for k in self._shown if k in self.statuses]

    def _snapshot(self) -> tuple:
        return (list(self.statuses.values()), frozenset(self.selected), self.text_filter, self.sort_by,
                self.sort_reverse, self._rows)

    def render_rows(self) -> None:
        """Rebuild the rows after a filter, sort or selection change: at once for a small table; for a large
        one in a thread (what was typed meanwhile wins: only the newest build is installed)."""
        self._generation += 1
        if len(self.statuses) <= INLINE_ROWS:
            self._install(build_view(*self._snapshot()))
        else:
            self.run_worker(self.rebuild(self._generation, settle=0.05), group="sessions-rows", exit_on_error=False)

    async def rebuild(self, generation: int | None = None, settle: float = 0.0) -> None:
        """Build the rows in a thread (after ``settle`` seconds in which another key may supersede it), then
        install them if nothing newer came meanwhile."""
        if generation is None:
            self._generation += 1
            generation = self._generation
        if settle:
            await asyncio.sleep(settle)
            if generation != self._generation:
                return
        view = build_view(*self._snapshot()) if len(self.statuses) <= INLINE_ROWS \
            else await asyncio.to_thread(build_quietly, build_view, *self._snapshot(),
                                         lambda: generation == self._generation)
        if view is not None and generation == self._generation and self.is_attached:
            self._install(view)

    def _install(self, view: tuple[list[str], BuiltRows]) -> None:
        keys, built = view
        table = self.query_one(SessionTable)
        current = self._cursor_key()
        self._shown, self._shown_set = keys, set(keys)
        with self.app.batch_update():
            table.install(built, current)
        self._update_summary()
        self._show_detail_for_cursor()
        # 50,000 sessions and their table rows live until the next load or filter: left to the cyclic collector,
        # each full collection walks them all (0.4-0.8 s, freeing nothing) and lands in a keypress. Frozen, it
        # skips them (the rows a filter replaces are freed by their reference counts; a reload unfreezes first).
        gc.freeze()

    def _update_summary(self) -> None:
        vis = self.visible()
        safe = sum(s.safe for s in vis)
        hung = [d for s in vis for d in s.destinations if d.mount == "hung"]
        hidden = len(self.hidden_selected())
        sel = f"{len(self.selected)} selected" + (f" ({hidden} hidden by the filter, not acted on)" if hidden else "")
        text = (f"{len(vis)} of {plural(len(self.statuses), 'session')} · {safe} safe · {sel} · "
                f"sort {self.sort_by}{' ↓' if self.sort_reverse else ''}")
        away = sum(not s.local for s in vis)
        if away:
            text += f" · {away} not local (–)"
        if hung:  # first: at 80 columns the end of the line is cut off
            text = f"⚠ {hung[0].name} not answering: {hung[0].remount_hint} · " + text
        if self.ctx.readonly:
            text += " · read-only"
        self._summary(text)

    def _summary(self, text: str) -> None:
        self.query_one("#sess-summary", Static).update(Text(text))

    def _cursor_key(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None

    def hidden_selected(self) -> list[str]:
        """Selected rows the text filter hides: no action touches them (the footer says how many)."""
        return sorted(k for k in self.selected if k in self.statuses and k not in self._shown_set)

    def _targets(self) -> list[SessionStatus]:
        """What s, v, d and D act on: the selected rows the filter shows, else the row under the cursor."""
        picked = [self.statuses[k] for k in sorted(self.selected) if k in self.statuses and k in self._shown_set]
        if picked:
            return picked
        k = self._cursor_key()
        return [self.statuses[k]] if k and k in self.statuses else []

    def _note_hidden(self) -> None:
        hidden = self.hidden_selected()
        if hidden:
            self.notify(f"{plural(len(hidden), 'selected row')} hidden by the filter "
                        f"{'was' if len(hidden) == 1 else 'were'} left alone; clear the filter (Esc) to act on "
                        f"{'it' if len(hidden) == 1 else 'them'}", severity="warning")

    def _show_detail_for_cursor(self) -> None:
        if self.has_class("-detail"):
            k = self._cursor_key()
            self.query_one(SessionDetailPane).show(self.statuses.get(k) if k else None)

    # -- events ---------------------------------------------------------------------------------
    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_detail_for_cursor()

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_detail()  # enter on the focused table arrives as RowSelected

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        col = str(event.column_key.value)
        if col in SORTS:
            self.sort_reverse = not self.sort_reverse if self.sort_by == col else False
            self.sort_by = col
            self.render_rows()

    @on(Input.Changed, "#sess-text")
    def _text(self, event: Input.Changed) -> None:
        self.text_filter = event.value.strip()
        self.render_rows()

    @on(Input.Submitted, "#sess-start, #sess-end")
    def _dates(self) -> None:
        self.load()
        self.query_one(DataTable).focus()

    @on(Input.Submitted, "#sess-text")
    def _text_done(self) -> None:
        self.query_one(DataTable).focus()

    # -- actions --------------------------------------------------------------------------------
    def action_filter(self) -> None:
        self.query_one("#sess-text", Input).focus()

    def action_clear(self) -> None:
        if self.has_class("-detail"):
            self.remove_class("-detail")
            self.query_one(DataTable).focus()
            return
        text = self.query_one("#sess-text", Input)
        if text.value:
            text.value = ""
        self.query_one(DataTable).focus()

    def action_reload(self) -> None:
        self.load()

    def action_sort(self) -> None:
        names = list(SORTS)
        self.sort_by = names[(names.index(self.sort_by) + 1) % len(names)]
        self.sort_reverse = False
        self.render_rows()

    def action_toggle_select(self) -> None:
        k = self._cursor_key()
        if not k:
            return
        self.selected.symmetric_difference_update({k})
        table = self.query_one(DataTable)
        table.update_cell(k, "", self._cells(self.statuses[k])[0])
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)
        self._update_summary()

    def action_detail(self) -> None:
        self.toggle_class("-detail")
        self._show_detail_for_cursor()
        if self.has_class("-detail") and self.has_class("-narrow"):
            pane = self.query_one(SessionDetailPane)
            pane.scroll_home(animate=False)
            pane.focus()  # the table is hidden: arrows and PageDown scroll the pane, Esc goes back
        elif not self.has_class("-detail"):
            self.query_one(DataTable).focus()

    def _refuse_readonly(self, what: str) -> bool:
        if self.ctx.readonly:
            self.notify(f"refused: {what} writes, and djtui is running read-only", severity="error")
            return True
        return False

    def _queue_jobs(self, kind: str) -> None:
        targets = self._targets()
        if not targets:
            self.notify("no session under the cursor", severity="warning")
            return
        if kind == "sync" and self._refuse_readonly("sync"):
            return
        away = [st for st in targets if not st.local]
        targets = [st for st in targets if st.local]
        if away:
            self.notify(f"skipped {plural(len(away), 'session')} not on local disk: "
                        + ", ".join(st.key.label for st in away[:3]), severity="warning")
        self._note_hidden()
        if not targets:
            return
        queue = self.ctx.job_queue()
        n = 0
        for st in targets:
            for d in st.destinations:
                queue.submit(kind, st.key, d.name)
                n += 1
        self.notify(f"queued {plural(n, kind + ' job')}; see Transfers (2)")
        self.selected.difference_update(row_key(st.key) for st in targets)
        self.render_rows()

    def action_sync(self) -> None:
        self._queue_jobs("sync")

    def action_verify(self) -> None:
        self._queue_jobs("verify")

    def action_delete(self) -> None:
        """The targets of s and v: the selected rows the filter shows (several: the bulk modal), else the cursor."""
        if self._refuse_readonly("delete"):
            return
        targets = self._targets()
        if not targets:
            return
        self._note_hidden()
        if len(targets) > 1:
            self.delete_many(targets)
            return
        if not targets[0].local:
            self.notify("refused: not on local disk: nothing to delete", title=f"Delete {targets[0].key.label}",
                        severity="error")
            return
        self.delete_one(targets[0].key)

    @work(exclusive=True, group="sessions-delete", exit_on_error=False)
    async def delete_one(self, key: SessionKey) -> None:
        svc = self.service()
        from djtui.services.sessions.delete_plan import plan_delete
        from djtui.tui.widgets.confirm import ConfirmTyped
        self._summary(f"checking {key.label} before delete…")
        plan = await asyncio.to_thread(plan_delete, svc, [key], bulk=False)  # a full scan: never on the loop
        self._update_summary()
        if not plan.ready:
            self.notify(plan.refusal(), title=f"Delete {key.label}", severity="error", timeout=15)
            await self.refresh_keys([key])
            return
        if not await self._confirm(ConfirmTyped(plan.title, plan.lines(), plan.phrase)):
            self.notify("delete cancelled: nothing was changed")
            return
        res = (await asyncio.to_thread(plan.execute, svc, self.ctx.audit))[0]
        self.notify(res.message, title=f"Delete {key.label}", severity="information" if res.ok else "error",
                    timeout=15)
        await self._after_delete([key])

    async def _confirm(self, modal: ConfirmTyped) -> bool:
        """Show the modal with the typing field focused (its scroll area would take focus first)."""

        def focus_input() -> None:
            inputs = modal.query(Input)
            if inputs:
                inputs.first().focus()

        self.app.call_after_refresh(focus_input)
        return bool(await self.app.push_screen_wait(modal))

    async def _after_delete(self, keys: list[SessionKey]) -> None:
        """Re-read the rows acted on. A deleted session still exists on its backup, so its row stays and
        shows the new state (not local, backed up), as `r` would show it; a refusal at the moment of action
        means the row's old Safe ✓ is no longer true."""
        await self.refresh_keys(keys)

    def action_bulk_delete(self) -> None:
        if self._refuse_readonly("bulk delete"):
            return
        self._note_hidden()
        self.delete_many(self._targets() if self.selected & self._shown_set else self.visible())

    @work(exclusive=True, group="sessions-delete", exit_on_error=False)
    async def delete_many(self, pool: list[SessionStatus]) -> None:
        svc = self.service()
        from djtui.services.sessions.delete_plan import plan_delete
        from djtui.tui.widgets.confirm import ConfirmTyped
        keys = [s.key for s in pool if s.local]  # nothing local to delete for the others
        self._summary(f"checking {plural(len(keys), 'session')} before delete…")
        plan = await asyncio.to_thread(plan_delete, svc, keys, bulk=True)
        self._update_summary()
        if not plan.ready:
            self.notify(plan.refusal(), severity="warning")
            return
        if not await self._confirm(ConfirmTyped(plan.title, plan.lines(), plan.phrase)):
            self.notify("bulk delete cancelled: nothing was changed")
            return
        results = await asyncio.to_thread(plan.execute, svc, self.ctx.audit)
        ok = sum(r.ok for r in results)
        failed = [r for r in results if not r.ok]
        msg = f"deleted {ok} of {plural(len(results), 'session')}"
        if failed:
            msg += "; refused: " + "; ".join(f"{r.key.label}: {r.message}" for r in failed[:3])
        self.notify(msg, title="Bulk delete", severity="error" if failed else "information", timeout=15)
        await self._after_delete([p.key for p in plan.candidates])
