"""Counting one leaf's rows on PostgreSQL as the user types it (``LeafCount.run`` and ``cancel`` there).

Read-only (``BEGIN READ ONLY``), nonlocking (MVCC), under ``statement_timeout``; ``cancel`` asks
the server to stop the statement (``pg_cancel_backend`` of the counting connection's backend pid,
from a second connection), then closes the connection under it.
"""

from __future__ import annotations

from typing import Any

import psycopg2

from djtui.domain.cascade import split_name
from djtui.domain.leaves import check_restriction
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.export.driver import CountCancelled, timeout_failure
from djtui.services.export.pgsession import QUERY_CANCELED


def cancel_count(check: Any) -> None:
    """``LeafCount.cancel`` on PostgreSQL: mark it cancelled, and stop its statement on the server."""
    with check._lock:
        if check.cancelled:
            return
        check.cancelled = True
        pid = check._conn_id
    if pid is None:
        return
    try:
        check.db.query("SELECT pg_cancel_backend(%s)", (int(pid),))
    except Exception:
        pass  # the server is gone: so is the query


def run_count(check: Any) -> int:
    """``LeafCount.run`` on PostgreSQL (see the module docstring)."""
    leaf, index, label = check.leaf, check.index, check.label
    check_restriction(leaf.restriction, where=label)
    where = f" WHERE ({leaf.restriction})" if leaf.restriction.strip() else ""
    if check.cancelled:
        raise CountCancelled()
    conn = check.db.connect()
    try:
        with check.db.watched(conn, f"counting {label}"):
            with conn.raw.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                with check._lock:
                    if check.cancelled:
                        raise CountCancelled()
                    check._conn_id = int(cur.fetchone()[0])
                limit = round(float(check.statement_timeout or 0) * 1000) if where else 0
                cur.execute(f"SET statement_timeout = {max(0, limit)}")
                cur.execute("BEGIN READ ONLY")
                sql = f"SELECT COUNT(*) FROM {check.db.dialect.table(*split_name(leaf.table))}{where}"
                commandlog.record("sql", sql, None)
                try:
                    cur.execute(sql)
                except psycopg2.Error as exc:
                    if check.cancelled:
                        raise CountCancelled() from None
                    if exc.pgcode == QUERY_CANCELED:
                        raise timeout_failure(label, index, check.statement_timeout) from None
                    msg = (exc.diag.message_primary or str(exc)).strip()
                    raise UserError(f"the restriction of {label} fails: {msg}",
                                    where=f"leaf {index + 1}" if label == leaf.label(index) else None) from None
                n = int(cur.fetchone()[0])
                cur.execute("ROLLBACK")
            if check.cancelled:
                raise CountCancelled()
            return n
    except psycopg2.Error:
        if check.cancelled:
            raise CountCancelled() from None
        raise
    finally:
        try:
            conn.close()
        except Exception:
            pass
