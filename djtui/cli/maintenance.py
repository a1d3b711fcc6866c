"""`djtui maintenance ...`: disk check with runway, temp cleaning, and the nightly `run` for cron.

The work is in services/maintenance; this module parses and prints. ``run`` does disk check, temp
clean (stale files go into the orphans quarantine), an orphan scan summary and a database backup,
and notifies by e-mail/Slack when something failed or a drive is low. Exit 1 then, so cron's own
mail fires too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from djtui.cli.context import Context
from djtui.cli.output import emit_json, render_table
from djtui.errors import UserError
from djtui.services import maintenance


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("maintenance", help="disk space and runway, temp cleaning, the nightly cron run")
    msub = p.add_subparsers(dest="maintenance_command", metavar="ACTION", required=True)

    d = msub.add_parser("disk", help="free space per configured drive, its limit and runway (appends the history)")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=run_disk)

    t = msub.add_parser("tmp-clean", help="move files older than N days in the temp dirs into the orphans quarantine")
    t.add_argument("--dry-run", action="store_true", help="list what would be moved, change nothing")
    t.add_argument("--days", type=float, default=7.0, metavar="N", help="age limit in days (default 7)")
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(func=run_tmp_clean)

    r = msub.add_parser("run", help="disk check, temp clean, orphan summary, backup; notify on trouble (for cron)")
    r.add_argument("--no-backup", action="store_true", help="skip the database backup")
    r.add_argument("--no-orphans", action="store_true", help="skip the orphan scan summary")
    r.add_argument("--out", type=Path, metavar="DIR", help="backup folder (default: dbbackup.out_dir)")
    r.set_defaults(func=run_all)


def _disk(ctx: Context) -> list[maintenance.DriveStatus]:
    m = ctx.config.maintenance
    if not m.drives:
        raise UserError("no drives configured", where="maintenance.drives",
                        hint="add e.g. `drives: [{path: /data, min_free_gb: 200}]` to the config")
    return maintenance.check_disks(m.drives, m.history_csv, record=not ctx.readonly)


def run_disk(ctx: Context) -> int:
    status = _disk(ctx)
    if ctx.json:
        emit_json([{"path": str(s.path), "free_bytes": s.free_bytes, "total_bytes": s.total_bytes,
                    "min_free_gb": s.min_free_gb, "runway_days": s.runway_days, "low": s.low, "error": s.error}
                   for s in status])
    else:
        print(render_table(["drive", "free GiB", "total GiB", "limit GiB", "runway", "state"],
                           [maintenance.disk_row(s) for s in status], align="lrrrrl"))
        if ctx.readonly:
            print("(read-only: history not recorded)")
    return 1 if any(s.low or s.error for s in status) else 0


def run_tmp_clean(ctx: Context) -> int:
    dirs = maintenance.temp_dirs(ctx.config)
    if not dirs:
        raise UserError("no temp dirs configured", where="maintenance.temp_dirs",
                        hint='add e.g. `temp_dirs: ["/stores/tmp"]` to the config')
    if ctx.args.days <= 0:
        raise UserError("--days must be more than 0", where="--days")
    if not ctx.args.dry_run:
        ctx.require_writable("temp clean")
    res = maintenance.clean_temp_audited(ctx.config, ctx.db, dirs, max_age_days=ctx.args.days,
                                         dry_run=ctx.args.dry_run)
    verb = "would remove" if ctx.args.dry_run else "removed"
    if ctx.json:
        emit_json({"dry_run": ctx.args.dry_run, "files": [str(f) for f in res.files],
                   "dirs": [str(d) for d in res.dirs], "bytes": res.bytes, "skipped_links": res.skipped_links,
                   "skipped": res.skipped, "quarantine_batches": res.batches, "errors": res.errors})
    else:
        for f in res.files:
            print(f"{verb} {f} (into the quarantine)")
        for d in res.dirs:
            print(f"{verb} dir {d}")
        for e in res.errors:
            print(f"ERROR {e}", file=sys.stderr)
        print(f"{verb} {len(res.files)} files ({res.bytes} bytes) into the orphans quarantine, {len(res.dirs)} "
              f"empty dirs; {res.skipped_links} symlinks left alone"
              + (f"; `djtui orphans restore {res.batches[0]}` puts them back" if res.batches else ""))
    return 1 if res.errors else 0


def run_all(ctx: Context) -> int:
    """The cron job (services/maintenance/nightly.py): print the report, the problems on stderr."""
    ctx.require_writable("maintenance run")
    done = maintenance.run_nightly(ctx.config, ctx.db, backup=not ctx.args.no_backup,
                                   orphans=not ctx.args.no_orphans, out_dir=ctx.args.out)
    for line in done.report:
        print(line)
    for p in done.problems:
        print(f"PROBLEM {p}", file=sys.stderr)
    for e in done.notify_errors:
        print(f"NOTIFY {e}", file=sys.stderr)
    if done.notified:
        print(f"notified: {', '.join(done.notified)}", file=sys.stderr)
    return 1 if done.problems else 0
