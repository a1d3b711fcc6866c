"""`djtui` and `djtui app`: open the terminal app, after checking that this terminal can draw it."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from djtui.errors import UserError

if TYPE_CHECKING:
    from djtui.cli.context import Context


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
