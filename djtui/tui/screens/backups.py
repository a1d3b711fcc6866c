"""The Backups screen: the dumps with size, age and verified state; run, restore-verify, restore, prune.

All work goes through :mod:`djtui.services.dbbackup` in thread workers (a dump
or a restore takes minutes); the UI is only touched via ``call_from_thread``.
The screen calls the same service functions as `djtui dbbackup` (run with the
copy to ``dbbackup.remote``, restore, prune), so the two cannot drift apart.
Every action writes, so every one refuses in read-only mode. Run and verify
destroy nothing; restore and prune show their plan and ask for a typed word
(``OVERWRITE N SCHEMAS`` / ``RESTORE``, ``PRUNE``).
"""

from __future__ import annotations

import re
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Label, ProgressBar, Static

from djtui.domain.retention import RetentionPolicy
from djtui.domain.units import human_age, human_bytes
from djtui.errors import OperationFailed, UserError
from djtui.services import dbbackup
from djtui.tui.screens.base import DjtuiScreen
from djtui.tui.widgets.confirm import ConfirmTyped
from djtui.tui.widgets.restore_options import RestoreOptions

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
        Binding("R", "restore", "Restore selected", id="backups.restore"),
        Binding("p", "prune", "Prune", id="backups.prune"),
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
        self.query_one("#backups-where", Label).update(
            f"Backups in {where}   b run · v verify · R restore · p prune · r refresh")
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
            self.notify("a backup, verify, restore or prune is already running", severity="warning")
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
            remote = cfg.dbbackup.remote
            res = await self._in_thread(dbbackup.run_backup_and_copy, db, self.out_dir, cfg.state_dir,
                                        remote=remote, parallel=cfg.dbbackup.parallel, progress=self._progress)
            copied = f", copied to {remote}" if remote else ", not copied (dbbackup.remote is not set)"
            self._last(f"[green]Backup done[/]: {res.path} ({res.counts()}, "
                       f"{res.seconds:.1f} s{copied}). Press v on it to restore-verify.")
            self.notify(f"backup written: {res.path.name}")
        except dbbackup.CopyFailed as exc:
            self._last(f"[red]Copy failed[/]: {exc}")
            self.notify(f"the copy to {self.ctx.config.dbbackup.remote} failed", severity="error")
        except (UserError, OperationFailed, OSError) as exc:
            self._last(f"[red]Backup failed[/]: {exc}")
            self.notify(f"backup failed: {exc}", severity="error")
        finally:
            self.busy = False
            self.action_refresh()

    def _selected(self) -> dbbackup.BackupInfo | None:
        table = self.query_one("#backups-table", DataTable)
        if not self.backups or table.cursor_row is None or table.cursor_row >= len(self.backups):
            self.notify("no backup selected", severity="warning")
            return None
        return self.backups[table.cursor_row]

    def action_verify(self) -> None:
        if self._refuse("verify (it writes verified.json)"):
            return
        info = self._selected()
        if info is None:
            return
        target = info.path
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
                self._last(f"[red]NOT verified[/] {target.name}: {_problems(res.problems)}")
                self.notify(f"{target.name} failed verification", severity="error")
        except (UserError, OperationFailed, OSError) as exc:
            self._last(f"[red]Verify failed[/]: {exc}")
            self.notify(f"verify failed: {exc}", severity="error")
        finally:
            self.busy = False
            self.action_refresh()

    # -- restore ---------------------------------------------------------------------

    def action_restore(self) -> None:
        if self._refuse("restore (loads dumps into the server)"):
            return
        info = self._selected()
        if info is None:
            return
        self.busy = True
        self._restore(info.path)

    @work(exclusive=True, group="backups-action", exit_on_error=False)
    async def _restore(self, target: Path) -> None:
        try:
            # the manifest is read in a thread: the backup folder may be on a slow mount
            manifest = await self._in_thread(dbbackup.read_manifest, target)
            names = [s["name"] for s in manifest["schemas"]]
            choice = await self.app.push_screen_wait(RestoreOptions(target.name, names))
            if choice is None:
                self._last("Restore cancelled: nothing loaded")
                return
            prefix, schemas = choice
            db = await self.ctx.wait_db()
            self._status(f"planning the restore of {target.name}…")
            plan = await self._in_thread(dbbackup.plan_restore, db, target, schemas=schemas, prefix=prefix)
            n = len(plan.overwritten)
            title = (f"Restore {target.name}: OVERWRITES {n} schema(s)" if n
                     else f"Restore {target.name} into {len(plan.items)} new schema(s)")
            assert self.out_dir is not None
            safety = self.out_dir / dbbackup.SAFETY_FOLDER
            ok = await self.app.push_screen_wait(ConfirmTyped(title, plan.lines(safety), plan.confirm_word))
            if not ok:
                self._last("Restore cancelled: nothing loaded")
                return
            bar = self.query_one("#backups-progress", ProgressBar)
            bar.display = True
            bar.update(total=len(plan.items), progress=0)
            res = await self._in_thread(dbbackup.restore_backup, db, plan, self.ctx.config.state_dir,
                                        self.ctx.audit, progress=self._progress, db_user=db.settings.user,
                                        safety_dir=safety)
            where = ", ".join(i.target for i in plan.items)
            kept = f"; what they overwrote is in {res.safety_backup}" if res.safety_backup else ""
            if res.ok:
                self._last(f"[green]Restored[/] {target.name} into {where}: {res.tables_checked} table(s) match "
                           f"the manifest ({res.seconds:.1f} s){kept}")
                self.notify(f"restored {target.name}")
            else:
                self._last(f"[red]Restored with mismatches[/] {target.name}: {_problems(res.problems)}")
                self.notify(f"{target.name}: restored, but counts differ from the manifest", severity="error")
        except (UserError, OperationFailed, OSError) as exc:
            self._last(f"[red]Restore failed[/]: {exc}")
            self.notify(f"restore failed: {exc}", severity="error")
        finally:
            self.busy = False
            self.action_refresh()

    # -- prune -------------------------------------------------------------------------

    def action_prune(self) -> None:
        if self._refuse("prune (removes backups)"):
            return
        self.busy = True
        self._prune()

    @work(exclusive=True, group="backups-action", exit_on_error=False)
    async def _prune(self) -> None:
        cfg = self.ctx.config
        assert self.out_dir is not None
        policy = RetentionPolicy(cfg.dbbackup.keep_daily, cfg.dbbackup.keep_weekly, cfg.dbbackup.keep_monthly)
        try:
            plan = await self._in_thread(dbbackup.plan_prune, self.out_dir, policy)
            every = len(plan.remove) + len(plan.keep)
            if not plan.remove:
                self._status(f"nothing to prune: all {every} backup(s) are within the policy")
                self.notify("nothing to prune")
                return
            ok = await self.app.push_screen_wait(
                ConfirmTyped(f"Prune {len(plan.remove)} of {every} backup(s) in {self.out_dir}", plan.lines(),
                             plan.confirm_word))
            if not ok:
                self._last("Prune cancelled: nothing removed")
                return
            removed = await self._in_thread(dbbackup.execute_prune, plan, cfg.state_dir, self.ctx.audit)
            self._last(f"[green]Pruned[/] {len(removed)} backup(s): {', '.join(p.name for p in removed)}")
            self.notify(f"removed {len(removed)} backup(s)")
        except (UserError, OperationFailed, OSError) as exc:
            self._last(f"[red]Prune failed[/]: {exc}")
            self.notify(f"prune failed: {exc}", severity="error")
        finally:
            self.busy = False
            self.action_refresh()

    async def _in_thread(self, fn, *args, **kw):  # type: ignore[no-untyped-def]
        import asyncio
        import functools
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kw))


def _problems(problems: list[str], most: int = 5) -> str:
    """A count and the first problems, one per line, for the last-result line of verify and restore."""
    shown = "\n".join(f"  {p}" for p in problems[:most])
    more = f"\n  … and {len(problems) - most} more" if len(problems) > most else ""
    return f"{len(problems)} problem(s)\n{shown}{more}"
