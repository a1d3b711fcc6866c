"""Quarantine of table rows: every deleted row is kept whole in a batch and can be put back.

A row batch is a quarantine batch (``<quarantine>/<batch id>/manifest.json``, ``backend: rows``)
whose ``files/rows.jsonl`` holds one JSON line per row: each column's value exactly as the
server gives it (MySQL: the text protocol's bytes, what ``mysqldump`` writes; PostgreSQL: the
value's ``::text`` form, what ``COPY`` writes), base64-encoded, or ``null``; how is the backend's
(``row_capture_*``). The manifest carries the table's definition, the primary key, the columns
with their types, and one item per row (its key, its size). Rows are written (and fsynced)
before the ``DELETE`` that removes them, inside the transaction that holds them locked, so a
kill between the two loses nothing: a row listed but never deleted is found identical in the
table at restore and left alone.

A restore loads the rows into a temporary copy of the table (``CREATE TEMPORARY TABLE ... LIKE``,
so each value is converted by the server exactly as a first insert would), compares keys that
exist again byte for byte (in the same captured form), and inserts the rest with
``INSERT ... SELECT`` in one transaction.
A key that exists again with other contents refuses the whole batch (naming the keys) unless
``skip_existing`` is given; a table that lost one of the batch's columns refuses it too.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pymysql
import pymysql.converters

from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog
from djtui.services.stores.quarantine import Quarantine

ROWS_FILE = "files/rows.jsonl"
# values arrive as the server's bytes: no decoding of text, no conversion of numbers or dates
# (the MySQL backend's row_capture_overrides, without autocommit: raw reads of the MariaDB tests)
RAW = {"use_unicode": False,
       "conv": {k: v for k, v in pymysql.converters.conversions.items() if not isinstance(k, int)}}


def encode(value: Any) -> str | None:
    """A captured value (the server's bytes, or its text form: kept as UTF-8) as base64, or None."""
    if value is None:
        return None
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return base64.b64encode(raw).decode("ascii")


def decode(value: str | None) -> bytes | None:
    return None if value is None else base64.b64decode(value)


def show_key(key: dict[str, str | None]) -> str:
    """A key for messages: text where the bytes are printable text, hex otherwise."""
    parts = []
    for col, v in key.items():
        raw = decode(v)
        if raw is None:
            parts.append(f"{col}=NULL")
            continue
        try:
            text = raw.decode("utf-8")
            shown = repr(text) if text.isprintable() else "0x" + raw.hex()
        except UnicodeDecodeError:
            shown = "0x" + raw.hex()
        parts.append(f"{col}={shown}")
    return "(" + ", ".join(parts) + ")"


class RowBatch:
    """One batch of rows of one table, written ahead of their DELETE on the locking connection ``conn``."""

    def __init__(self, quarantine: Quarantine, source: str, db: str, table: str, conn: Any, backend: Any):
        self.qr = quarantine
        self.db, self.table = db, table
        self.dialect, self.backend = backend.dialect, backend
        create = backend.table_definition(db, table)
        pk = backend.primary_key(db, table)
        self.columns = [{"name": c.name, "type": c.column_type, "nullable": c.nullable, "generated": c.generated}
                        for c in backend.columns(db, table)]
        self.names = [c["name"] for c in self.columns]
        self.pk = pk
        self.batch_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.dir = quarantine.root / self.batch_id
        (self.dir / "files").mkdir(parents=True)
        self.manifest: dict[str, Any] = {
            "batch": self.batch_id, "created": time.time(), "source": source, "backend": "rows",
            "table": f"{db}.{table}", "create_table": create, "primary_key": pk, "columns": self.columns,
            "rows_file": ROWS_FILE, "state": "open", "items": [], "skipped": []}
        self.qr._write_manifest(self.dir, self.manifest)

    def select_sql(self, where: str) -> str:
        """The batch's columns, each captured exactly (the server's bytes or text form), of the rows ``where``."""
        names = ", ".join(self.backend.row_capture_column(self.dialect.ident(n)) for n in self.names)
        return f"SELECT {names} FROM {self.dialect.table(self.db, self.table)} WHERE {where}"

    def write_ahead(self, rows: list[tuple], reason: str | list[str]) -> None:
        """Rows (in :attr:`names` order, raw bytes) to the batch, on disk before they are deleted."""
        if not rows:
            return
        with open(self.dir / ROWS_FILE, "a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps({"row": [encode(v) for v in row]}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        idx = [self.names.index(c) for c in self.pk]
        now = time.time()
        why = [reason] * len(rows) if isinstance(reason, str) else reason
        self.manifest["items"] += [{"key": {c: encode(row[i]) for c, i in zip(self.pk, idx, strict=True)},
                                    "size": sum(len(v) for v in row if v is not None),
                                    "reason": r, "time": now} for row, r in zip(rows, why, strict=True)]
        self.qr._write_manifest(self.dir, self.manifest)

    def finish(self, state: str, **extra: Any) -> None:
        """``done`` after the commit; ``rolled-back`` when no row was deleted: a batch with no deleted row
        (rolled back, or every row kept by the re-check) is removed, as a file batch that moved nothing."""
        self.manifest["state"] = state
        self.manifest.update(extra)
        if state == "rolled-back" or not self.manifest["items"]:
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        with contextlib.suppress(OSError):
            self.qr._write_manifest(self.dir, self.manifest)


def read_rows(batch_dir: Path, manifest: dict[str, Any]) -> list[list[bytes | None]]:
    path = batch_dir / manifest.get("rows_file", ROWS_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            return [[decode(v) for v in json.loads(line)["row"]] for line in fh if line.strip()]
    except FileNotFoundError:
        raise OperationFailed(f"{path} is missing: the rows of batch {manifest.get('batch')} are gone") from None


def _check_columns(backend: Any, manifest: dict[str, Any], batch_id: str, batch_dir: Path,
                   insert_cols: list[str]) -> None:
    """The table must exist and hold every column the batch saved, or nothing is restored."""
    dbname, table = manifest["table"].split(".", 1)
    now_cols = {c.name for c in backend.columns(dbname, table)}
    if not now_cols:
        raise UserError(f"table {manifest['table']} of batch {batch_id} does not exist",
                        where="orphans restore",
                        hint=f"create it again (its definition is in {batch_dir / 'manifest.json'}, "
                             "key create_table), then restore")
    missing = [c for c in insert_cols if c not in now_cols]
    if missing:
        raise UserError(f"table {manifest['table']} lost column(s) {', '.join(missing)} since batch "
                        f"{batch_id} was made; nothing was restored", where="orphans restore",
                        hint="add the columns back (the old definition is in the batch's manifest, key "
                             "create_table), then restore")


def _put_back(cur: Any, backend: Any, manifest: dict[str, Any], batch_id: str, rows: list[list[bytes | None]], *,
              skip_existing: bool) -> tuple[int, list[dict], list[dict]]:
    """Load the rows into a temporary copy, compare keys that exist again, insert the rest.

    Returns (rows inserted, keys already present and identical, keys present with other contents)."""
    d = backend.dialect
    dbname, table = manifest["table"].split(".", 1)
    full = d.table(dbname, table)
    names = [c["name"] for c in manifest["columns"]]
    insert_cols = [c["name"] for c in manifest["columns"] if not c.get("generated")]
    pk = manifest["primary_key"]
    # a session-private copy
    create, tmp, drop = backend.temp_table_like(dbname, "djtui_restore_" + uuid.uuid4().hex[:12], full)
    cur.execute(create)
    ins_idx = [names.index(c) for c in insert_cols]
    marks = ", ".join(["%s"] * len(insert_cols))
    cols = ", ".join(d.ident(c) for c in insert_cols)
    sql = f"INSERT INTO {tmp} ({cols}) VALUES ({marks})"
    commandlog.record("sql", sql, None)
    for start in range(0, len(rows), 500):
        cur.executemany(sql, [[backend.row_capture_param(r[i]) for i in ins_idx] for r in rows[start:start + 500]])
    on = " AND ".join(f"t.{d.ident(c)} = x.{d.ident(c)}" for c in pk)
    txt = backend.row_text
    same = " AND ".join(backend.null_safe_equal(txt(f"t.{d.ident(c)}"), txt(f"x.{d.ident(c)}")) for c in insert_cols)
    check = (f"SELECT {', '.join(backend.row_text(f't.{d.ident(c)}') for c in pk)}, {same} "
             f"FROM {tmp} t JOIN {full} x ON {on} FOR UPDATE")
    commandlog.record("sql", check, None)
    cur.execute(check)
    present, conflicts = [], []
    for r in cur.fetchall():
        if r[-1]:  # listed but never deleted (a batch cut off before its COMMIT): already whole
            present.append({c: encode(v) for c, v in zip(pk, r[:-1], strict=False)})
        else:
            conflicts.append({c: encode(v) for c, v in zip(pk, r[:-1], strict=False)})
    if conflicts and not skip_existing:
        shown = ", ".join(show_key(k) for k in conflicts[:10])
        more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
        raise OperationFailed(
            f"batch {batch_id}: {len(conflicts)} key(s) of {manifest['table']} exist again with other "
            f"contents: {shown}{more}; nothing was restored (pass --skip-existing to restore the others "
            "and keep the rows now in the table)")
    put = (f"INSERT INTO {full} ({cols}) "
           f"SELECT {', '.join('t.' + d.ident(c) for c in insert_cols)} FROM {tmp} t "
           f"WHERE NOT EXISTS (SELECT 1 FROM {full} x WHERE {on})")
    commandlog.record("sql", put, None)
    cur.execute(put)
    inserted = cur.rowcount
    cur.execute(drop)
    return inserted, present, conflicts


def _rollback(conn: Any) -> None:
    """ROLLBACK as a statement (a connection in autocommit mode, with BEGIN sent as one, too)."""
    with contextlib.suppress(Exception), conn.cursor() as cur:
        cur.execute("ROLLBACK")


def restore_rows(db: Any, qr: Quarantine, batch_id: str, *,
                 skip_existing: bool = False) -> tuple[list[dict], dict[str, Any]]:
    """Put the rows of a row batch back, byte-identical; see the module's docstring for what is refused."""
    manifest = qr.read_manifest(batch_id)
    state = manifest.get("state")
    if state == "restored":
        raise UserError(f"batch {batch_id} was already restored")
    if state == "purged":
        raise UserError(f"batch {batch_id} was purged; its rows are gone")
    if state == "rolled-back":
        raise UserError(f"batch {batch_id} was rolled back: its rows were never deleted")
    batch_dir = qr.root / batch_id
    rows = read_rows(batch_dir, manifest)
    insert_cols = [c["name"] for c in manifest["columns"] if not c.get("generated")]
    conn = db.connect()
    try:
        what = (f"restoring batch {batch_id} into {manifest['table']} (no row was restored: the server rolls "
                "the transaction back when it sees the connection gone)")
        with db.watched(conn, what):
            _check_columns(db.backend, manifest, batch_id, batch_dir, insert_cols)
            with conn.cursor() as cur:
                cur.execute("BEGIN")
                inserted, present, conflicts = _put_back(cur, db.backend, manifest, batch_id, rows,
                                                         skip_existing=skip_existing)
                cur.execute("COMMIT")
    except db.backend.driver_error as exc:
        _rollback(conn)
        raise OperationFailed(f"batch {batch_id}: restoring rows into {manifest['table']} failed "
                              f"({exc.args[-1] if exc.args else exc}); the transaction was rolled back, "
                              "no row was restored") from None
    except BaseException:
        _rollback(conn)
        raise
    finally:
        conn.close()
    outcome = {"inserted": inserted, "already_present": len(present), "skipped_existing": len(conflicts),
               "skipped_keys": conflicts[:1000]}
    manifest["state"] = "restored"
    manifest["restored_at"] = time.time()
    manifest["restore"] = outcome
    qr._write_manifest(batch_dir, manifest)
    left = {json.dumps(k, sort_keys=True) for k in (*present, *conflicts)}
    restored = [e for e in manifest["items"] if json.dumps(e["key"], sort_keys=True) not in left]
    return restored, outcome


class RowDeletion:
    """One transaction deleting rows of one table, each written whole into a row batch before it goes.

    Use as a context manager: it opens the locking connection (values as raw bytes) and the batch;
    the body locks, writes ahead and deletes, then calls :meth:`commit`. Any failure rolls back,
    removes a batch that deleted nothing and says whether the outcome of COMMIT is known.
    """

    def __init__(self, db: Any, quarantine: Quarantine, source: str, schema: str, table: str, what: str):
        self.db, self.qr, self.source = db, quarantine, source
        self.schema, self.table, self.what = schema, table, what
        self.committing = False
        self.batch: RowBatch | None = None
        self.conn: Any = None

    def __enter__(self) -> RowDeletion:
        self.conn = self.db.connect(**self.db.backend.row_capture_overrides())
        try:
            self.qr.root.mkdir(parents=True, exist_ok=True)
            self.batch = RowBatch(self.qr, self.source, self.schema, self.table, self.conn, self.db.backend)
        except BaseException:
            self.conn.close()
            raise
        return self

    def begin(self, cur: Any) -> None:
        cur.execute("BEGIN")

    def commit(self) -> None:
        self.committing = True
        with self.conn.cursor() as cur:
            cur.execute("COMMIT")

    def __exit__(self, et: Any, exc: Any, tb: Any) -> None:
        try:
            if exc is None:
                return
            _rollback(self.conn)
            sql_error = isinstance(exc, self.db.backend.driver_error)
            if self.batch is not None and not self.committing:
                self.batch.finish("rolled-back", error=str(exc) if sql_error else f"{type(exc).__name__}: {exc}")
            if sql_error:
                # one transaction: a dropped connection (KILL, restart) rolls the whole batch back
                what = "the outcome of COMMIT is unknown: run the scan again" if self.committing else \
                    "the transaction was rolled back: no row was deleted"
                raise OperationFailed(f"{self.source}: deleting {self.what} failed "
                                      f"({exc.args[-1] if exc.args else exc}); {what}") from None
        finally:
            self.conn.close()
