"""Counting one leaf's rows as the user types it: read-only, nonlocking, time-limited, cancellable.

The screen checks each restriction on the server before it becomes a leaf; a newer check (or
leaving the screen) stops the one it supersedes there (``LeafCount.cancel`` kills its connection).
"""

from __future__ import annotations

import threading

import pymysql

from djtui.domain.cascade import Leaf, split_name
from djtui.domain.leaves import check_restriction
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.database import Database
from djtui.services.export.driver import (
    STATEMENT_TIMEOUT_S,
    TIMEOUT_ERRORS,
    CountCancelled,
    coerced_values,
    is_mariadb,
    time_limit_sql,
    timeout_failure,
)


def count_leaf(db: Database, leaf: Leaf, index: int = 0, *,
               statement_timeout: float | None = STATEMENT_TIMEOUT_S) -> int:
    """Rows a single restriction selects, run read-only and nonlocking (a plain SELECT), under the
    statement time limit (the screen validates as the user types)."""
    return LeafCount(db, leaf, index, statement_timeout=statement_timeout).run()


class LeafCount:
    """One restriction check (``count_leaf``) that another thread can stop on the server.

    ``run()`` counts on a connection of its own; ``cancel()`` (from any thread) marks it cancelled
    and kills that connection from a second one (``KILL <id>``: unlike ``KILL QUERY`` it also stops
    a query that was sent but has not started yet), so a superseded ``SELECT COUNT(*)`` does not go
    on scanning on the server. A cancelled ``run()`` raises :class:`CountCancelled`.
    """

    family = "mysql"  # the server family run() and cancel() speak to; ``pgcount`` does PostgreSQL's

    def __init__(self, db: Database, leaf: Leaf, index: int = 0, *,
                 statement_timeout: float | None = STATEMENT_TIMEOUT_S, label: str | None = None) -> None:
        self.db = db
        self.leaf = leaf
        self.index = index
        self.label = label or leaf.label(index)  # how errors name it: "leaf 2 (...)", or the text being typed
        self.warnings: list[str] = []  # what the server coerced (SHOW WARNINGS), e.g. an invalid date
        self.statement_timeout = statement_timeout
        self._lock = threading.Lock()
        self._conn_id: int | None = None
        self.cancelled = False

    def cancel(self) -> None:
        """Stop the check; blocks for one short connection (call it from a worker thread)."""
        if self.db.backend.name != self.family:
            from djtui.services.export.pgcount import cancel_count

            return cancel_count(self)
        with self._lock:
            if self.cancelled:
                return
            self.cancelled = True
            conn_id = self._conn_id
        if conn_id is None:
            return  # not connected yet: run() sees the flag before it sends anything
        try:
            killer = self.db.connect()
        except Exception:
            return  # the server is gone: so is the query
        try:
            with killer.cursor() as cur:
                commandlog.record("sql", f"KILL {conn_id}", None)
                cur.execute(f"KILL {int(conn_id)}")
        except pymysql.err.MySQLError:
            pass  # it finished meanwhile (unknown thread id)
        finally:
            killer.close()

    def run(self) -> int:
        if self.db.backend.name != self.family:
            from djtui.services.export.pgcount import run_count

            return run_count(self)
        leaf, index, statement_timeout = self.leaf, self.index, self.statement_timeout
        label = self.label
        check_restriction(leaf.restriction, where=label)
        where = f" WHERE ({leaf.restriction})" if leaf.restriction.strip() else ""
        if self.cancelled:
            raise CountCancelled()
        conn = self.db.connect()
        try:
            with self._lock:
                if self.cancelled:
                    raise CountCancelled()
                self._conn_id = conn.thread_id()
            with conn.cursor() as cur:
                if where and statement_timeout:
                    cur.execute(time_limit_sql(is_mariadb(conn), statement_timeout))
                cur.execute("START TRANSACTION READ ONLY")
                sql = f"SELECT COUNT(*) FROM {self.db.dialect.table(*split_name(leaf.table))}{where}"
                commandlog.record("sql", sql, None)
                try:
                    cur.execute(sql)
                except (pymysql.err.MySQLError, OSError) as exc:
                    if self.cancelled:
                        raise CountCancelled() from None
                    if exc.args and exc.args[0] in TIMEOUT_ERRORS:
                        raise timeout_failure(label, index, statement_timeout) from None
                    msg = exc.args[1] if len(exc.args) > 1 else str(exc)
                    raise UserError(f"the restriction of {label} fails: {msg}",
                                    where=f"leaf {index + 1}" if label == leaf.label(index) else None) from None
                n = int(cur.fetchone()[0])
                self.warnings = coerced_values(cur)
            if self.cancelled:
                raise CountCancelled()
            return n
        except pymysql.err.MySQLError:
            if self.cancelled:
                raise CountCancelled() from None
            raise
        finally:
            try:
                conn.close()
            except Exception:
                pass  # killed under us

