"""Connections taken for long work (an export's session, a backup's snapshot, a streamed scan, an
account plan), watched for liveness rather than for elapsed time.

``Database``'s own watchdog shuts a call's socket a little after the server's statement limit: by
then a live server has answered (with its own "statement timeout"). Long work sets no such limit
(an export's key sets run with ``statement_timeout = 0``), so its elapsed time says nothing; what
counts is whether the server still answers. While any long-work connection is watched, one thread
asks the server every ``every_s`` on a fresh connection (``SELECT 1`` within ``connect_timeout``);
after ``misses`` probes in a row that got no answer at all (a stopped server, a cut network) it
shuts the sockets of every watched connection, and the work's blocked call returns with an error
``Database.watched`` turns into ``DatabaseNotAnswering``. A server that answers, even to refuse
(too many connections, a password error), is alive: a long statement it is running is left alone.
``Database.interrupt()`` (the Cancel-wait key) shuts them too.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

LIVENESS_EVERY_S = 5.0  # between two probes while long work is watched
LIVENESS_MISSES = 2  # probes in a row without an answer before the work's connections are shut


def server_answered(exc: BaseException) -> bool:
    """Did a failed connect get an answer from the server (a refusal), rather than none?"""
    args = getattr(exc, "args", ())
    code = args[0] if args else None
    if isinstance(code, int) and 1000 <= code < 2000:  # MySQL/MariaDB: the server's own error codes
        return True
    return "FATAL" in str(exc)  # libpq: the server's start-up refusal (too many clients, auth)


class LongWorkWatch:
    """The long-work connections of one Database and the thread that probes while there are any."""

    def __init__(self, probe_once: Any, abort: Any):
        self._probe_once = probe_once  # () -> bool: does the server answer (a refusal counts)?
        self._abort = abort  # (conn) -> None: shut its socket
        self._lock = threading.Condition()
        self._conns: dict[int, Any] = {}
        self._dead: set[int] = set()  # tokens whose connection was shut because the server stopped answering
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.every_s = LIVENESS_EVERY_S
        self.misses = LIVENESS_MISSES

    def add(self, conn: Any) -> int:
        with self._lock:
            token = next(self._tokens)
            self._conns[token] = conn
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="djtui-db-liveness", daemon=True)
                self._thread.start()
            self._lock.notify_all()
            return token

    def remove(self, token: int) -> bool:
        """Stop watching; True when the connection was shut because the server stopped answering."""
        with self._lock:
            self._conns.pop(token, None)
            dead = token in self._dead
            self._dead.discard(token)
            self._lock.notify_all()
            return dead

    def abort_all(self) -> int:
        with self._lock:
            conns = list(self._conns.values())
        for conn in conns:
            self._abort(conn)
        return len(conns)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def _run(self) -> None:
        """Probes every ``every_s`` (counted from the last probe, not from the last add or remove, so many
        short watched reads do not make many probes); ends as soon as nothing is watched."""
        missed, next_at = 0, time.monotonic() + self.every_s
        while True:
            with self._lock:
                while True:
                    if not self._conns or self._closed:
                        self._thread = None
                        return
                    left = next_at - time.monotonic()
                    if left <= 0:
                        break
                    self._lock.wait(left)
            missed = 0 if self._probe_once() else missed + 1
            next_at = time.monotonic() + self.every_s
            if missed < self.misses:
                continue
            missed = 0
            with self._lock:
                shut = dict(self._conns)
                self._dead.update(shut)
            for conn in shut.values():
                self._abort(conn)
