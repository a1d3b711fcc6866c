"""Reading exported rows back as SQL tuple literals the server formatted (``domain.rowsql``).

``stream_literal_rows``: one row per fetched value, unbuffered (mysqlclient: a reader thread
fetches while the caller writes). ``grouped_literal_rows``: pymysql's way, ``batch`` rows per value.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pymysql
import pymysql.cursors

from djtui.services import commandlog
from djtui.services.export.driver import cursor_class


def stream_literal_rows(conn: Any, expr: str, source: str, batch: int = 1000) -> Iterator[list[bytes]]:
    """``SELECT expr FROM source`` unbuffered, as UTF-8 bytes, ``batch`` rows at a time.

    Text, not ``CONVERT(... USING binary)``: the server's conversion costs more than the driver's
    decoding. With mysqlclient a reader thread fetches (the C driver lets go of the GIL while it
    waits on the server) while the caller hashes and writes the previous batch.
    """
    sql = f"SELECT {expr} FROM {source}"
    commandlog.record("sql", sql, None)
    encode = str.encode
    if isinstance(conn, pymysql.connections.Connection):
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(sql)
            while rows := cur.fetchmany(batch):
                yield [encode(r[0]) for r in rows]
        return
    batches: queue.Queue[Any] = queue.Queue(maxsize=8)
    stop = threading.Event()
    done = object()

    def read() -> None:
        try:
            with conn.cursor(cursor_class(conn, "stream")) as cur:
                cur.execute(sql)
                while not stop.is_set() and (rows := cur.fetchmany(batch)):
                    item: Any = [encode(r[0]) for r in rows]
                    while not stop.is_set():
                        try:
                            batches.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
        except BaseException as exc:  # handed to the caller's thread
            batches.put(exc)
            return
        batches.put(done)

    reader = threading.Thread(target=read, name="djtui-export-read", daemon=True)
    reader.start()
    try:
        while (item := batches.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # the connection is free again only when the reader is gone
            try:
                batches.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()


_ROW_SEP = "',\\n'"  # SQL: ',\n' (comma, newline)


def grouped_literal_rows(conn: Any, expr: str, source: str, order: str, batch: int) -> Iterator[list[bytes]]:
    """pymysql's way: the server joins ``batch`` rows into one ``GROUP_CONCAT`` value (pymysql's cost
    is per row, in Python); a group that hit ``group_concat_max_len`` (huge blobs) is detected by its
    length and fetched again row by row. The caller sets ``group_concat_max_len``."""
    inner = f"SELECT {expr} AS r, ROW_NUMBER() OVER (ORDER BY {order}) AS rn FROM {source}"
    sql = (f"SELECT (rn - 1) DIV {batch} AS g, COUNT(*), SUM(CHAR_LENGTH(r)) + 2 * (COUNT(*) - 1), "
           f"GROUP_CONCAT(r SEPARATOR {_ROW_SEP}) FROM ({inner}) AS q GROUP BY g")
    commandlog.record("sql", sql, None)
    cut: list[int] = []
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(sql)
        while True:
            rows = cur.fetchmany(16)
            if not rows:
                break
            for g, _n, length, text in rows:
                if text is None or len(text) != int(length):
                    cut.append(int(g))
                else:
                    yield text.encode("utf-8", "surrogatepass").split(b",\n")
    if cut:
        refetch = (f"SELECT CONVERT(CONVERT(r USING utf8mb4) USING binary) FROM ({inner}) AS q "
                   f"WHERE (rn - 1) DIV {batch} IN ({', '.join(map(str, cut))})")
        commandlog.record("sql", refetch, None)
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(refetch)
            while True:
                rows = cur.fetchmany(batch)
                if not rows:
                    break
                yield [r[0] for r in rows]
