"""The append-only audit log of every destructive action, as JSON lines.

An action writes its *intent* before it touches anything and its *outcome*
after; an intent with no outcome is an action that was interrupted (power
loss, SIGKILL), and :func:`interrupted` finds those so the next start can
report them. Each line is written with one ``write`` on an ``O_APPEND``
descriptor and fsynced, so concurrent writers never interleave and a
crash loses at most the line being written.

Who acted and what was acted on are fields of their own that no detail can
overwrite: ``actor`` (``os_user``, ``db_user``, ``host``, ``pid``) is filled
by the log itself, ``target`` names the thing acted on, and every other
detail goes under ``details``. (Lines written before this layout had the
actor's ``user``/``host``/``pid`` at the top level, where a detail named
``user`` replaced it; :func:`actor_of` reads both.)
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djtui.services import commandlog


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def db_user_of(db: Any) -> str | None:
    """The database user a service acts as (``db.settings.user``), or None when it has no database."""
    return getattr(getattr(db, "settings", None), "user", None)


def actor_of(entry: dict[str, Any]) -> dict[str, Any]:
    """Who wrote ``entry``: its ``actor``, or the top-level fields of a line written before ``actor`` existed."""
    actor = entry.get("actor")
    if isinstance(actor, dict):
        return actor
    return {"os_user": entry.get("user"), "db_user": None, "host": entry.get("host"), "pid": entry.get("pid")}


@dataclass
class AuditRecord:
    """One action in flight; ``outcome`` closes it."""

    log: AuditLog
    action_id: str
    action: str
    target: str | None = None
    db_user: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    closed: bool = False

    def outcome(self, status: str, **details: Any) -> None:
        self.log.event("outcome", self.action, action_id=self.action_id, target=self.target,
                       db_user=self.db_user, status=status, **details)
        self.closed = True


class AuditLog:
    def __init__(self, path: str | os.PathLike, *, db_user: str | None = None):
        self.path = Path(path)
        self.db_user = db_user  # the default for actions that do not name theirs

    def actor(self, db_user: str | None = None) -> dict[str, Any]:
        return {"os_user": _user(), "db_user": db_user if db_user is not None else self.db_user,
                "host": socket.gethostname(), "pid": os.getpid()}

    def write(self, entry: dict[str, Any]) -> None:
        """One raw line, stamped with the time; ``event`` builds the lines of actions."""
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **entry}
        line = commandlog.mask(json.dumps(record, default=str, ensure_ascii=False)) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "backslashreplace"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def event(self, event: str, action: str, *, action_id: str | None = None, target: str | None = None,
              db_user: str | None = None, status: str | None = None, **details: Any) -> str:
        """One line of an action: who (``actor``), what (``action``, ``target``), then ``details``.

        The fixed fields are set here and the details are nested, so a detail named ``user``,
        ``host`` or ``pid`` describes the target and never replaces the actor. Returns the id.
        """
        action_id = action_id or uuid.uuid4().hex[:12]
        entry: dict[str, Any] = {"event": event, "id": action_id, "action": action,
                                 "actor": self.actor(db_user), "target": target}
        if status is not None:
            entry["status"] = status
        entry["details"] = details
        self.write(entry)
        return action_id

    def intent(self, action: str, *, target: str | None = None, db_user: str | None = None,
               **details: Any) -> AuditRecord:
        rec = AuditRecord(self, uuid.uuid4().hex[:12], action, target, db_user, details)
        self.event("intent", action, action_id=rec.action_id, target=target, db_user=db_user, **details)
        return rec

    @contextmanager
    def action(self, action: str, *, target: str | None = None, db_user: str | None = None,
               **details: Any) -> Iterator[AuditRecord]:
        """Intent now; outcome ``ok`` at the end, ``failed`` with the error if it raises."""
        rec = self.intent(action, target=target, db_user=db_user, **details)
        try:
            yield rec
        except BaseException as exc:
            if not rec.closed:
                rec.outcome("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        if not rec.closed:
            rec.outcome("ok")

    def entries(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn last line after a crash
        return out

    def interrupted(self) -> list[dict[str, Any]]:
        """Intents with no outcome whose process is gone: actions that were cut off."""
        open_: dict[str, dict[str, Any]] = {}
        for e in self.entries():
            if e.get("event") == "intent":
                open_[e["id"]] = e
            elif e.get("event") in ("outcome", "acknowledged"):
                open_.pop(e.get("id"), None)
        host = socket.gethostname()
        out = []
        for e in open_.values():
            who = actor_of(e)
            if not (who.get("host") == host and _alive(who.get("pid"))):
                out.append(e)
        return out

    def acknowledge(self, action_id: str, note: str = "") -> None:
        self.write({"event": "acknowledged", "id": action_id, "actor": self.actor(), "note": note})


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def describe(entry: dict[str, Any]) -> str:
    """One line naming the action, its target, who ran it and when."""
    details = entry.get("details") if isinstance(entry.get("details"), dict) else entry  # older lines: flat
    target = entry.get("target") or details.get("session") or details.get("source") or details.get("plan") \
        or details.get("batch") or ""
    if details.get("sessions"):
        sessions = details["sessions"]
        target = f"{len(sessions)} sessions ({', '.join(sessions[:3])}{', ...' if len(sessions) > 3 else ''})"
    who = actor_of(entry)
    by = str(who.get("os_user")) + (f" as database user {who['db_user']}" if who.get("db_user") else "")
    return (f"{entry.get('action')}{' of ' + str(target) if target else ''} started {entry.get('time')} "
            f"by {by} (pid {who.get('pid')} on {who.get('host')}) was interrupted")
