"""What djtui ran: every external command and SQL statement, credentials masked.

Operators trust what they can see; the TUI's command log screen and
``--verbose`` read this ring buffer. Nothing here is written to disk.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_MAX = 2000
_lock = threading.Lock()
_entries: deque[Entry] = deque(maxlen=_MAX)
_secrets: set[str] = set()


@dataclass(frozen=True)
class Entry:
    when: float
    kind: str  # "sql" | "exec"
    text: str


def add_secret(value: str | None) -> None:
    """Register a value that must never be shown (passwords, keys)."""
    if value and len(value) >= 3:
        with _lock:
            _secrets.add(value)


def mask(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        text = text.replace(s, "****")
    return text


def record(kind: str, text: str | Sequence[str], args: Any = None) -> None:
    if not isinstance(text, str):
        text = " ".join(str(t) for t in text)
    text = " ".join(text.split())
    if args:
        text = f"{text}  -- args: {args!r}"[:2000]
    with _lock:
        _entries.append(Entry(time.time(), kind, text))


def entries() -> list[Entry]:
    with _lock:
        items = list(_entries)
    return [Entry(e.when, e.kind, mask(e.text)) for e in items]


def clear() -> None:
    with _lock:
        _entries.clear()
