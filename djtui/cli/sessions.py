"""The backup manager's commands, with the same names and flags, plus --json.

status-range, status, sync, batch, verify, delete, bulk-delete. Exit codes:
0 done, 1 a check or operation failed, 2 bad input or config.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys

from djtui.cli.context import Context
from djtui.cli.output import confirm_typed, emit_json, render_table
from djtui.domain.rsync import bwlimit_label
from djtui.domain.sessions import SessionStatus, cell, matches_prefix, parse_range, plural, session_key
from djtui.domain.units import human_bytes
from djtui.errors import UserError
from djtui.services.audit import AuditLog
from djtui.services.sessions import SessionService, keys_for_batch
from djtui.services.sessions.delete_plan import DeletePlan, plan_delete
from djtui.services.sessions.deletion import DeleteResult
from djtui.services.transfers import JobQueue, sync_args, verify_session


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status-range", help="table of sessions (local ones, and those only in the database or at "
                       "a destination): DJ, Backup, Verified, Safe")
    p.add_argument("--start-date", metavar="YYYYMMDD")
    p.add_argument("--end-date", metavar="YYYYMMDD")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_status_range)

    p = sub.add_parser("status", help="detailed status of one session")
    _session_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("sync", help="copy one session to its destination(s) with rsync, then verify")
    _session_args(p)
    p.add_argument("--dry-run", action="store_true", help="show what would be copied")
    p.add_argument("--dest", metavar="NAME", help="only this destination (default: every enabled one)")
    p.add_argument("--checksum", action="store_true", help="verify contents with a hash after copying")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("batch", help="sync every local session in a date range (END absent: that one day)")
    p.add_argument("start_date", metavar="START")
    p.add_argument("end_date", metavar="END", nargs="?")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--dest", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("verify", help="compare every file of a session with its backup")
    _session_args(p)
    p.add_argument("--checksum", action="store_true", help="also compare content hashes (xxh3, cached)")
    p.add_argument("--dest", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("delete", help="delete a session's local copy after every safety check")
    _session_args(p)
    p.add_argument("--dry-run", action="store_true", help="run every check, delete nothing")
    p.add_argument("--confirm", metavar="TEXT", help="without a terminal: must be exactly DELETE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("bulk-delete", help="delete every safe session in a date range")
    p.add_argument("--start-date", metavar="YYYYMMDD")
    p.add_argument("--end-date", metavar="YYYYMMDD")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--confirm", metavar="TEXT", help="without a terminal: must be exactly 'DELETE ALL'")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bulk_delete)


def _session_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("participant_id", metavar="PARTICIPANT")
    p.add_argument("session_date", metavar="YYYYMMDD")


def _service(ctx: Context) -> SessionService:
    return SessionService(ctx.config, ctx.db)


def _out(text: str = "") -> None:
    print(text)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


NOT_LOCAL = "–"  # Safe does not apply: nothing on local disk


def status_rows(statuses: list[SessionStatus]) -> list[list[str]]:
    """One row per session; one not on local disk: Backup says whether a destination holds files of it,
    Verified and Safe do not apply (–)."""
    return [[s.key.date_str, s.key.participant_id, str(s.videos), human_bytes(s.source.bytes),
             cell(s.dj.imported), cell(s.backup, s.hung or s.backup_partial),
             cell(s.verified, s.hung or s.needs_verify), cell(s.safe)] if s.local else
            [s.key.date_str, s.key.participant_id + " (not local)", "0", "–", cell(s.dj.imported),
             cell(s.at_destination, s.hung), NOT_LOCAL, NOT_LOCAL]
            for s in statuses]


def warn_odd_folders(svc: SessionService, say=None) -> list[str]:
    """The warnings about session-like folders discovery could not use; printed to stderr by default."""
    lines = []
    found = svc.last_discovery
    for paths, why in ((found.odd_folders, "its participant folder name is not a usable participant "
                        "id (letters, digits, _ - . only); rename it to back it up with djtui"),
                       (found.odd_dates, "it holds files but its date folder name is not a valid "
                        "date (YYYYMMDD); rename it to the session's date to back it up with djtui")):
        lines += [f"warning: skipped {path!r}: {why}" for path in paths[:10]]
        if len(paths) > 10:
            lines.append(f"warning: ... and {plural(len(paths) - 10, 'more such folder')}")
    for line in lines:
        (say or _err)(line)
    return lines


HEADERS = ["Date", "Participant", "Videos", "Size", "DJ", "Backup", "Verified", "Safe"]


def cmd_status_range(ctx: Context) -> int:
    start, end = parse_range(ctx.args.start_date, ctx.args.end_date)
    svc = _service(ctx)
    statuses = svc.status_range(start, end)
    warn_odd_folders(svc)
    if ctx.json:
        emit_json([s.to_json() for s in statuses])
        return 0
    if not statuses:
        _out("no sessions in that range (on local disk, in the database or at a destination)")
        return 0
    _out(render_table(HEADERS, status_rows(statuses), align="llrrllll"))
    safe = sum(s.safe for s in statuses)
    local = [s for s in statuses if s.local]
    _out(f"\n{plural(len(statuses), 'session')}, {safe} safe to delete, "
         f"{human_bytes(sum(s.source.bytes for s in statuses))} local")
    away = len(statuses) - len(local)
    if away:
        _out(f"{NOT_LOCAL} in Verified and Safe: {plural(away, 'session')} {'is' if away == 1 else 'are'} not on "
             "local disk (only in the database or at a destination): nothing to verify or delete")
    partial = sum(s.backup_partial for s in local)
    if partial:
        _out(f"⚠ in Backup: {plural(partial, 'session')} {'has' if partial == 1 else 'have'} a partial backup "
             "(some files missing or of another size); `djtui status P D` shows n of m files")
    pending = sum(s.needs_verify for s in local)
    if pending:
        _out(f"⚠ in Verified: {plural(pending, 'backup')} {'matches' if pending == 1 else 'match'} by size but "
             f"{'has' if pending == 1 else 'have'} no current verification; "
             "run `djtui verify P D` (or sync) to make them count as safe")
    errors = {s.dj.error for s in statuses if s.dj.error}
    for e in sorted(errors)[:3]:
        _err(f"warning: DJ column unknown: {e}")
    for s in statuses:
        if s.hung:
            hung = [d for d in s.destinations if d.mount == "hung"]
            _err(f"warning: {hung[0].name} is not answering: {hung[0].detail}; {hung[0].remount_hint}")
            break
    return 0


def cmd_status(ctx: Context) -> int:
    key = session_key(ctx.args.participant_id, ctx.args.session_date)
    st = _service(ctx).status(key)
    if st.exists_nowhere:
        where = ", ".join(d.name for d in st.destinations) or "no destination enabled"
        msg = (f"no session {key.label}: not on local disk ({st.source_path}), not in the database "
               f"(participant {st.db_participant}), not at any destination ({where}); check the id and the date")
        if ctx.json:
            emit_json({**st.to_json(), "exists": False, "message": msg})
        else:
            _err(msg)
        return 1
    if ctx.json:
        emit_json(st.to_json())
        return 0
    _out(f"Session {key.label} (database participant {st.db_participant})")
    dj = "✓ imported" if st.dj.imported else f"✗ missing: {', '.join(st.dj.missing) or st.dj.error}"
    _out(f"  DataJoint: {dj}")
    src = "not on local disk" if not st.source.exists else \
        f"{plural(st.source.count, 'file')}, {human_bytes(st.source.bytes)}"
    _out(f"  Source:    {st.source_path}: {src}, {plural(st.videos, 'video')}")
    for d in st.destinations:
        if d.mount != "ok":
            _out(f"  {d.name}: ⚠ {d.mount}: {d.detail}")
            continue
        if d.backup_state == "complete" and d.listing:
            files = f"✓ {plural(d.listing.count, 'file')}, {human_bytes(d.listing.bytes)}"
        elif d.backup_state == "partial":
            files = f"⚠ partial: {d.backup_files} of {st.source.count} files"
        else:
            files = "✗ no backup" + (" (the folder holds none of the files)" if d.listing and d.listing.exists else "")
        _out(f"  {d.name}: {d.path}: {files}")
        if d.comparison:
            state = "current" if not d.drift else "; ".join(d.drift[:3])
            if d.content_differs:  # a failed content check, which no size verify clears
                state = f"✗ content check failed: {state}"
            _out(f"    compare: {d.comparison.summary()}; verification: {state}")
    _out(f"  Safe to delete: {'✓ yes' if st.safe else ('– not applicable' if not st.local else '✗ no')}")
    for r in st.reasons_unsafe():
        _out(f"    - {r}")
    return 0


def _dest_names(svc: SessionService, name: str | None) -> list[str]:
    if name:
        try:
            dest = svc.backup.destination(name)
        except UserError as exc:  # name the argument and the file the names come from
            raise UserError(exc.what, where=f"--dest (destinations of {svc.config.label})", hint=exc.hint) from None
        if not dest.enabled:
            raise UserError(f"destination {name!r} is disabled", where="--dest",
                            hint="enable it in the config or pick another")
        return [name]
    names = [d.name for d in svc.destinations]
    if not names:
        raise UserError("no enabled destination", where=f"{svc.config.label}, key `backup.destinations`",
                        hint="add a destination or set enabled: true")
    return names


def _run_jobs(svc: SessionService, items: list[tuple], *, dry_run: bool, checksum: bool | None,
              show: bool) -> list:
    async def go() -> list:
        queue = JobQueue(svc)
        last_print = [0.0]

        def listen(job) -> None:
            if not show:
                return
            if job.state == "running" and job.progress and sys.stderr.isatty():
                p = job.progress
                sys.stderr.write(f"\r  {job.key.label} → {job.destination}: {p.percent:3d}% "
                                 f"{human_bytes(p.bytes)} {human_bytes(int(p.rate))}/s   ")
                last_print[0] = 1
            elif job.state in ("done", "failed", "cancelled"):
                if last_print[0]:
                    sys.stderr.write("\n")
                    last_print[0] = 0
                mark = "✓" if job.ok else "✗"
                print(f"{mark} sync {job.key.label} → {job.destination}: {job.message}")

        queue.listeners.append(listen)
        jobs = [queue.submit("sync", key, dest, dry_run=dry_run, checksum=checksum) for key, dest in items]
        await queue.wait(jobs)
        return jobs

    return asyncio.run(go())


def rsync_limits(svc: SessionService, name: str) -> str:
    """How rsync is held back on the way to destination ``name``: its bandwidth limit and timeout."""
    rs = svc.backup.destination(name).rsync
    bw = (f"{bwlimit_label(rs.bandwidth_limit)} (bandwidth_limit {rs.bandwidth_limit:g} KB/s)"
          if rs.bandwidth_limit else "no bandwidth limit")
    return f"{name}: {bw}, " + (f"timeout {rs.timeout} s" if rs.timeout else "no timeout")


def cmd_sync(ctx: Context) -> int:
    key = session_key(ctx.args.participant_id, ctx.args.session_date)
    if not ctx.args.dry_run:
        ctx.require_writable("sync")
    svc = _service(ctx)
    prefixes = svc.backup.filters.participant_prefixes
    if not matches_prefix(key.participant_id, prefixes):  # the backup manager refuses it too
        raise UserError(f"participant {key.participant_id!r} is not synced: its id starts with none of "
                        f"{', '.join(prefixes)}",
                        where=f"{svc.config.label}, key `backup.filters.participant_prefixes`",
                        hint="check the id, or add its prefix to backup.filters.participant_prefixes")
    dests = _dest_names(svc, ctx.args.dest)
    commands = {d: sync_args(svc, svc.backup.destination(d), key) for d in dests}
    if ctx.args.dry_run and not ctx.json:
        for d in dests:
            _out(rsync_limits(svc, d))
            _out(f"  a sync runs: {shlex.join(commands[d])}")
    jobs = _run_jobs(svc, [(key, d) for d in dests], dry_run=ctx.args.dry_run,
                     checksum=True if ctx.args.checksum else None, show=not ctx.json)
    if ctx.json:
        rsync = {d: svc.backup.destination(d).rsync for d in dests}
        emit_json([{"participant_id": j.key.participant_id, "session_date": j.key.date_str,
                    "destination": j.destination, "ok": j.ok, "state": j.state, "message": j.message,
                    "bandwidth_limit": rsync[j.destination].bandwidth_limit, "timeout": rsync[j.destination].timeout,
                    **({"command": commands[j.destination]} if ctx.args.dry_run else {})} for j in jobs])
    return 0 if all(j.ok for j in jobs) else 1


def cmd_batch(ctx: Context) -> int:
    start, end = parse_range(ctx.args.start_date, ctx.args.end_date, where=("START", "END"))
    if start is None:
        raise UserError("START is empty", where="batch START", hint="give a date like 20250104")
    end = end or start
    if not ctx.args.dry_run:
        ctx.require_writable("batch sync")
    svc = _service(ctx)
    dests = _dest_names(svc, ctx.args.dest)
    keys, skipped = keys_for_batch(svc, start, end)
    statuses = svc.statuses(keys)
    todo, already = [], []
    for st in statuses:
        for d in st.destinations:
            if d.name not in dests:
                continue
            (already if d.verified else todo).append((st.key, d.name))
    for s in skipped:
        if not ctx.json:
            _out(f"- skip {s}")
    for key, dest in already:
        if not ctx.json:
            _out(f"- skip {key.label} → {dest}: already backed up and verified")
    if ctx.args.dry_run and not ctx.json:
        for d in dests:
            _out(rsync_limits(svc, d))
    jobs = _run_jobs(svc, todo, dry_run=ctx.args.dry_run, checksum=None, show=not ctx.json) if todo else []
    ok = sum(j.ok for j in jobs)
    failed = len(jobs) - ok
    if ctx.json:
        emit_json({"succeeded": ok, "failed": failed, "skipped": len(skipped) + len(already),
                   "jobs": [{"participant_id": j.key.participant_id, "session_date": j.key.date_str,
                             "destination": j.destination, "ok": j.ok, "message": j.message} for j in jobs],
                   "skipped_sessions": skipped + [f"{k.label} → {d}: verified" for k, d in already]})
    else:
        _out(f"\nbatch {start:%Y%m%d}..{end:%Y%m%d}: {ok} succeeded, {failed} failed, "
             f"{len(skipped) + len(already)} skipped")
    return 0 if failed == 0 else 1


def cmd_verify(ctx: Context) -> int:
    key = session_key(ctx.args.participant_id, ctx.args.session_date)
    svc = _service(ctx)
    checksum = ctx.args.checksum or svc.backup.verification.verify_method == "checksum"
    outs = [verify_session(svc, key, svc.backup.destination(n), checksum=checksum)
            for n in _dest_names(svc, ctx.args.dest)]
    dj = svc.dj_status([key])[key]
    if ctx.json:
        emit_json({"participant_id": key.participant_id, "session_date": key.date_str, "dj": dj.imported,
                   "dj_missing": list(dj.missing), "ok": all(o.ok for o in outs),
                   "destinations": [o.to_json() for o in outs]})
    else:
        _out(f"DataJoint: {'✓ imported' if dj.imported else '✗ missing: ' + (', '.join(dj.missing) or str(dj.error))}")
        for o in outs:
            _out(f"{'✓' if o.ok else '✗'} {o.destination} ({o.method}): {o.message}")
            c = o.comparison
            for label, items in (("missing", c.missing), ("size differs", c.size_mismatch),
                                 ("content differs", c.hash_mismatch)):
                for rel in items[:20]:
                    _out(f"    {label}: {rel}")
                if len(items) > 20:
                    _out(f"    ... and {len(items) - 20} more {label}")
    return 0 if all(o.ok for o in outs) else 1


def cmd_delete(ctx: Context) -> int:
    key = session_key(ctx.args.participant_id, ctx.args.session_date)
    svc = _service(ctx)
    audit = AuditLog(ctx.config.audit_log)
    if not ctx.args.dry_run:
        ctx.require_writable("delete")
    plan = plan_delete(svc, [key], bulk=False)
    if ctx.args.dry_run or not plan.ready:  # a dry run re-checks under the lock too, and says why not
        return _report_delete(ctx, plan, plan.execute(svc, audit, dry_run=True))
    confirm_typed(plan.phrase, ctx.args.confirm, "\n".join(plan.lines()))
    return _report_delete(ctx, plan, plan.execute(svc, audit))


def _report_delete(ctx: Context, plan: DeletePlan, results: list[DeleteResult]) -> int:
    """One delete's result; in --json with the plan it ran (what the checks found before the re-check)."""
    if ctx.json:
        emit_json({**results[0].to_json(), "plan": plan.to_json()})
    else:
        for r in results:
            _out(f"{'✓' if r.ok else '✗'} {r.key.label}: {r.message}")
    return 0 if all(r.ok for r in results) else 1


def cmd_bulk_delete(ctx: Context) -> int:
    start, end = parse_range(ctx.args.start_date, ctx.args.end_date)
    svc = _service(ctx)
    audit = AuditLog(ctx.config.audit_log)
    plan = plan_delete(svc, svc.discover(start, end), bulk=True)
    if not ctx.json:
        if plan.candidates:
            _out(render_table(["Date", "Participant", "Files", "Size"],
                              [[p.key.date_str, p.key.participant_id, str(p.status.source.count),
                                human_bytes(p.status.source.bytes)] for p in plan.candidates], align="llrr"))
        _out(f"{plural(len(plan.candidates), 'session')} safe to delete ({human_bytes(plan.bytes)} to free), "
             f"{len(plan.unsafe)} not safe (kept)")
        if plan.unsafe:
            _out("kept:")
            for st in plan.unsafe:
                _out(f"  {st.key.date_str}  {st.key.participant_id}: " + "; ".join(st.reasons_unsafe()))
    kept = plan.to_json()["kept_sessions"]
    if not plan.ready:
        if ctx.json:
            emit_json({"deleted": 0, "failed": 0, "kept": len(plan.unsafe), "kept_sessions": kept, "results": [],
                       "plan": plan.to_json()})
        return 0
    if not ctx.args.dry_run:
        ctx.require_writable("bulk-delete")
        confirm_typed(plan.phrase, ctx.args.confirm, "\n".join(plan.lines()))
    results = plan.execute(svc, audit, dry_run=ctx.args.dry_run,
                           on_result=None if ctx.json else
                           (lambda r: _out(f"{'✓' if r.ok else '✗'} {r.key.label}: {r.message}")))
    ok = sum(r.ok for r in results)
    if ctx.json:
        emit_json({"deleted": 0 if ctx.args.dry_run else ok, "failed": len(results) - ok, "kept": len(plan.unsafe),
                   "kept_sessions": kept, "dry_run": ctx.args.dry_run, "results": [r.to_json() for r in results],
                   "plan": plan.to_json()})
    else:
        _out(f"\n{'would delete' if ctx.args.dry_run else 'deleted'} {ok}, failed {len(results) - ok}")
    return 0 if ok == len(results) else 1
