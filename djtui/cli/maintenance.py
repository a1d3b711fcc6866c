"""`djtui maintenance ...`: disk check with runway, temp cleaning, and the nightly `run` for cron.

``run`` does disk check, temp clean, an orphan scan summary (when the orphans
service is installed) and a database backup, and notifies by e-mail/Slack when
something failed or a drive is low. Exit 1 then, so cron's own mail fires too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from djtui.cli.context import Context
from djtui.cli.output import emit_json, render_table
from djtui.errors import OperationFailed, UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("maintenance", help="disk space and runway, temp cleaning, the nightly cron run")
    msub = p.add_subparsers(dest="maintenance_command", metavar="ACTION", required=True)

    d = msub.add_parser("disk", help="free space per configured drive, its limit and runway (appends the history)")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=run_disk)

    t = msub.add_parser("tmp-clean", help="remove files older than N days in the configured temp dirs")
    t.add_argument("--dry-run", action="store_true", help="list what would be removed, change nothing")
    t.add_argument("--days", type=float, default=7.0, metavar="N", help="age limit in days (default 7)")
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(func=run_tmp_clean)

    r = msub.add_parser("run", help="disk check, temp clean, orphan summary, backup; notify on trouble (for cron)")
    r.add_argument("--no-backup", action="store_true", help="skip the database backup")
    r.add_argument("--no-orphans", action="store_true", help="skip the orphan scan summary")
    r.add_argument("--out", type=Path, metavar="DIR", help="backup folder (default: dbbackup.out_dir)")
    r.set_defaults(func=run_all)


def _gb(n: float) -> str:
    return f"{n / 1024**3:.1f}"


def _disk(ctx: Context):
    from djtui.services import maintenance

    m = ctx.config.maintenance
    if not m.drives:
        raise UserError("no drives configured", where="maintenance.drives",
                        hint="add e.g. `drives: [{path: /data, min_free_gb: 200}]` to the config")
    return maintenance.check_disks(m.drives, m.history_csv, record=not ctx.readonly)


def _disk_lines(status) -> list[list[str]]:
    rows = []
    for s in status:
        if s.error:
            rows.append([str(s.path), "-", "-", f"{s.min_free_gb:g}", "-", f"ERROR {s.error}"])
            continue
        runway = "-" if s.runway_days is None else f"{s.runway_days:.0f} d"
        rows.append([str(s.path), _gb(s.free_bytes), _gb(s.total_bytes), f"{s.min_free_gb:g}", runway,
                     "LOW" if s.low else "ok"])
    return rows


def run_disk(ctx: Context) -> int:
    status = _disk(ctx)
    if ctx.json:
        emit_json([{"path": str(s.path), "free_bytes": s.free_bytes, "total_bytes": s.total_bytes,
                    "min_free_gb": s.min_free_gb, "runway_days": s.runway_days, "low": s.low, "error": s.error}
                   for s in status])
    else:
        print(render_table(["drive", "free GiB", "total GiB", "limit GiB", "runway", "state"], _disk_lines(status),
                           align="lrrrrl"))
        if ctx.readonly:
            print("(read-only: history not recorded)")
    return 1 if any(s.low or s.error for s in status) else 0


def _clean(ctx: Context, dry_run: bool, days: float):
    from djtui.services import maintenance
    from djtui.services.audit import AuditLog
    from djtui.services.locks import exclusive

    dirs = ctx.config.maintenance.temp_dirs
    if not dirs:
        raise UserError("no temp dirs configured", where="maintenance.temp_dirs",
                        hint='add e.g. `temp_dirs: ["/stores/tmp"]` to the config')
    if days <= 0:
        raise UserError("--days must be more than 0", where="--days")
    if dry_run:
        return maintenance.clean_temp(dirs, max_age_days=days, dry_run=True)
    ctx.require_writable("temp clean")
    with exclusive(ctx.config.state_dir, "maintenance:tmp-clean", purpose="tmp-clean"), \
            AuditLog(ctx.config.audit_log).action("tmp-clean", target=", ".join(map(str, dirs)),
                                                   dirs=[str(d) for d in dirs], days=days) as rec:
        res = maintenance.clean_temp(dirs, max_age_days=days)
        rec.outcome("ok" if not res.errors else "partial", files=len(res.files), dirs=len(res.dirs),
                    bytes=res.bytes, errors=res.errors[:20])
    return res


def run_tmp_clean(ctx: Context) -> int:
    res = _clean(ctx, ctx.args.dry_run, ctx.args.days)
    verb = "would remove" if ctx.args.dry_run else "removed"
    if ctx.json:
        emit_json({"dry_run": ctx.args.dry_run, "files": [str(f) for f in res.files],
                   "dirs": [str(d) for d in res.dirs], "bytes": res.bytes, "skipped_links": res.skipped_links,
                   "errors": res.errors})
    else:
        for f in res.files:
            print(f"{verb} {f}")
        for d in res.dirs:
            print(f"{verb} dir {d}")
        for e in res.errors:
            print(f"ERROR {e}", file=sys.stderr)
        print(f"{verb} {len(res.files)} files ({res.bytes} bytes), {len(res.dirs)} empty dirs; "
              f"{res.skipped_links} symlinks left alone")
    return 1 if res.errors else 0


def run_all(ctx: Context) -> int:
    """The cron job: every step runs even if an earlier one failed; problems are mailed at the end."""
    from djtui.services import maintenance, notify

    ctx.require_writable("maintenance run")
    report: list[str] = []
    problems: list[str] = []
    m = ctx.config.maintenance

    if m.drives:
        status = maintenance.check_disks(m.drives, m.history_csv)
        for row in _disk_lines(status):
            report.append(f"disk {row[0]}: {row[1]} GiB free of {row[2]}, limit {row[3]}, runway {row[4]}, {row[5]}")
        for s in status:
            if s.error:
                problems.append(f"disk {s.path}: {s.error}")
            elif s.low:
                problems.append(f"disk {s.path} is low: {s.free_gb:.1f} GiB free, limit {s.min_free_gb:g} GiB")
    if m.temp_dirs:
        try:
            res = _clean(ctx, False, 7.0)
            report.append(f"temp clean: removed {len(res.files)} files ({res.bytes} bytes), {len(res.dirs)} dirs")
            problems.extend(f"temp clean: {e}" for e in res.errors)
        except (OperationFailed, UserError, OSError) as exc:
            problems.append(f"temp clean failed: {exc}")
    if not ctx.args.no_orphans:
        try:
            summary = maintenance.orphan_summary(ctx.config, ctx.db)
            if summary is not None:
                report.append("orphans:\n" + summary)
        except Exception as exc:  # a summary is informative; its failure is reported, not fatal
            problems.append(f"orphan scan failed: {exc}")
    if not ctx.args.no_backup:
        out = ctx.args.out or ctx.config.dbbackup.out_dir
        if out is None:
            report.append("backup: skipped (dbbackup.out_dir not set)")
        else:
            from djtui.cli.dbbackup import do_backup
            try:
                path = do_backup(ctx, Path(out), progress=lambda _m: None)
                report.append(f"backup: {path}")
            except (OperationFailed, UserError, OSError) as exc:
                problems.append(f"backup failed: {exc}")

    for line in report:
        print(line)
    for p in problems:
        print(f"PROBLEM {p}", file=sys.stderr)
    if problems:
        body = "\n".join(["Problems:", *(f"- {p}" for p in problems), "", "Report:", *report])
        res = notify.notify(m.notify, f"djtui maintenance: {len(problems)} problem(s)", body)
        for e in res.errors:
            print(f"NOTIFY {e}", file=sys.stderr)
        if res.sent:
            print(f"notified: {', '.join(res.sent)}", file=sys.stderr)
    return 1 if problems else 0
