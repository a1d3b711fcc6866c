"""Deleting a session's local copy, only when it is provably safe at the moment of deletion.

The shell tool checked, asked, then ran ``rm -rf``: files written in between
were lost without a backup. Here the whole check runs again under an
exclusive lock on the source tree, every file is compared with its
verification record, the target must resolve inside the source base with no
symlinked component, and only the files that were verified are unlinked
(each re-stat'ed just before). The audit log gets the intent before and
the outcome after.
"""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djtui.domain.sessions import SessionKey, SessionStatus
from djtui.services import filesystem
from djtui.services.audit import AuditLog
from djtui.services.locks import LockBusy, exclusive
from djtui.services.sessions import SessionService
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
    left_behind: tuple[str, ...] = ()
    audit_id: str | None = None

    @property
    def message(self) -> str:
        if not self.ok:
            return "refused: " + "; ".join(self.reasons)
        if self.dry_run:
            return f"would delete {self.files} files ({self.bytes} bytes) from {self.path}"
        left = f"; left behind: {', '.join(self.left_behind[:5])}" if self.left_behind else ""
        return f"deleted {self.removed_files} files ({self.removed_bytes} bytes) from {self.path}{left}"

    def to_json(self) -> dict[str, Any]:
        return {"participant_id": self.key.participant_id, "session_date": self.key.date_str, "path": self.path,
                "ok": self.ok, "dry_run": self.dry_run, "reasons": list(self.reasons), "files": self.files,
                "bytes": self.bytes, "removed_files": self.removed_files, "removed_bytes": self.removed_bytes,
                "preserved": list(self.preserved), "left_behind": list(self.left_behind),
                "audit_id": self.audit_id, "message": self.message}


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


def plan_lines(status: SessionStatus) -> list[str]:
    """What the confirmation shows: what goes, and where the data stays."""
    lines = [f"Session {status.key.label}: {status.source.count} files, {status.source.bytes} bytes",
             f"  will be deleted from {status.source_path}", "Preserved in:",
             f"  DataJoint tables (participant {status.db_participant})"]
    lines += [f"  {d.name}: {d.path} ({d.listing.count if d.listing else 0} files, verified)"
              for d in status.destinations]
    return lines


def delete_session(service: SessionService, audit: AuditLog, key: SessionKey, *, dry_run: bool = False,
                   before_unlink: Callable[[], None] | None = None) -> DeleteResult:
    """Re-check everything under the source lock, then delete exactly the verified files."""
    target = service.source_path(key)
    problems = path_problems(service, key)
    if problems:
        return DeleteResult(key, str(target), False, dry_run, tuple(problems))
    try:
        with exclusive(service.config.state_dir, f"source:{target}", purpose=f"delete {key.label}"):
            status = service.status(key)
            reasons = status.reasons_unsafe()
            if status.source.special:
                reasons.append(f"special files in the session (never backed up): {', '.join(status.source.special)}")
            if status.source.symlinks:
                reasons.append(f"symbolic links in the session: {', '.join(status.source.symlinks[:5])}")
            preserved = tuple(d.path for d in status.destinations)
            base = DeleteResult(key, str(target), not reasons, dry_run, tuple(reasons), status.source.count,
                                status.source.bytes, preserved=preserved)
            if reasons or dry_run:
                return base
            checks = {"dj": True, "destinations": [
                {"name": d.name, "path": d.path, "files": d.listing.count if d.listing else 0, "verified": d.verified}
                for d in status.destinations]}
            with audit.action("delete-session", session=key.label, path=str(target), files=status.source.count,
                              bytes=status.source.bytes, checks=checks) as rec:
                if before_unlink:
                    before_unlink()
                removed, removed_bytes, left = _unlink_verified(target, status)
                outcome = "ok" if not left else "partial"
                rec.outcome(outcome, removed_files=removed, removed_bytes=removed_bytes, left_behind=left[:50])
            return DeleteResult(key, str(target), not left, False,
                                tuple(f"changed during delete, kept: {x}" for x in left[:10]), status.source.count,
                                status.source.bytes, removed, removed_bytes, preserved, tuple(left), rec.action_id)
    except LockBusy as exc:
        return DeleteResult(key, str(target), False, dry_run, (str(exc),))


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


@dataclass
class BulkPlan:
    candidates: list[SessionStatus] = field(default_factory=list)
    unsafe: list[SessionStatus] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(s.source.bytes for s in self.candidates)


def bulk_plan(service: SessionService, keys: Sequence[SessionKey]) -> BulkPlan:
    plan = BulkPlan()
    for st in service.statuses(keys):
        (plan.candidates if st.safe else plan.unsafe).append(st)
    return plan


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
                audit.action("bulk-delete", sessions=[k.label for k in keys], count=len(keys)) as rec:
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
