"""The append-only audit log of every destructive action, as JSON lines.

An action writes its *intent* before it touches anything and its *outcome*
after; an intent with no outcome is an action that was interrupted (power
loss, SIGKILL), and :func:`interrupted` finds those so the next start can
report them. Each line is written with one ``write`` on an ``O_APPEND``
descriptor and fsynced, so concurrent writers never interleave and a
crash loses at most the line being written.
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


@dataclass
class AuditRecord:
    """One action in flight; ``outcome`` closes it."""

    log: AuditLog
    action_id: str
    action: str
    details: dict[str, Any] = field(default_factory=dict)
    closed: bool = False

    def outcome(self, status: str, **details: Any) -> None:
        self.log.write({"event": "outcome", "id": self.action_id, "action": self.action,
                        "status": status, **details})
        self.closed = True


class AuditLog:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def write(self, entry: dict[str, Any]) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "user": _user(),
                  "host": socket.gethostname(), "pid": os.getpid(), **entry}
        line = commandlog.mask(json.dumps(record, default=str, ensure_ascii=False)) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "backslashreplace"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def intent(self, action: str, **details: Any) -> AuditRecord:
        rec = AuditRecord(self, uuid.uuid4().hex[:12], action, details)
        self.write({"event": "intent", "id": rec.action_id, "action": action, **details})
        return rec

    @contextmanager
    def action(self, action: str, **details: Any) -> Iterator[AuditRecord]:
        """Intent now; outcome ``ok`` at the end, ``failed`` with the error if it raises."""
        rec = self.intent(action, **details)
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
        return [e for e in open_.values() if not (e.get("host") == host and _alive(e.get("pid")))]

    def acknowledge(self, action_id: str, note: str = "") -> None:
        self.write({"event": "acknowledged", "id": action_id, "note": note})


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    except PermissionError:
        return True
    return True
