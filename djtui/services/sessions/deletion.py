"""Deleting a session's local copy, only when it is provably safe at the moment of deletion.

The shell tool checked, asked, then ran ``rm -rf``: files written in between
were lost without a backup. Here the whole check runs again under an
exclusive lock on the source tree, every file is compared with its
verification record, the target must resolve inside the source base with no
symlinked component, and only the files that were verified are unlinked
(each re-stat'ed just before). The audit log gets the intent before and
the outcome after, and a delete refused at the moment of action a ``refused``
outcome with its reasons. Files that filters.exclude_patterns match were
never backed up: they stay, and are named as kept.
"""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from djtui.domain.sessions import SessionKey, SessionStatus, name_list
from djtui.domain.units import human_bytes, plural
from djtui.services import filesystem
from djtui.services.audit import AuditLog, db_user_of
from djtui.services.locks import LockBusy, exclusive
from djtui.services.sessions.service import SessionService
from djtui.services.testhook import pause_between_items


@dataclass(frozen=True)
class DeleteResult:
    key: SessionKey
    path: str
    ok: bool
    dry_run: bool
    reasons: tuple[str, ...] = ()
    files: int = 0
    bytes: int = 0
    removed_files: int = 0
    removed_bytes: int = 0
    preserved: tuple[str, ...] = ()
    left_behind: tuple[str, ...] = ()  # changed or appeared during the delete: kept, the result is partial
    audit_id: str | None = None
    kept_excluded: tuple[str, ...] = ()  # match filters.exclude_patterns: never backed up, never deleted

    @property
    def message(self) -> str:
        kept = ""
        if self.kept_excluded:
            n = len(self.kept_excluded)
            kept = (f"; {'will keep' if self.dry_run else 'kept'} {n} excluded file{'s' if n != 1 else ''}: "
                    + name_list(self.kept_excluded))
        if not self.ok and not self.removed_files and not self.left_behind:
            return "refused: " + "; ".join(self.reasons)
        if self.dry_run:
            return f"would delete {plural(self.files, 'file')} ({human_bytes(self.bytes)}) from {self.path}{kept}"
        done = f"deleted {plural(self.removed_files, 'file')} ({human_bytes(self.removed_bytes)}) from {self.path}"
        if self.left_behind:
            return (f"partial: {done}; changed during delete, kept: {name_list(self.left_behind)}{kept}; "
                    "check those files, then run status and delete again")
        return done + kept

    def to_json(self) -> dict[str, Any]:
        return {"participant_id": self.key.participant_id, "session_date": self.key.date_str, "path": self.path,
                "ok": self.ok, "dry_run": self.dry_run, "reasons": list(self.reasons), "files": self.files,
                "bytes": self.bytes, "removed_files": self.removed_files, "removed_bytes": self.removed_bytes,
                "preserved": list(self.preserved), "left_behind": list(self.left_behind),
                "kept_excluded": list(self.kept_excluded), "audit_id": self.audit_id, "message": self.message}


def excluded_files(status: SessionStatus, timeout: float = 5.0) -> tuple[str, ...]:
    """Entries of the session folder that its status leaves out: those filters.exclude_patterns match.

    They were never backed up, so delete keeps them; knowing them up front tells them apart from
    files that appear during the delete.
    """
    if not status.source.exists:
        return ()
    try:
        full = filesystem.scan(status.source_path, timeout=timeout)
    except (filesystem.Hung, OSError):
        return ()
    known = {f.rel for f in status.source.files} | set(status.source.special) | set(status.source.symlinks)
    return tuple(sorted(r for r in (*(f.rel for f in full.files), *full.special, *full.symlinks) if r not in known))


def path_problems(service: SessionService, key: SessionKey) -> list[str]:
    """The target must be a real folder strictly inside the source base, reached without symlinks."""
    base = service.source_base
    target = service.source_path(key)
    if ".." in Path(os.path.relpath(target, base)).parts:
        return [f"{target} is outside the source base {base}"]
    link = filesystem.has_symlink_component(base, target)
    if link:
        return [f"{link} is a symbolic link; refusing to delete through it"]
    if not filesystem.inside(base, target):
        return [f"{target} resolves outside the source base {base}"]
    return []


def plan_lines(status: SessionStatus, kept: Sequence[str] | None = None) -> list[str]:
    """What the confirmation shows: what goes, what stays (excluded files), and where the data stays."""
    if kept is None:
        kept = excluded_files(status)
    lines = [f"Session {status.key.label}: {plural(status.source.count, 'file')}, {human_bytes(status.source.bytes)}",
             f"  will be deleted from {status.source_path}"]
    if kept:
        lines += [f"Kept in place ({len(kept)} files excluded by filters.exclude_patterns, never backed up):",
                  f"  {name_list(kept, 10)}"]
    lines += ["Preserved in:", f"  DataJoint tables (participant {status.db_participant})"]
    lines += [f"  {d.name}: {d.path} ({plural(d.listing.count if d.listing else 0, 'file')}, verified)"
              for d in status.destinations]
    return lines


def _refused(audit: AuditLog, key: SessionKey, target: Path, reasons: Sequence[str], *, db_user: str | None = None,
             **details: Any) -> str:
    """A delete stopped at the moment of action leaves evidence: who tried, what, and why it was stopped.

    One ``outcome`` line and no intent: nothing was started, so nothing can be reported as interrupted.
    """
    return audit.event("outcome", "delete-session", status="refused", target=key.label, db_user=db_user,
                       path=str(target), **details, reasons=[r[:500] for r in reasons[:20]])


def delete_session(service: SessionService, audit: AuditLog, key: SessionKey, *, dry_run: bool = False,
                   before_unlink: Callable[[], None] | None = None) -> DeleteResult:
    """Re-check everything under the source lock, then delete exactly the verified files."""
    target = service.source_path(key)
    problems = path_problems(service, key)
    if problems:
        audit_id = None if dry_run else _refused(audit, key, target, problems, db_user=db_user_of(service.db))
        return DeleteResult(key, str(target), False, dry_run, tuple(problems), audit_id=audit_id)
    try:
        with exclusive(service.config.state_dir, f"source:{target}", purpose=f"delete {key.label}"):
            status = service.status(key)
            reasons = status.reasons_unsafe()
            preserved = tuple(d.path for d in status.destinations)
            kept = excluded_files(status, service.timeout) if not reasons else ()
            base = DeleteResult(key, str(target), not reasons, dry_run, tuple(reasons), status.source.count,
                                status.source.bytes, preserved=preserved, kept_excluded=kept)
            if reasons and not dry_run:
                return replace(base, audit_id=_refused(audit, key, target, reasons, db_user=db_user_of(service.db),
                                                       files=status.source.count,
                                                       bytes=status.source.bytes))
            if reasons or dry_run:
                return base
            checks = {"dj": True, "destinations": [
                {"name": d.name, "path": d.path, "files": d.listing.count if d.listing else 0, "verified": d.verified}
                for d in status.destinations]}
            with audit.action("delete-session", target=key.label, db_user=db_user_of(service.db), path=str(target),
                              files=status.source.count,
                              bytes=status.source.bytes, kept_excluded=list(kept[:50]), checks=checks) as rec:
                if before_unlink:
                    before_unlink()
                removed, removed_bytes, left = _unlink_verified(target, status)
                known = set(kept)
                changed = [x for x in left if x not in known]
                still_kept = tuple(x for x in kept if x in set(left))
                rec.outcome("ok" if not changed else "partial", removed_files=removed, removed_bytes=removed_bytes,
                            kept_excluded=list(still_kept[:50]), left_behind=changed[:50])
            return DeleteResult(key, str(target), not changed, False,
                                tuple(f"changed during delete, kept: {x}" for x in changed[:10]),
                                status.source.count, status.source.bytes, removed, removed_bytes, preserved,
                                tuple(changed), rec.action_id, still_kept)
    except LockBusy as exc:
        audit_id = None if dry_run else _refused(audit, key, target, [str(exc)], db_user=db_user_of(service.db))
        return DeleteResult(key, str(target), False, dry_run, (str(exc),), audit_id=audit_id)


def _unlink_verified(target: Path, status: SessionStatus) -> tuple[int, int, list[str]]:
    removed = removed_bytes = 0
    left: list[str] = []
    for f in status.source.files:
        p = target / f.rel
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if not statmod.S_ISREG(st.st_mode) or st.st_size != f.size or st.st_mtime_ns != f.mtime_ns:
            left.append(f.rel)
            continue
        os.unlink(p)
        removed += 1
        removed_bytes += f.size
    for dirpath, _dirs, _files in os.walk(target, topdown=False):
        try:
            os.rmdir(dirpath)  # only empty folders go; anything unexpected stays
        except OSError:
            continue
    if target.exists():
        for dirpath, _dirs, files in os.walk(target):
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), target)
                if rel not in left:
                    left.append(rel)
    return removed, removed_bytes, left


def bulk_delete(service: SessionService, audit: AuditLog, keys: Sequence[SessionKey], *, dry_run: bool = False,
                on_result: Callable[[DeleteResult], None] | None = None) -> list[DeleteResult]:
    """Each key deleted on its own terms (lock, re-check, audit); one result per key.

    The whole run is one audit action too: if djtui dies between two sessions, no per-session
    intent is open, and the open ``bulk-delete`` intent is what the next start reports.
    """
    results: list[DeleteResult] = []
    if dry_run:
        for k in keys:
            res = delete_session(service, audit, k, dry_run=True)
            results.append(res)
            if on_result:
                on_result(res)
        return results
    try:
        # one bulk run per source tree: a second operator's bulk delete is refused up front, naming the first
        with exclusive(service.config.state_dir, f"bulk-delete:{service.source_base}",
                       purpose=f"bulk-delete of {len(keys)} sessions"), \
                audit.action("bulk-delete", target=f"{len(keys)} sessions", db_user=db_user_of(service.db),
                             sessions=[k.label for k in keys], count=len(keys)) as rec:
            for n, k in enumerate(keys):
                if n:
                    pause_between_items()
                res = delete_session(service, audit, k)
                results.append(res)
                if on_result:
                    on_result(res)
            ok = sum(r.ok for r in results)
            rec.outcome("ok" if ok == len(results) else "partial", deleted=ok, failed=len(results) - ok,
                        refused={r.key.label: "; ".join(r.reasons)[:300] for r in results if not r.ok})
    except LockBusy as exc:
        for k in keys:
            res = DeleteResult(k, str(service.source_path(k)), False, False, (str(exc),))
            results.append(res)
            if on_result:
                on_result(res)
    return results
