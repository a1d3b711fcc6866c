"""`djtui dbbackup ...`: dump the server, restore-verify a dump, restore it, list and prune dumps.

``run`` prints progress on stderr and the finished folder's path as the LAST
line on stdout, so cron scripts can pick it up with ``tail -n1``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from djtui.cli.context import Context
from djtui.cli.output import confirm_typed, emit_json, render_table
from djtui.domain.units import human_age, human_bytes
from djtui.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dbbackup", help="database dumps: run, restore-verify, restore, list, prune")
    bsub = p.add_subparsers(dest="dbbackup_command", metavar="ACTION", required=True)

    r = bsub.add_parser("run", help="dump every schema (in parallel) and the whole server (PostgreSQL: its roles) "
                        "into a dated folder")
    r.add_argument("--out", type=Path, metavar="DIR", help="where dated folders go (default: dbbackup.out_dir)")
    r.add_argument("--parallel", type=int, metavar="N", help="schemas dumped at once (default: dbbackup.parallel)")
    r.add_argument("--schemas-only", action="store_true",
                   help="skip the whole-server dump (PostgreSQL: pg_dumpall --globals-only)")
    r.add_argument("--no-copy", action="store_true", help="do not rsync to dbbackup.remote")
    r.set_defaults(func=run_run)

    v = bsub.add_parser("verify", help="restore a dump into a scratch server and compare row counts")
    v.add_argument("dir", type=Path, metavar="DIR", nargs="?", help="a backup folder (see `dbbackup list`)")
    v.add_argument("--latest", action="store_true", help="the newest backup in dbbackup.out_dir (for cron)")
    v.add_argument("--out", type=Path, metavar="DIR", help="with --latest: where to look")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=run_verify)

    rs = bsub.add_parser("restore", help="load a backup into the server, over the same schemas or under new names",
                         description="Restore the per-schema dumps of a backup into the server. The plan is shown "
                         "first; overwriting existing schemas needs the typed text OVERWRITE N SCHEMAS. Renamed: "
                         "CREATE DATABASE/USE (PostgreSQL: CREATE SCHEMA) and every schema-qualified reference to a "
                         "restored schema go to its new name, so foreign keys between schemas restored together "
                         "point at the new copies; foreign keys into a schema not restored keep pointing at the "
                         "live one. On PostgreSQL the dumps (pg_dump's custom format) are read with pg_restore and "
                         "loaded in one psql transaction: a failure changes nothing.")
    rs.add_argument("backup", type=Path, metavar="BACKUP", help="a backup folder (see `dbbackup list`)")
    rs.add_argument("--schema", action="append", metavar="S", help="restore only this schema (repeatable)")
    rs.add_argument("--as", dest="prefix", metavar="PREFIX",
                    help="restore each schema S as PREFIX+S (e.g. --as restored_)")
    rs.add_argument("--rename", action="append", metavar="S=NEW", help="restore schema S as NEW (repeatable)")
    rs.add_argument("--no-safety-dump", action="store_true",
                    help="do not dump the schemas about to be overwritten first (default: they are dumped to "
                    "DIR/pre-restore/<stamp>, DIR being dbbackup.out_dir or the backup's folder)")
    rs.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    rs.add_argument("--confirm", metavar="TEXT",
                    help="confirm without a terminal: the text the plan asks for (RESTORE or OVERWRITE N SCHEMAS)")
    rs.add_argument("--json", action="store_true", help="print JSON")
    rs.set_defaults(func=run_restore)

    l_ = bsub.add_parser("list", help="backups with size, age and verified state")
    l_.add_argument("--out", type=Path, metavar="DIR")
    l_.add_argument("--json", action="store_true", help="print JSON")
    l_.set_defaults(func=run_list)

    pr = bsub.add_parser("prune", help="remove backups and pre-restore dumps outside keep_daily/weekly/monthly")
    pr.add_argument("--out", type=Path, metavar="DIR")
    pr.add_argument("--dry-run", action="store_true", help="show what would be removed, change nothing")
    pr.add_argument("--confirm", metavar="TEXT", help="confirm without a terminal: the text PRUNE")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.set_defaults(func=run_prune)


def _out_dir(ctx: Context) -> Path:
    out = getattr(ctx.args, "out", None) or ctx.config.dbbackup.out_dir
    if out is None:
        raise UserError("no backup folder given", where="dbbackup.out_dir",
                        hint="set dbbackup.out_dir in the config or pass --out DIR")
    return Path(out)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def do_backup(ctx: Context, out: Path, *, copy: bool = True, progress=_err) -> Path:
    """`dbbackup run`: lock, dump, optional remote copy (run_backup_and_copy, as the nightly job and the screen)."""
    from djtui.services import dbbackup

    ctx.require_writable("database backup")
    cfg = ctx.config.dbbackup
    parallel = getattr(ctx.args, "parallel", None) or cfg.parallel
    if parallel < 1:
        raise UserError("--parallel must be at least 1", where="--parallel")
    res = dbbackup.run_backup_and_copy(ctx.db, out, ctx.config.state_dir, remote=cfg.remote if copy else None,
                                       parallel=parallel, full_server=not getattr(ctx.args, "schemas_only", False),
                                       progress=progress)
    progress(f"dumped {res.counts()} in {res.seconds:.1f} s")
    return res.path


def run_run(ctx: Context) -> int:
    path = do_backup(ctx, _out_dir(ctx), copy=not ctx.args.no_copy)
    print(path, flush=True)
    return 0


def run_verify(ctx: Context) -> int:
    from djtui.services import dbbackup

    if (ctx.args.dir is None) == (not ctx.args.latest):
        raise UserError("give either a backup folder or --latest", where="dbbackup verify",
                        hint="e.g. `djtui dbbackup verify --latest`")
    if ctx.args.latest:
        items = dbbackup.list_backups(_out_dir(ctx))
        if not items:
            raise UserError(f"no backups in {_out_dir(ctx)}", hint="run `djtui dbbackup run` first")
        d = items[0].path
    else:
        d = ctx.args.dir
    if not d.is_dir():
        raise UserError(f"{d} is not a folder", where="DIR", hint="see `djtui dbbackup list`")
    ctx.require_writable("verify (writes verified.json)")
    res = dbbackup.verify_backup_locked(d, ctx.config.state_dir, progress=_err)
    if ctx.json:
        emit_json({"path": str(d), "ok": res.ok, "problems": res.problems, "tables": res.tables_checked,
                   "seconds": round(res.seconds, 2)})
    else:
        for p in res.problems:
            print(f"MISMATCH {p}")
        print(f"{'verified' if res.ok else 'NOT verified'}: {d} ({res.tables_checked} tables, "
              f"{res.seconds:.1f} s)")
    return 0 if res.ok else 1


def run_list(ctx: Context) -> int:
    from djtui.services import dbbackup

    items = dbbackup.list_backups(_out_dir(ctx))
    if ctx.json:
        emit_json([{"path": str(b.path), "created": b.stamp.isoformat(), "bytes": b.bytes, "schemas": b.schemas,
                    "age_hours": round(b.age_hours, 2), "verified": b.verified} for b in items])
        return 0
    if not items:
        print(f"no backups in {_out_dir(ctx)}")
        return 0
    print(render_table(["backup", "size", "age", "schemas", "verified"],
                       [[b.path.name, human_bytes(b.bytes), human_age(b.age_hours), b.schemas, b.verified or "no"]
                        for b in items], align="lrrrl"))
    return 0


def _audit(ctx: Context):
    from djtui.services.audit import AuditLog
    return AuditLog(ctx.config.audit_log)


def _db_user(ctx: Context) -> str | None:
    try:
        return ctx.config.database.user
    except Exception:
        return None


def run_prune(ctx: Context) -> int:
    from djtui.domain.retention import RetentionPolicy
    from djtui.services import dbbackup

    cfg = ctx.config.dbbackup
    out = _out_dir(ctx)
    plan = dbbackup.plan_prune(out, RetentionPolicy(cfg.keep_daily, cfg.keep_weekly, cfg.keep_monthly))
    if ctx.args.dry_run or not plan.remove:
        if ctx.json:
            emit_json({"dry_run": bool(ctx.args.dry_run), **plan.to_json()})
        else:
            print("\n".join(plan.lines()))
            print(f"dry run: nothing removed; to prune, confirm with {plan.confirm_word!r}"
                  if plan.remove else "nothing to prune")
        return 0
    ctx.require_writable("prune backups")
    if not ctx.json:
        print("\n".join(plan.lines()), flush=True)
    confirm_typed(plan.confirm_word, ctx.args.confirm, f"Remove {len(plan.remove)} backup(s) from {out}?")
    # executed once, re-checked at the moment of action: the set must still be the one shown
    removed = [str(p) for p in dbbackup.execute_prune(plan, ctx.config.state_dir, _audit(ctx))]
    if ctx.json:
        emit_json({"dry_run": False, "removed": removed})
    else:
        for r in removed:
            print(f"removed {r}")
    return 0


def _renames(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        src, sep, new = v.partition("=")
        if not sep or not src or not new:
            raise UserError(f"--rename {v!r} is not S=NEW", where="--rename",
                            hint="e.g. --rename mocap_sessions=old_sessions")
        if src in out:
            raise UserError(f"--rename names {src!r} twice", where="--rename")
        out[src] = new
    return out


def run_restore(ctx: Context) -> int:
    from djtui.services import dbbackup

    a = ctx.args
    if not a.dry_run:
        ctx.require_writable("restore (loads dumps into the server)")
    if not a.backup.is_dir():
        raise UserError(f"{a.backup} is not a folder", where="BACKUP", hint="see `djtui dbbackup list`")
    plan = dbbackup.plan_restore(ctx.db, a.backup, schemas=a.schema, prefix=a.prefix, renames=_renames(a.rename))
    if not plan.items:
        raise UserError(f"{a.backup} holds no schema dumps", where="BACKUP")
    safety = None if a.no_safety_dump else _safety_dir(ctx, a.backup)
    lines = plan.lines(safety)
    if a.dry_run:
        if ctx.json:
            emit_json({"dry_run": True, **plan.to_json()})
        else:
            print("\n".join(lines))
            print(f"dry run: nothing loaded; to restore, confirm with {plan.confirm_word!r}")
        return 0
    if not ctx.json:
        print("\n".join(lines), flush=True)
    ctx.announce_foreign_server()
    confirm_typed(plan.confirm_word, a.confirm, "Restore as planned above?")
    res = dbbackup.restore_backup(ctx.db, plan, ctx.config.state_dir, _audit(ctx), progress=_err,
                                  db_user=_db_user(ctx),
                                  safety_dir=safety)
    if ctx.json:
        emit_json({"dry_run": False, **plan.to_json(), "ok": res.ok, "problems": res.problems,
                   "tables": res.tables_checked, "seconds": round(res.seconds, 2),
                   "safety_backup": str(res.safety_backup) if res.safety_backup else None})
    else:
        if res.safety_backup:
            print(f"the overwritten schemas as they were: {res.safety_backup}")
        for p in res.problems:
            print(f"MISMATCH {p}")
        print(f"{'restored' if res.ok else 'restored with MISMATCHES'}: {len(plan.items)} schema(s), "
              f"{res.tables_checked} table(s) checked against the manifest ({res.seconds:.1f} s)")
    return 0 if res.ok else 1


def _safety_dir(ctx: Context, backup: Path) -> Path:
    """Where the schemas about to be overwritten are dumped first: beside the backups, out of `list`'s way."""
    from djtui.services.dbbackup import SAFETY_FOLDER

    return Path(ctx.config.dbbackup.out_dir or Path(backup).resolve().parent) / SAFETY_FOLDER
