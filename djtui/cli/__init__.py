"""The headless twin of the app: argument parsing, subcommands, output, exit codes.

Each capability registers its subcommands from its own module in this
package (``sessions``, ``orphans``, ``export``, ``accounts``, ...), so the
commands of one capability live together. Exit codes: 0 done, 1 a check or
an operation failed, 2 bad input or configuration, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from djtui.errors import READONLY_RULE, OperationFailed, ReadOnlyError, UserError
from djtui.services import commandlog

if TYPE_CHECKING:
    from djtui.config import Config
    from djtui.services.database import Database

# modules of this package that add subcommands; each has register(subparsers)
COMMAND_MODULES = ("doctor", "init", "demo", "sessions", "orphans", "export", "accounts", "dbbackup", "maintenance",
                   "audit")


@dataclass
class Context:
    """What every command gets: the parsed arguments, the config, a database handle."""

    args: argparse.Namespace
    _config: Config | None = field(default=None, repr=False)
    _db: Database | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            from djtui.config import load_config
            self._config = load_config(getattr(self.args, "config", None))
        return self._config

    @property
    def readonly(self) -> bool:
        return bool(getattr(self.args, "readonly", False)) or self.config.readonly

    def announce_foreign_server(self) -> str | None:
        """Before acting on a server that a config djtui does not own named (DataJoint's files, DJ_*), say
        which server answered (host:port, flavor, version, user) on stderr; None when djtui's config named it."""
        origin = foreign_server_origin(self.db)
        return announce_server(self.db, origin) if origin is not None else None

    def require_writable(self, action: str) -> None:
        if self.readonly:
            raise ReadOnlyError(action)

    @property
    def db(self) -> Database:
        if self._db is None:
            from djtui.services.database import Database
            self._db = Database.from_config(self.config, readonly=self.readonly)
        return self._db

    @cached_property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def emit_json(data: Any) -> None:
    """JSON on stdout; a file name that is not UTF-8 (a lone surrogate here) goes out as a ``\\udcXX`` escape."""
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write(_LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))
    sys.stdout.write("\n")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str | None = None) -> str:
    """A plain text table; ``align`` holds one of 'l'/'r' per column."""
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)
    lines = []
    for n, row in enumerate(cells):
        parts = []
        for i, c in enumerate(row):
            pad = widths[i] - _width(c)
            parts.append(" " * pad + c if align[i] == "r" else c + " " * pad)
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _width(text: str) -> int:
    from rich.cells import cell_len
    return cell_len(text)


def foreign_server_origin(db: Database) -> str | None:
    """Where the host came from when it is a config djtui does not own (DataJoint's files, DJ_*), else None."""
    for s in db.settings.sources:
        key, _, origin = s.partition(": ")
        if key == "host" and origin != "config file":
            return origin
    return None


def announce_server(db: Database, origin: str) -> str:
    """Before acting on a server a foreign config named: say which server answered (stderr, JSON stays clean)."""
    info = db.server_info()
    line = (f"acting on server {db.settings.address} ({info.flavor} {info.version}, user {info.current_user}), "
            f"named by {origin}")
    print(line, file=sys.stderr)
    return line


def confirm_typed(expected: str, supplied: str | None, prompt: str) -> None:
    """A destructive action's confirmation: typed on a terminal, or --confirm without one."""
    if supplied is not None:
        if supplied != expected:
            raise UserError(f"confirmation text {supplied!r} does not match {expected!r}",
                            where="--confirm", hint=f"pass --confirm {expected!r} exactly")
        return
    if not sys.stdin.isatty():
        raise UserError("this action needs a typed confirmation and there is no terminal",
                        hint=f"pass --confirm {expected!r} to confirm non-interactively")
    try:
        answer = input(f"{prompt}\nType {expected} to confirm: ")
    except EOFError:
        answer = ""
    if answer.strip() != expected:
        raise OperationFailed("not confirmed: nothing was changed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="djtui",
        description="Move, check, clean, export and govern a DataJoint lab's data. "
                    "Without a command, opens the terminal app.",
        epilog=READONLY_RULE,
    )
    parser.add_argument("--config", metavar="FILE", help="config file (default: $DJTUI_CONFIG, "
                        "./backup_config.yaml, then ~/.config/djtui/config.yaml)")
    parser.add_argument("--readonly", action="store_true",
                        help="change nothing in the lab (see Read-only below); djtui's own state_dir is still written")
    parser.add_argument("--no-mouse", action="store_true", help="app: leave the mouse to the terminal")
    parser.add_argument("--version", action="version", version=f"djtui {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    app = sub.add_parser("app", help="open the terminal app (the default)")
    app.set_defaults(func=run_app)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"djtui.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"djtui.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("djtui")
    except Exception:
        return "0+unknown"


DUMB_TERMS = frozenset({"", "dumb", "unknown"})


def require_terminal() -> None:
    """The app draws with xterm escape sequences: refuse, with what it needs, where they cannot work.

    Without this, ``djtui`` in cron or a pipe ran forever writing escape codes into a file, and a
    dumb terminal (Emacs' shell, a serial console) showed garbage.
    """
    hint = ("scripts and cron jobs use the commands instead (djtui status-range, djtui doctor, djtui --help)")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("the app needs a terminal: stdin and stdout are not one", where="djtui app", hint=hint)
    term = os.environ.get("TERM", "")
    if term in DUMB_TERMS:
        raise UserError(f"TERM={term or '(unset)'} says this terminal cannot draw a full-screen app",
                        where="djtui app",
                        hint="run it in a terminal emulator; if this one is (most are), set TERM, e.g. "
                             f"`TERM=xterm-256color djtui`; {hint}")


def run_app(ctx: Context) -> int:
    from djtui.tui.app import DjtuiApp
    require_terminal()
    app = DjtuiApp(config=ctx.config, readonly=ctx.readonly)
    app.run(mouse=not ctx.args.no_mouse)
    return app.return_code or 0


def _crash_report(exc: BaseException, ctx: Context | None) -> str:
    text = commandlog.mask("".join(traceback.format_exception(exc)))
    try:
        base = ctx.config.state_dir if ctx and ctx._config else Path(os.path.expanduser("~/.local/state/djtui"))
        base.mkdir(parents=True, exist_ok=True)
        path = base / f"crash-{time.strftime('%Y%m%d-%H%M%S')}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return str(path)
    except OSError:
        return "(could not be written)"


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a non-UTF-8 file name must not crash a report about it
        try:
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            pass
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[Context], int] = getattr(args, "func", run_app)
    ctx = Context(args)
    try:
        if func is not run_app and not getattr(args, "quiet_interrupted", False):
            from djtui.cli.audit import warn_interrupted
            warn_interrupted(ctx)  # the app shows the same as a notification
        return int(func(ctx) or 0)
    except UserError as exc:
        print(f"djtui: error: {commandlog.mask(exc.render())}", file=sys.stderr)
        return exc.exit_code
    except OperationFailed as exc:
        print(f"djtui: failed: {commandlog.mask(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("djtui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        where = _crash_report(exc, ctx)
        print(f"djtui: internal error: {type(exc).__name__}: {commandlog.mask(str(exc))}\n"
              f"  the details are in {where}; please report it", file=sys.stderr)
        return 1
    finally:
        ctx.close()
