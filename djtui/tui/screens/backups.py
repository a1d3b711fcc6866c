"""The Backups screen: the dumps with size, age and verified state; run and restore-verify with progress.

All work goes through :mod:`djtui.services.dbbackup` in thread workers (a dump
or a restore takes minutes); the UI is only touched via ``call_from_thread``.
Both actions write (a new folder, ``verified.json``) so both refuse in
read-only mode. Neither destroys anything, so neither asks for a typed
confirmation; pruning stays a CLI action with its dry-run and confirmation.
"""

from __future__ import annotations

import re
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Label, ProgressBar, Static

from djtui.domain.units import human_age, human_bytes
from djtui.errors import OperationFailed, UserError
from djtui.services import dbbackup
from djtui.tui.screens.base import DjtuiScreen

_STEP = re.compile(r"^\[(\d+)/(\d+)\]")


class BackupsScreen(DjtuiScreen):
    SCREEN_TITLE = "Backups"
    DEFAULT_CSS = """
    BackupsScreen #backups-where { height: 1; padding: 0 1; color: $text-muted; }
    BackupsScreen #backups-table { height: 1fr; }
    BackupsScreen #backups-progress { height: 1; padding: 0 1; }
    BackupsScreen #backups-status { height: 1; padding: 0 1; }
    BackupsScreen #backups-last { height: auto; max-height: 8; padding: 0 1; border-top: solid $panel; }
    """
    BINDINGS = [
        Binding("b", "run_backup", "Run backup", id="backups.run"),
        Binding("v", "verify", "Verify selected", id="backups.verify"),
        Binding("r", "refresh", "Refresh", id="backups.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.backups: list[dbbackup.BackupInfo] = []
        self.busy = False

    @property
    def out_dir(self) -> Path | None:
        return self.ctx.config.dbbackup.out_dir

    def compose_body(self) -> ComposeResult:
        yield Label("", id="backups-where")
        yield DataTable(id="backups-table", cursor_type="row", zebra_stripes=True)
        yield ProgressBar(id="backups-progress", show_eta=False)
        yield Static("", id="backups-status")
        yield Static("Last result: none in this session", id="backups-last")

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#backups-table", DataTable)
        for col in ("backup", "size", "age", "schemas", "verified"):
            table.add_column(col, key=col)
        where = str(self.out_dir) if self.out_dir else "not set (dbbackup.out_dir in the config)"
        self.query_one("#backups-where", Label).update(f"Backups in {where}   b run · v verify · r refresh")
        self.query_one("#backups-progress", ProgressBar).display = False  # shown once something runs
        self.action_refresh()

    # -- helpers -----------------------------------------------------------------

    def _status(self, text: str) -> None:
        self.query_one("#backups-status", Static).update(text)

    def _last(self, text: str) -> None:
        self.query_one("#backups-last", Static).update(text)

    def _progress(self, message: str) -> None:
        """Called from worker threads with a service progress line."""
        def apply() -> None:
            self._status(message)
            m = _STEP.match(message)
            if m:
                self.query_one("#backups-progress", ProgressBar).update(total=int(m[2]), progress=int(m[1]))
        self.app.call_from_thread(apply)

    def _fill(self, items: list[dbbackup.BackupInfo]) -> None:
        self.backups = items
        table = self.query_one("#backups-table", DataTable)
        table.clear()
        for b in items:
            table.add_row(b.path.name, human_bytes(b.bytes), human_age(b.age_hours), str(b.schemas),
                          f"yes {b.verified}" if b.verified else "no", key=str(b.path))
        if not self.busy:
            self._status(f"{len(items)} backup(s)" if items else "no backups yet: press b to run one")

    def _refuse(self, action: str) -> bool:
        if self.ctx.readonly:
            self.notify(f"read-only mode: {action} is disabled", severity="warning")
            return True
        if self.busy:
            self.notify("a backup or verify is already running", severity="warning")
            return True
        if self.out_dir is None:
            self.notify("set dbbackup.out_dir in the config first", severity="error")
            return True
        return False

    # -- actions -----------------------------------------------------------------

    def action_refresh(self) -> None:
        if self.out_dir is None:
            self._status("no backup folder configured: set dbbackup.out_dir")
            return
        self._load()

    @work(thread=True, exclusive=True, group="backups-list", exit_on_error=False)
    def _load(self) -> None:
        assert self.out_dir is not None
        items = dbbackup.list_backups(self.out_dir)
        self.app.call_from_thread(self._fill, items)

    def action_run_backup(self) -> None:
        if self._refuse("running a backup"):
            return
        self.busy = True
        bar = self.query_one("#backups-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self._status("connecting…")
        self._run()

    @work(exclusive=True, group="backups-action", exit_on_error=False)
    async def _run(self) -> None:
        try:
            db = await self.ctx.wait_db()
            cfg = self.ctx.config
            assert self.out_dir is not None
            self._status("dumping…")
            res = await self._in_thread(dbbackup.run_backup_locked, db, self.out_dir, cfg.state_dir,
                                        parallel=cfg.dbbackup.parallel, progress=self._progress)
            self._last(f"[green]Backup done[/]: {res.path} ({len(res.manifest['schemas'])} schemas, "
                       f"{res.seconds:.1f} s). Press v on it to restore-verify.")
            self.notify(f"backup written: {res.path.name}")
        except (UserError, OperationFailed, OSError) as exc:
            self._last(f"[red]Backup failed[/]: {exc}")
            self.notify(f"backup failed: {exc}", severity="error")
        finally:
            self.busy = False
            self.action_refresh()

    def action_verify(self) -> None:
        if self._refuse("verify (it writes verified.json)"):
            return
        table = self.query_one("#backups-table", DataTable)
        if not self.backups or table.cursor_row is None or table.cursor_row >= len(self.backups):
            self.notify("no backup selected", severity="warning")
            return
        target = self.backups[table.cursor_row].path
        self.busy = True
        bar = self.query_one("#backups-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self._status(f"verifying {target.name}…")
        self._verify(target)

    @work(exclusive=True, group="backups-action", exit_on_error=False)
    async def _verify(self, target: Path) -> None:
        try:
            res = await self._in_thread(dbbackup.verify_backup_locked, target, self.ctx.config.state_dir,
                                        progress=self._progress)
            if res.ok:
                self._last(f"[green]Verified[/] {target.name}: restored into a scratch server, "
                           f"{res.tables_checked} table(s) match the manifest ({res.seconds:.1f} s)")
            else:
                shown = "\n".join(f"  {p}" for p in res.problems[:5])
                more = f"\n  … and {len(res.problems) - 5} more" if len(res.problems) > 5 else ""
                self._last(f"[red]NOT verified[/] {target.name}: {len(res.problems)} problem(s)\n{shown}{more}")
                self.notify(f"{target.name} failed verification", severity="error")
        except (UserError, OperationFailed, OSError) as exc:
            self._last(f"[red]Verify failed[/]: {exc}")
            self.notify(f"verify failed: {exc}", severity="error")
        finally:
            self.busy = False
            self.action_refresh()

    async def _in_thread(self, fn, *args, **kw):  # type: ignore[no-untyped-def]
        import asyncio
        import functools
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kw))
