"""Delete as one workflow for the screen and the CLI: plan -> confirmation text -> execute, single or bulk.

``plan_delete`` is the slow part (a status of every session and a full scan of each safe one, for the
excluded files it keeps): callers run it off the event loop. The plan is frozen: it can be shown
(``title``, ``lines``), printed (``to_json``), and executed once. Executing re-checks everything at the
moment of action under the source lock (``deletion.delete_session``), so a plan that went stale between
the confirmation and the delete refuses instead of deleting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from djtui.domain.sessions import SessionKey, SessionStatus
from djtui.domain.units import human_bytes, plural
from djtui.errors import OperationFailed
from djtui.services.audit import AuditLog
from djtui.services.sessions.deletion import DeleteResult, bulk_delete, delete_session, excluded_files, plan_lines
from djtui.services.sessions.service import SessionService


@dataclass(frozen=True)
class PlannedSession:
    """A session as the plan found it: its status and the excluded files a delete would leave in place."""

    status: SessionStatus
    kept: tuple[str, ...] = ()

    @property
    def key(self) -> SessionKey:
        return self.status.key


@dataclass(frozen=True)
class DeletePlan:
    """What a delete would do, as found when planned. ``bulk``: several sessions, typed ``DELETE ALL``."""

    bulk: bool
    candidates: tuple[PlannedSession, ...] = ()
    unsafe: tuple[SessionStatus, ...] = ()
    not_local: tuple[SessionKey, ...] = ()
    _spent: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def ready(self) -> bool:
        """Is there anything safe to delete?"""
        return bool(self.candidates)

    @property
    def phrase(self) -> str:
        return "DELETE ALL" if self.bulk else "DELETE"

    @property
    def bytes(self) -> int:
        return sum(p.status.source.bytes for p in self.candidates)

    @property
    def title(self) -> str:
        if self.bulk:
            return "Bulk delete"
        return f"Delete the local copy of {self._single_key().label}?"

    def _single_key(self) -> SessionKey:
        if self.candidates:
            return self.candidates[0].key
        return self.unsafe[0].key if self.unsafe else self.not_local[0]

    def refusal(self) -> str:
        """Why nothing can be deleted (empty when the plan is ready)."""
        if self.ready:
            return ""
        if not self.bulk:
            if self.not_local:
                return "refused: not on local disk: nothing to delete"
            return "refused: " + "; ".join(self.unsafe[0].reasons_unsafe())
        return f"none of the {plural(len(self.unsafe), 'local session')} is safe to delete"

    def lines(self) -> list[str]:
        """The confirmation text: what goes, what stays in place, what is kept and why, where the data stays."""
        if not self.bulk:
            p = self.candidates[0]
            return plan_lines(p.status, p.kept)
        lines = [f"{plural(len(self.candidates), 'session')}, {human_bytes(self.bytes)} will be deleted locally "
                 f"({len(self.unsafe)} not safe, kept{', listed below' if self.unsafe else ''}):", ""]
        lines += [f"  {p.key.date_str}  {p.key.participant_id}  {plural(p.status.source.count, 'file')}  "
                  f"{human_bytes(p.status.source.bytes)}" + (f"  (keeps {len(p.kept)} excluded)" if p.kept else "")
                  for p in self.candidates]
        if self.unsafe:
            lines += ["", "Not safe, kept:"]
            lines += [f"  {s.key.date_str}  {s.key.participant_id}: " + "; ".join(s.reasons_unsafe()[:2])
                      for s in self.unsafe[:20]]
            if len(self.unsafe) > 20:
                lines.append(f"  ... and {plural(len(self.unsafe) - 20, 'more session')}")
        dests = sorted({d.name for p in self.candidates for d in p.status.destinations})
        lines += ["", "Preserved in DataJoint and in: " + ", ".join(dests)]
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"bulk": self.bulk, "confirm": self.phrase, "bytes": self.bytes,
                "sessions": [{"participant_id": p.key.participant_id, "session_date": p.key.date_str,
                              "path": p.status.source_path, "files": p.status.source.count,
                              "bytes": p.status.source.bytes, "kept_excluded": list(p.kept),
                              "preserved": [d.path for d in p.status.destinations]} for p in self.candidates],
                "kept_sessions": [{"participant_id": s.key.participant_id, "session_date": s.key.date_str,
                                   "reasons": s.reasons_unsafe()} for s in self.unsafe],
                "not_local": [{"participant_id": k.participant_id, "session_date": k.date_str}
                              for k in self.not_local]}

    def execute(self, service: SessionService, audit: AuditLog, *, dry_run: bool = False,
                on_result: Callable[[DeleteResult], None] | None = None) -> list[DeleteResult]:
        """Delete what the plan holds, each session re-checked under its lock at the moment of action.

        A single plan runs its one session whatever the plan found (the re-check refuses and audits an
        unsafe one); a bulk plan runs only its candidates. A plan runs once; a dry run does not count.
        """
        if not dry_run:
            if self._spent.is_set():
                raise OperationFailed("this delete plan was already executed; plan again to delete again")
            self._spent.set()
        if not self.bulk:
            res = delete_session(service, audit, self._single_key(), dry_run=dry_run)
            if on_result:
                on_result(res)
            return [res]
        return bulk_delete(service, audit, [p.key for p in self.candidates], dry_run=dry_run, on_result=on_result)


def plan_delete(service: SessionService, keys: Sequence[SessionKey], *, bulk: bool | None = None) -> DeletePlan:
    """The plan for ``keys`` (blocking: statuses and scans; run it in a thread). ``bulk`` defaults to
    more than one key. A single plan also scans the session for the excluded files it keeps (its
    confirmation names them); a bulk plan leaves that to each delete, so it costs what the status costs."""
    bulk = len(keys) > 1 if bulk is None else bulk
    statuses = service.statuses(list(keys))
    candidates, unsafe, away = [], [], []
    for st in statuses:
        if not st.local:
            away.append(st.key)
        elif st.safe:
            candidates.append(PlannedSession(st, () if bulk else excluded_files(st, service.timeout)))
        else:
            unsafe.append(st)
    return DeletePlan(bulk, tuple(candidates), tuple(unsafe), tuple(away))
