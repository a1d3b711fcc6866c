"""`djtui doctor`: one table that says whether this machine is ready, and what to fix."""

from __future__ import annotations

import argparse
import os
import shutil
import textwrap

from djtui.cli.context import Context
from djtui.cli.output import emit_json, render_table
from djtui.domain.units import plural


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check config, database, stores, mounts, tools and disk space")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="seconds to wait for a mount before calling it hung (default: sessions.mount_timeout)")
    p.set_defaults(func=run)


def fit_rows(headers: tuple[str, ...], rows: list[tuple[str, ...]], width: int) -> list[tuple[str, ...]]:
    """Rows whose last two columns are wrapped so that each line fits ``width`` (continuation rows).

    The next-to-last column (a check's name, which can be a long path) keeps its natural width while it
    takes at most a third of the room; the last column (the detail) gets the rest.
    """
    from rich.cells import cell_len
    n = len(headers)
    natural = [max(cell_len(r[i]) for r in [headers, *rows]) for i in range(n)]
    room = max(32, width - sum(natural[:-2]) - 2 * (n - 1))
    name_w = min(natural[-2], max(12, room // 3)) if natural[-2] + natural[-1] > room else natural[-2]
    detail_w = max(20, room - name_w)
    out: list[tuple[str, ...]] = []
    for row in rows:
        names = textwrap.wrap(row[-2], name_w, break_on_hyphens=False) or [""]
        details = textwrap.wrap(row[-1], detail_w, break_on_hyphens=False) or [""]
        for i in range(max(len(names), len(details))):
            head = row[:-2] if i == 0 else tuple("" for _ in row[:-2])
            out.append((*head, names[i] if i < len(names) else "", details[i] if i < len(details) else ""))
    return out


def _short(where: str, home: str, cwd: str) -> str:
    """A searched path as people write it: ``./name`` in the current directory, ``~/...`` in the home."""
    for base, short in ((cwd, "."), (home, "~")):
        if where.startswith(base.rstrip("/") + "/"):
            return short + where[len(base.rstrip("/")):]
    return where


def run(ctx: Context) -> int:
    from djtui.services.health import config_search, run_checks

    checks = run_checks(ctx.config, timeout=ctx.args.timeout)
    searched = config_search(getattr(ctx.args, "config", None))
    failed = [c for c in checks if not c.ok]
    if ctx.json:
        emit_json({"ok": not failed, "checks": [c.__dict__ for c in checks],
                   "searched": [{"where": w, "found": f} for w, f in searched]})
        return 1 if failed else 0
    width = shutil.get_terminal_size((100, 24)).columns
    headers = ("", "area", "check", "detail")
    rows = [("✓" if c.ok and not c.warn else ("⚠" if c.ok or c.warn else "✗"), c.area, c.name,
             " ".join(c.detail.split()))
            for c in checks]
    print(render_table(headers, fit_rows(headers, rows, width)))
    print()
    home, cwd = os.path.expanduser("~"), os.getcwd()
    print(textwrap.fill(f"config files searched, in order (✓ found; ~ is {home}, . is {cwd}):", width - 1,
                        break_on_hyphens=False))
    for where, found in searched:
        print(textwrap.fill(f"{'✓' if found else '-'} {_short(where, home, cwd)}", width - 1,
                            initial_indent="  ", subsequent_indent="      "))
    print()
    if ctx.config.path is None:
        print(textwrap.fill("nothing configured: `djtui init` writes a commented config; `djtui demo` opens djtui "
                            "on a demo lab", width - 1))
    print("all good" if not failed else f"{plural(len(failed), 'problem')}: see the ✗ rows")
    return 1 if failed else 0
