"""`djtui orphans ...`: scan sources, quarantine orphans, restore and purge batches.

Dry-run is the default answer to "what would be cleaned"; nothing is removed
without ``quarantine`` and a typed ``QUARANTINE`` (or ``--confirm QUARANTINE``).
``quarantine`` acts on every reason a scan reports: orphan, unused and (unreferenced)
missing-object rows are deleted in a transaction after a re-check; untracked, zero-byte
and stale files go to the quarantine. ``--reason`` narrows a run to some reasons.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from djtui.cli.context import Context, announce_server
from djtui.cli.output import confirm_typed, emit_json, render_table
from djtui.domain.stores import REASONS, UNTRACKED_OBJECT
from djtui.errors import UserError

CONFIRM = "QUARANTINE"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("orphans", help="find and safely clean orphan rows, store objects and untracked files")
    osub = p.add_subparsers(dest="orphans_command", metavar="ACTION", required=True)

    s = osub.add_parser("scan", help="count orphans per source (read-only)")
    s.add_argument("--source", metavar="NAME", help="one source, with its items (table:DB.T, external:SCHEMA:STORE, "
                   "store:STORE, dir:PATH)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--limit", type=int, default=50, metavar="N", help="items to print without --json (default 50)")
    s.add_argument("--skip-empty-check", action="store_true",
                   help="do not read each object's size in 0.14 file stores, so zero-byte objects are not looked "
                        "for (one stat per object is most of a big store's scan)")
    s.set_defaults(func=run_scan)

    qp = osub.add_parser("quarantine",
                         help="move a source's orphans into the quarantine (rows: saved in a batch, then deleted)")
    qp.add_argument("--source", metavar="NAME", required=True)
    qp.add_argument("--reason", action="append", choices=REASONS, metavar="REASON",
                    help="act only on items of this reason (repeatable): " + ", ".join(REASONS))
    qp.add_argument("--dry-run", action="store_true", help="show what would be done, change nothing")
    qp.add_argument("--confirm", metavar="TEXT", help=f"confirm without a terminal: the text {CONFIRM}")
    qp.add_argument("--max-share", type=float, metavar="FRACTION",
                    help="allow removing up to this share of the source (default: orphans.max_share)")
    qp.add_argument("--json", action="store_true", help="print JSON")
    qp.set_defaults(func=run_quarantine)

    pp = osub.add_parser("purge", help="delete quarantined batches older than a grace period")
    pp.add_argument("--older-than", type=float, metavar="DAYS", help="default: orphans.purge_after_days")
    pp.add_argument("--json", action="store_true", help="print JSON")
    pp.set_defaults(func=run_purge)

    rp = osub.add_parser("restore", help="put a quarantined batch back exactly where it was")
    rp.add_argument("batch_id", metavar="BATCH_ID")
    rp.add_argument("--cleaner-config", metavar="FILE", type=Path,
                    help="the DataJoint-Cleaner TOML of an `orphans clean` batch: its store's keys")
    rp.add_argument("--skip-existing", action="store_true",
                    help="a row batch: restore the rows whose keys are free and keep the rows that took the others "
                         "(without it, a key that exists again with other contents refuses the whole batch)")
    rp.add_argument("--json", action="store_true", help="print JSON")
    rp.set_defaults(func=run_restore)

    cp = osub.add_parser("clean", help="run a DataJoint-Cleaner TOML file's cleaning runs through the safe path")
    cp.add_argument("--cleaner-config", metavar="FILE", required=True, type=Path)
    cp.add_argument("--dry-run", action="store_true", help="show what would be quarantined, change nothing")
    cp.add_argument("--confirm", metavar="TEXT", help=f"confirm without a terminal: the text {CONFIRM}")
    cp.add_argument("--max-share", type=float, metavar="FRACTION", help="default: orphans.max_share")
    cp.add_argument("--json", action="store_true", help="print JSON")
    cp.set_defaults(func=run_clean)

    lp = osub.add_parser("list-quarantine", help="list quarantined batches")
    lp.add_argument("--json", action="store_true", help="print JSON")
    lp.set_defaults(func=run_list)


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def _service(ctx: Context):
    from djtui.services.orphans import OrphanService
    return OrphanService(ctx.config, ctx.db)


def _size(n: int) -> str:
    from djtui.services.orphans import iec_size
    return iec_size(n)


def run_scan(ctx: Context) -> int:
    from djtui.services.orphans.model import line_of
    svc = _service(ctx)
    sources = [svc.resolve(ctx.args.source)] if ctx.args.source else svc.sources()
    results = [svc.scan(s, empty_check=not ctx.args.skip_empty_check) for s in sources]
    if ctx.json:
        out: dict = {"sources": [{"name": r.source.name, "kind": r.source.kind, "orphans": r.orphans,
                                  "bytes": r.bytes} for r in results]}
        warnings = [f"{r.source.name}: {w}" for r in results for w in r.warnings]
        if warnings:
            out["warnings"] = warnings
        if ctx.args.source:
            out["items"] = [i.to_json() for i in results[0].items]
        emit_json(out)
        return 0
    if not results:
        print("no sources: configure orphans.tables, orphans.directories or stores")
        return 0
    print(render_table(("source", "kind", "orphans", "bytes", "checked"),
                       [(r.source.name, r.source.kind, r.orphans, _size(r.bytes), r.total) for r in results],
                       align="llrrr"))
    for r in results:
        for w in r.warnings:
            print(f"warning: {r.source.name}: {w}")
    if ctx.args.source:
        r = results[0]
        if r.children:
            print("\nchild tables checked (parent rows each references):")
            print(render_table(("child table (columns)", "rows"), list(r.children), align="lr"))
        if r.items:
            print()
            # one line per orphan, with all its reasons (--json lists each reason as its own item)
            lines, more = r.listing
            shown = lines[: max(ctx.args.limit, 0)]
            table = []
            for n, i in enumerate(shown):
                reason, size = line_of(i, more.get(n))
                table.append((i.ident, "-" if size is None else size, reason + (f" ({i.detail})" if i.detail else "")))
            print(render_table(("path / key", "size", "reason"), table, align="lrl"))
            if len(lines) > len(shown):
                print(f"... and {len(lines) - len(shown)} more (use --json for all)")
    return 0


def _result_json(r) -> dict:
    return {"source": r.source, "dry_run": r.dry_run, "batch": r.batch_id, "items": r.acted, "rows": r.rows,
            "files": r.files, "bytes": r.bytes, "skipped": r.skipped,
            "skipped_why": dict(r.why_skipped), "reported_only": r.reported_only, "row_batch": r.row_batch}


def run_quarantine(ctx: Context) -> int:
    """Plan (a fresh dry run under the lock) -> the plan's confirmation text -> execute it once."""
    svc = _service(ctx)
    if ctx.args.max_share is not None and not 0 <= ctx.args.max_share <= 1:
        raise UserError(f"--max-share {ctx.args.max_share} is not between 0 and 1", where="--max-share")
    if not ctx.args.dry_run:
        ctx.require_writable("orphans quarantine")
        ctx.announce_foreign_server()
    plan = svc.plan(ctx.args.source, max_share=ctx.args.max_share, reasons=ctx.args.reason)
    preview = plan.preview
    assert preview is not None
    if ctx.args.dry_run or not preview.acted:
        if ctx.json:
            emit_json({**_result_json(preview), "would": [i.to_json() for i in preview.items],
                       "plan": plan.to_json()})
        else:
            print(f"dry run: {preview.acted} item(s) of {preview.source}: {preview.describe()}, "
                  f"{_size(preview.bytes)}")
            for i in preview.items[:50]:
                print(f"  {i.reason:16} {i.ident}")
        return 0
    confirm_typed(plan.confirm_word(), ctx.args.confirm, plan.summary())
    done = svc.execute(plan, max_share=ctx.args.max_share)
    if ctx.json:
        emit_json(_result_json(done))
    else:
        print(f"{done.source}: {done.describe()}")
    return 0


def run_restore(ctx: Context) -> int:
    ctx.require_writable("orphans restore")
    runs = []
    if ctx.args.cleaner_config is not None:
        from djtui.services.orphans import load_cleaner_runs
        runs = load_cleaner_runs(ctx.args.cleaner_config, _warn)
    svc = _service(ctx)
    restored = svc.restore(ctx.args.batch_id, cleaner_runs=runs, skip_existing=ctx.args.skip_existing)
    manifest = svc.quarantine().read_manifest(ctx.args.batch_id)
    if manifest.get("backend") == "rows":
        out = manifest.get("restore", {})
        if ctx.json:
            emit_json({"batch": ctx.args.batch_id, "table": manifest.get("table"), "restored": out.get("inserted"),
                       "already_present": out.get("already_present"),
                       "skipped_existing": out.get("skipped_existing")})
        else:
            extra = [f"{out[k]} {w}" for k, w in (("already_present", "were still in the table, identical"),
                                                  ("skipped_existing", "kept: their keys exist again"))
                     if out.get(k)]
            print(f"restored {out.get('inserted')} row(s) of batch {ctx.args.batch_id} into {manifest.get('table')}"
                  + (f" ({'; '.join(extra)})" if extra else ""))
        return 0
    if ctx.json:
        emit_json({"batch": ctx.args.batch_id, "restored": len(restored)})
    else:
        print(f"restored {len(restored)} file(s) of batch {ctx.args.batch_id}")
    return 0


def run_purge(ctx: Context) -> int:
    ctx.require_writable("orphans purge")
    if ctx.args.older_than is not None and ctx.args.older_than < 0:
        raise UserError(f"--older-than {ctx.args.older_than} is negative", where="--older-than")
    purged = _service(ctx).purge(ctx.args.older_than)
    if ctx.json:
        emit_json({"purged": [b.to_json() for b in purged]})
    else:
        print(f"purged {len(purged)} batch(es), {_size(sum(b.bytes for b in purged))}")
        for b in purged:
            print(f"  {b.batch_id}  {b.source}  {b.items} file(s)")
    return 0


def run_list(ctx: Context) -> int:
    batches = _service(ctx).quarantine().batches()
    if ctx.json:
        emit_json({"batches": [b.to_json() for b in batches]})
        return 0
    if not batches:
        print("the quarantine is empty")
        return 0
    print(render_table(("batch", "created", "source", "files", "bytes", "state"),
                       [(d["batch"], d["created"], d["source"], d["items"], _size(d["bytes"]), d["state"])
                        for d in (b.to_json() for b in batches)], align="lllrrl"))
    return 0


def run_clean(ctx: Context) -> int:
    """DataJoint-Cleaner's runs, but objects go to the quarantine (and only past the grace age)."""
    from djtui.services.orphans import cleaner_service, load_cleaner_runs

    runs = load_cleaner_runs(ctx.args.cleaner_config, _warn)
    if not ctx.args.dry_run:
        ctx.require_writable("orphans clean")
    services = [cleaner_service(ctx.config, r) for r in runs]
    report: list[dict] = []
    try:
        for run, svc in zip(runs, services, strict=True):
            announce_server(svc.db, f"{ctx.args.cleaner_config} (database_servers.{run.database_server}, "
                                    f"run {run.index})")
        previews = []
        for run, svc in zip(runs, services, strict=True):
            src = f"external:{run.schema}:{run.store}"
            # DataJoint-Cleaner's job is objects with no row; the other reasons are left to `quarantine`
            plan = svc.plan(src, max_share=ctx.args.max_share, reasons=[UNTRACKED_OBJECT])
            p = plan.preview
            assert p is not None
            previews.append((src, plan))
            if not ctx.json:
                print(f"run {run.index}: {src} on s3://{run.bucket}/{run.location}: {p.acted} untracked object(s), "
                      f"{_size(p.bytes)}")
        todo = sum(len(plan.items) for _, plan in previews)
        if ctx.args.dry_run or not todo:
            report = [{"run": r.index, "source": s, "dry_run": True, "items": plan.preview.acted,
                       "bytes": plan.preview.bytes} for r, (s, plan) in zip(runs, previews, strict=True)
                      if plan.preview is not None]
        else:
            confirm_typed(CONFIRM, ctx.args.confirm, f"{todo} object(s) of {len(runs)} run(s) will be moved into "
                          "the quarantine.")
            for run, svc, (src, plan) in zip(runs, services, previews, strict=True):
                done = svc.execute(plan, max_share=ctx.args.max_share)
                report.append({"run": run.index, "source": src, "dry_run": False, "batch": done.batch_id,
                               "items": done.acted, "bytes": done.bytes, "skipped": done.skipped})
                if not ctx.json:
                    print(f"run {run.index}: {done.acted} object(s) quarantined into batch {done.batch_id}; "
                          f"{done.skipped} skipped at the re-check")
    finally:
        for svc in services:
            svc.db.close()
    if ctx.json:
        emit_json({"runs": report})
    elif ctx.args.dry_run:
        print("dry run: nothing was changed")
    return 0
