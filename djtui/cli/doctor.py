"""`djtui doctor`: one table that says whether this machine is ready, and what to fix."""

from __future__ import annotations

import argparse

from djtui.cli import Context, emit_json, render_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check config, database, mounts, tools and disk space")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="seconds to wait for a mount before calling it hung (default: sessions.mount_timeout)")
    p.set_defaults(func=run)


def run(ctx: Context) -> int:
    from djtui.services.health import run_checks

    checks = run_checks(ctx.config, timeout=ctx.args.timeout)
    failed = [c for c in checks if not c.ok]
    if ctx.json:
        emit_json({"ok": not failed, "checks": [c.__dict__ for c in checks]})
    else:
        rows = [("✓" if c.ok and not c.warn else ("⚠" if c.ok or c.warn else "✗"), c.area, c.name,
                 " ".join(c.detail.split()))
                for c in checks]
        print(render_table(("", "area", "check", "detail"), rows))
        print()
        print("all good" if not failed else f"{len(failed)} problem(s): see the ✗ rows")
    return 1 if failed else 0
