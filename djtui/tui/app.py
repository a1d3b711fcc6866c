"""DjtuiApp: the screens, global keys, the command palette, and the one database connection.

The first frame is drawn before anything slow happens: the database
connects in a worker after mount, and screens hear about it through
``on_db_ready``. A connection failure is a screen with the reason and how to
fix it, never a traceback.
"""

from __future__ import annotations

import gc
import importlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from djtui.config import Config
from djtui.errors import UserError
from djtui.services import commandlog, testhook
from djtui.services.audit import AuditLog, describe
from djtui.services.database import Database, resolve_connection
from djtui.tui.context import AppContext
from djtui.tui.keys import check_keymap, current_keymap, effective_key, key_label, known_binding_ids
from djtui.tui.screens.base import DjtuiScreen

WATCH_EVERY_S = 1.0
LONG_WAIT_S = 1.0  # a call waiting this long is a wait: the footer offers the Cancel-wait key
PROBE_AFTER_S = 3.0  # a call waiting this long makes the app ask whether the server answers at all
PROBE_EVERY_S = 5.0
PROBE_TIMEOUT_S = 3.0



@dataclass(frozen=True)
class ScreenEntry:
    """One of the six screens: its key and title, and where its class lives (imported when first shown)."""

    key: str
    title: str
    module: str
    cls_name: str

    def load(self) -> type[DjtuiScreen]:
        return getattr(importlib.import_module(self.module), self.cls_name)


# The first frame draws only the sessions screen: the others (and what they import: networkx for
# Export, boto3 for the S3 orphans, ...) load when first shown, so start-up does not pay for them;
# so do the dialogs (help, quit, connection error, command log), imported where they are opened.
SCREEN_TABLE: dict[str, ScreenEntry] = {
    "sessions": ScreenEntry("1", "Sessions", "djtui.tui.screens.status", "SessionsScreen"),
    "transfers": ScreenEntry("2", "Transfers", "djtui.tui.screens.transfers", "TransfersScreen"),
    "orphans": ScreenEntry("3", "Orphans", "djtui.tui.screens.orphans", "OrphansScreen"),
    "export": ScreenEntry("4", "Export", "djtui.tui.screens.export", "ExportScreen"),
    "accounts": ScreenEntry("5", "Accounts", "djtui.tui.screens.accounts", "AccountsScreen"),
    "backups": ScreenEntry("6", "Backups", "djtui.tui.screens.backups", "BackupsScreen"),
}


class _Screens(Mapping[str, tuple[str, type[DjtuiScreen]]]):
    """name -> (key, screen class); reading a value imports that screen's module (tests, tools)."""

    def __getitem__(self, name: str) -> tuple[str, type[DjtuiScreen]]:
        entry = SCREEN_TABLE[name]
        return entry.key, entry.load()

    def __iter__(self) -> Iterator[str]:
        return iter(SCREEN_TABLE)

    def __len__(self) -> int:
        return len(SCREEN_TABLE)


SCREENS: Mapping[str, tuple[str, type[DjtuiScreen]]] = _Screens()


def _screen_factory(entry: ScreenEntry) -> Callable[[], Screen]:
    return lambda: entry.load()()


_DIALOGS = {"CommandLogScreen": "djtui.tui.screens.command_log",
            "ConnectionErrorScreen": "djtui.tui.widgets.connection_error",
            "QuitScreen": "djtui.tui.widgets.quit_dialog"}


def __getattr__(name: str) -> object:
    """The dialogs by their old names here (tests, tools), imported on first use like the screens."""
    if name in _DIALOGS:
        return getattr(importlib.import_module(_DIALOGS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _collect_after_first_frame() -> None:
    """`djtui` starts with the garbage collector off (cli.main): start-up allocates much and frees little.
    What start-up made lives as long as the app: frozen, later full collections pass over it."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


class DjtuiApp(App[int]):
    CSS_PATH = str(Path(__file__).with_name("djtui.tcss"))
    TITLE = "djtui"
    MODES = {name: _screen_factory(entry) for name, entry in SCREEN_TABLE.items()}
    DEFAULT_MODE = "sessions"
    # every screen gets -short below 20 rows: djtui.tcss compacts dialogs for split panes over ssh
    VERTICAL_BREAKPOINTS = [(0, "-short"), (20, "-tall")]
    BINDINGS = [
        *[Binding(e.key, f"switch_mode('{name}')", e.title, show=False, id=f"screen.{name}")
          for name, e in SCREEN_TABLE.items()],
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("L", "command_log", "Log", show=False, id="app.command_log"),
        Binding("q", "quit", "Quit", id="app.quit"),
        # one key on every screen ends any wait for the database; offered only while one runs
        # (priority: a focused text field's own ctrl+x, cut, works whenever no wait runs)
        Binding("ctrl+x", "cancel_wait", "Cancel wait", priority=True, id="app.cancel_wait"),
    ]

    def __init__(self, config: Config, *, readonly: bool | None = None, connect: bool = True):
        if config.keys:  # a typo in keys: is exit 2, not a dead key (reading the ids takes ~0.1 s: only then)
            check_keymap(config.keys, known_binding_ids(self.BINDINGS), where=f"{config.label}: keys")
        super().__init__()
        if config.keys:
            self.set_keymap(dict(config.keys))
        ro = config.readonly if readonly is None else (readonly or config.readonly)
        self.ctx = AppContext(config=config, readonly=ro, audit=AuditLog(config.audit_log))
        self._connect = connect
        self.return_code_value = 0

    def on_mount(self) -> None:
        self.call_after_refresh(_collect_after_first_frame)
        report = testhook.first_frame_report()
        if report:  # tests only: what the first frame imported, then exit before connecting
            self.call_after_refresh(self._exit_after_first_frame, report)
        if self.ctx.readonly:
            self.sub_title = "read-only"
        self._report_interrupted()
        self._probed_at = -1e9
        self._wait_shown = False
        self.set_interval(WATCH_EVERY_S, self._watch_database)
        if self._connect:
            self.call_after_refresh(self.connect_database)

    def _exit_after_first_frame(self, report: str) -> None:
        testhook.write_loaded_modules(report)
        with open(report, "a") as f:
            f.write(f"gc-enabled={gc.isenabled()}\n")
        self.exit()

    # -- a database that does not answer -------------------------------------------------------

    def _db_in_use(self) -> Database | None:
        return self.ctx.db or self.ctx.connecting

    def _wait_running(self) -> bool:
        return self.ctx.db_wait is not None and self.ctx.db_wait >= LONG_WAIT_S

    def _watch_database(self) -> None:
        """Once a second: how long the oldest call has waited; past PROBE_AFTER_S, does the server answer?"""
        ctx = self.ctx
        db = self._db_in_use()
        before = (ctx.db_wait is not None and int(ctx.db_wait), ctx.db_answering, self._wait_running())
        ctx.db_wait = db.waiting_for() if db is not None else None
        if ctx.db_wait is None:
            ctx.db_answering = None
        elif ctx.db_wait >= PROBE_AFTER_S and time.monotonic() - self._probed_at >= PROBE_EVERY_S:
            self._probed_at = time.monotonic()
            self._probe(db)
        after = (ctx.db_wait is not None and int(ctx.db_wait), ctx.db_answering, self._wait_running())
        if after != before:
            self._refresh_headers()
        if after[2] != before[2]:
            self.refresh_bindings()

    @work(thread=True, exclusive=True, group="db-probe", exit_on_error=False)
    def _probe(self, db: Database) -> None:
        answering = db.probe(timeout=PROBE_TIMEOUT_S)
        self.call_from_thread(self._probed, answering)

    def _probed(self, answering: bool) -> None:
        if self.ctx.db_wait is not None:
            self.ctx.db_answering = answering
            self._refresh_headers()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_wait":
            return self._wait_running()
        return True

    def action_cancel_wait(self) -> None:
        db = self._db_in_use()
        ended = db.interrupt() if db is not None else 0
        if ended:
            self.notify(f"stopped waiting for the database ({ended} call{'s' if ended != 1 else ''})",
                        title="Cancelled", severity="warning")

    def _report_interrupted(self) -> None:
        try:
            cut = self.ctx.audit.interrupted()
        except OSError:
            return
        for entry in cut[-5:]:
            self.notify(f"{describe(entry)}; check its target before acting again (audit id {entry.get('id')})",
                        title="Interrupted action", severity="warning", timeout=20)

    @work(exclusive=True, group="connect", exit_on_error=False)
    async def connect_database(self) -> None:
        ctx = self.ctx
        ctx.connect_ended.clear()
        ctx.db_error = None
        try:
            ctx.db_settings = resolve_connection(ctx.config.database)
            db = ctx.connecting = Database(ctx.db_settings, readonly=ctx.readonly)
            ctx.server_info = await db.aserver_info()
            ctx.db = db
        except UserError as exc:
            ctx.db_error = exc
        except Exception as exc:  # driver or OS errors not already described
            ctx.db_error = UserError(commandlog.mask(f"{type(exc).__name__}: {exc}"),
                                     hint="run `djtui doctor` for a full check")
        if ctx.db is None and ctx.connecting is not None:
            ctx.connecting.close()
        ctx.connecting = None
        ctx.connect_ended.set()
        self._refresh_headers()
        if ctx.db_error is not None:
            from djtui.tui.widgets.connection_error import ConnectionErrorScreen
            self.push_screen(ConnectionErrorScreen(ctx.db_error, ctx.db_settings), self._after_error)
            return
        for screen in self._capability_screens():
            screen.on_db_ready()

    def _after_error(self, choice: str | None) -> None:
        if choice == "retry":
            self.connect_database()

    def _capability_screens(self) -> Iterable[DjtuiScreen]:
        seen = set()
        for stack in self._screen_stacks.values():
            for screen in stack:
                if isinstance(screen, DjtuiScreen) and id(screen) not in seen:
                    seen.add(id(screen))
                    yield screen

    def _refresh_headers(self) -> None:
        from djtui.tui.widgets.header import AppHeader
        for screen in self._capability_screens():
            for header in screen.query(AppHeader):
                header.refresh_info()

    def action_help(self) -> None:
        from djtui.tui.widgets.help import help_for
        self.push_screen(help_for(self.screen, app_bindings=self.BINDINGS, keymap=current_keymap(self),
                                  readonly=self.ctx.readonly))

    def _active_transfers(self) -> list:
        queue = self.ctx.jobs  # never made here: only if a job was ever queued
        return queue.active if queue is not None else []

    async def action_quit(self) -> None:
        """q and ctrl+q: quit at once, unless transfers would die with the app; then ask first."""
        from djtui.tui.widgets.quit_dialog import QuitScreen, quit_question
        jobs = self._active_transfers()
        if not jobs:
            self.exit()
            return
        if isinstance(self.screen, QuitScreen):
            return
        self.push_screen(QuitScreen(quit_question(jobs)), self._quit_answer)

    def _quit_answer(self, yes: bool | None) -> None:
        if yes:
            self._cancel_transfers_and_exit()

    @work(exclusive=True, group="quit", exit_on_error=False)
    async def _cancel_transfers_and_exit(self) -> None:
        queue = self.ctx.jobs
        if queue is not None:
            self.notify("cancelling the transfers…", timeout=30)
            await queue.cancel_all()
        self.exit()

    def action_command_log(self) -> None:
        from djtui.tui.screens.command_log import CommandLogScreen
        self.push_screen(CommandLogScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name, e in SCREEN_TABLE.items():
            yield SystemCommand(f"Go to {e.title}", f"switch to the {name} screen (key {e.key})",
                                lambda n=name: self.run_worker(self.switch_mode(n)))
        yield SystemCommand("Command log", "every SQL statement and command djtui ran", self.action_command_log)
        yield SystemCommand("Reconnect to the database", "connect again", self.connect_database)
        for b in getattr(screen, "BINDINGS", []):
            if isinstance(b, Binding) and b.description and screen.check_action(b.action, ()) is not False:
                action = b.action
                yield SystemCommand(f"{screen.__class__.__name__.removesuffix('Screen')}: {b.description}",
                                    f"key {key_label(effective_key(b, current_keymap(self)))}",
                                    lambda a=action, s=screen: self.run_worker(s.run_action(a)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place where a failed background job becomes a message instead of a traceback."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            err = event.worker.error
            text = err.render() if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
            self.notify(commandlog.mask(text), title=f"{event.worker.name or 'task'} failed",
                        severity="error", timeout=15)

    def on_unmount(self) -> None:
        if self.ctx.db is not None:
            self.ctx.db.close()
