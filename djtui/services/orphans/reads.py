"""Big reads of the orphan scans: streamed rows, and blob hashes packed by the server.

Each read runs on a connection of its own (the scans overlap them in threads) and asks
``check`` between batches, so a cancel is noticed within one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from djtui.errors import OperationFailed
from djtui.services import commandlog
from djtui.services.orphans.catalog import table_rows_estimate

FETCH_BATCH = 20_000  # rows per fetch of a streamed read; a cancel is noticed between batches


def fetch(db: Any, sql: str, args: Any = None, *, setup: str | None = None,
          check: Callable[[], None] = lambda: None) -> list:
    """One streamed read on a connection of its own, closed afterwards (for short-lived scan threads).

    Rows arrive in batches (an unbuffered cursor), so a cancel is noticed between batches and the
    client never holds the whole result twice.
    """
    import pymysql.cursors
    commandlog.record("sql", sql, args)
    conn = db.connect()
    out: list = []
    try:
        with db.watched(conn, "a streamed read"):
            if setup:
                with conn.cursor() as cur:
                    cur.execute(setup)
            with conn.cursor(pymysql.cursors.SSCursor) as cur:
                cur.execute(sql, args)
                while batch := cur.fetchmany(FETCH_BATCH):
                    out.extend(batch)
                    check()
            return out
    finally:
        conn.close()


def blob_hash_chunks(db: Any, schema: str, table: str, check: Callable[[], None] = lambda: None,
                     range_bytes: int | None = None, *, ordered: bool = True) -> Iterator[list[str]]:
    """The 32-hex hashes of the blob rows (no attachment, no filepath), ascending, a range at a time.

    The hashes are packed by the server: one ``GROUP_CONCAT`` per range of the hash space, of
    about ``range_bytes`` characters (default: as much as ``max_allowed_packet`` comfortably takes),
    sized from the table's row estimate; a range whose answer comes back cut short is asked again
    in halves. Ranges are disjoint and asked in ascending order, each sorted here (unless not
    ``ordered``), so the stream is sorted (what the streamed scan merges).
    """
    full = db.dialect.table(schema, table)
    conn = db.connect()
    try:
        with db.watched(conn, f"reading the blob hashes of {full}"), conn.cursor() as cur:
            packet, est = table_rows_estimate(cur, schema, table)
            budget = range_bytes or max(1 << 20, min(packet // 2, 64 << 20))
            cur.execute("SET SESSION group_concat_max_len = %s", (budget,))
            parts = max(1, -(-est * 32 // (budget // 2)))
            step = (1 << 128) // parts
            todo = [(i * step, (i + 1) * step if i < parts - 1 else 1 << 128) for i in reversed(range(parts))]
            sql = (f"SELECT COUNT(*), GROUP_CONCAT(LOWER(HEX(`hash`)) SEPARATOR '') FROM {full} "
                   "WHERE attachment_name IS NULL AND filepath IS NULL AND `hash` >= %s")
            while todo:  # the lowest range is last in the list
                check()
                lo, hi = todo.pop()
                args: list[Any] = [lo.to_bytes(16, "big")]
                query = sql
                if hi < 1 << 128:
                    query += " AND `hash` < %s"
                    args.append(hi.to_bytes(16, "big"))
                commandlog.record("sql", query, None)
                cur.execute(query, args)
                n, packed = cur.fetchone()
                packed = (packed.decode("ascii") if isinstance(packed, bytes) else packed) or ""
                if len(packed) != 32 * int(n):  # cut at group_concat_max_len: ask in halves, lower first
                    if hi - lo < 2:
                        raise OperationFailed(f"{full}: cannot read the hashes (group_concat_max_len)")
                    mid = (lo + hi) // 2
                    todo += [(mid, hi), (lo, mid)]
                    continue
                if packed:
                    # the primary key's range scan hands them over in order; sorting here instead of
                    # asking ORDER BY costs one linear pass when they are, and is right when they are not
                    chunk = [packed[i:i + 32] for i in range(0, len(packed), 32)]
                    if ordered:
                        chunk.sort()
                    yield chunk
    finally:
        conn.close()


def blob_hashes(db: Any, schema: str, table: str, check: Callable[[], None] = lambda: None) -> set[str]:
    """All the blob rows' hashes as one set (the in-memory comparison; the benchmark's floor)."""
    out: set[str] = set()
    for chunk in blob_hash_chunks(db, schema, table, check, ordered=False):
        out.update(chunk)
    return out
