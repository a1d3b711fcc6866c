"""The headless twin of the app: argument parsing, subcommands, output, exit codes.

Each capability registers its subcommands from its own module in this
package (``sessions``, ``orphans``, ``export``, ``accounts``, ...), so the
commands of one capability live together. Exit codes: 0 done, 1 a check or
an operation failed, 2 bad input or configuration, 130 interrupted.

What commands share lives in modules of its own, never in this package (which imports every command
module): ``context`` (Context), ``output`` (JSON, tables, typed confirmation), ``app`` (`djtui app`).
The CLI may import services, domain, config, errors, the TUI (to run it) and the tools (demo).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from djtui.cli.app import run_app
from djtui.cli.context import Context
from djtui.errors import READONLY_RULE, OperationFailed, UserError
from djtui.services import commandlog

# modules of this package that add subcommands; each has register(subparsers)
COMMAND_MODULES = ("doctor", "init", "demo", "sessions", "orphans", "export", "accounts", "dbbackup", "maintenance",
                   "audit")


def build_parser(commands: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
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
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    app = sub.add_parser("app", help="open the terminal app (the default)")
    app.set_defaults(func=run_app)
    for name in commands:
        try:
            module = importlib.import_module(f"djtui.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"djtui.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def _opens_app_only(argv: Sequence[str]) -> bool:
    """`djtui` or `djtui app` with global options only: the app's first frame need not import every command.

    The command modules import their services (0.2 s); anything else, help included, gets the full parser.
    """
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            if next(args, None) is None:
                return False
        elif not (arg.startswith("--config=") or arg in ("--readonly", "--no-mouse")):
            rest.append(arg)
    return rest in ([], ["app"])


class _VersionAction(argparse.Action):
    """Looks the version up only when asked: importlib.metadata costs the app's first frame 15 ms."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        parser.exit(message=f"djtui {_version()}\n")


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("djtui")
    except Exception:
        return "0+unknown"


def _crash_report(exc: BaseException, ctx: Context | None) -> str:
    text = commandlog.mask("".join(traceback.format_exception(exc)))
    try:
        base = ctx.config.state_dir if ctx and ctx.config_loaded else Path(os.path.expanduser("~/.local/state/djtui"))
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
    argv = sys.argv[1:] if argv is None else list(argv)
    app_only = _opens_app_only(argv)
    if app_only:  # start-up makes objects and frees few: the app collects again after its first frame
        gc.disable()
    parser = build_parser(() if app_only else COMMAND_MODULES)
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
