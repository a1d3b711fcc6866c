"""Exclusive advisory locks, so two operators cannot act on the same thing at once.

``flock`` on a lock file in djtui's state directory: released by the kernel
when the process dies, so a SIGKILL never leaves a stale lock. The holder
writes who it is into the file, and the loser is told.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from djtui.errors import OperationFailed


class LockBusy(OperationFailed):
    """Another djtui holds the lock."""


def lock_path(state_dir: Path, name: str) -> Path:
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    safe = "".join(c if c.isalnum() else "_" for c in name)[-40:]
    return state_dir / "locks" / f"{safe}.{digest}.lock"


@contextmanager
def exclusive(state_dir: Path, name: str, *, purpose: str = "", wait: float = 0.0) -> Iterator[Path]:
    """Hold the lock called ``name``; raise LockBusy (naming the holder) if taken after ``wait`` s."""
    path = lock_path(state_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = _holder(path)
                    raise LockBusy(f"{name} is locked by {holder}; try again when it has finished") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        yield path
    finally:
        os.close(fd)  # closing releases the flock


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another djtui process"
    what = f" ({info['purpose']})" if info.get("purpose") else ""
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}{what}"
