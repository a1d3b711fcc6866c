"""`djtui audit ...`: the actions that were cut off (SIGKILL, power loss), and acknowledging them.

Every command already warns about interrupted actions when it starts; this is where an
operator lists them in full and, once the target was checked, acknowledges them so the
warning stops.
"""

from __future__ import annotations

import argparse
import sys

from djtui.cli.context import Context
from djtui.cli.output import emit_json, render_table
from djtui.errors import UserError
from djtui.services.audit import describe


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="interrupted destructive actions from the audit log")
    asub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    lp = asub.add_parser("interrupted", help="actions that started and never recorded an outcome")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=run_interrupted, quiet_interrupted=True)
    ap = asub.add_parser("ack", help="acknowledge an interrupted action once its target was checked")
    ap.add_argument("action_id", metavar="ID")
    ap.add_argument("--note", default="", help="what was checked or done")
    ap.set_defaults(func=run_ack, quiet_interrupted=True)


def warn_interrupted(ctx: Context) -> None:
    """At the start of a command: say which actions were cut off, so nobody acts on a half state blindly."""
    from djtui.services.audit import AuditLog
    try:
        cut = AuditLog(ctx.config.audit_log).interrupted()
    except (UserError, OSError, ValueError):
        return  # no usable config: the command itself will say so
    for entry in cut[-5:]:
        print(f"djtui: warning: {describe(entry)}; check its target before acting again "
              f"(audit id {entry.get('id')}; `djtui audit ack {entry.get('id')}` once checked)", file=sys.stderr)
    if len(cut) > 5:
        print(f"djtui: warning: {len(cut) - 5} more interrupted actions: `djtui audit interrupted`", file=sys.stderr)


def run_interrupted(ctx: Context) -> int:
    from djtui.services.audit import AuditLog, actor_of
    cut = AuditLog(ctx.config.audit_log).interrupted()
    if ctx.json:
        emit_json(cut)
        return 0
    if not cut:
        print("no interrupted actions")
        return 0
    print(render_table(("id", "started", "user", "action"),
                       [(e.get("id"), e.get("time"), actor_of(e).get("os_user"), describe(e)) for e in cut]))
    return 0


def run_ack(ctx: Context) -> int:
    from djtui.services.audit import AuditLog
    ctx.require_writable("audit ack")
    log = AuditLog(ctx.config.audit_log)
    ids = {e.get("id") for e in log.interrupted()}
    if ctx.args.action_id not in ids:
        raise UserError(f"{ctx.args.action_id!r} is not an interrupted action", where="audit ack ID",
                        hint="`djtui audit interrupted` lists them")
    log.acknowledge(ctx.args.action_id, ctx.args.note)
    print(f"acknowledged {ctx.args.action_id}")
    return 0
