"""Verification records and remembered content differences, all in one SQLite file.

Also the column packing (texts as one NUL-separated blob) that the hash cache shares.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from djtui.domain.sessions import ContentMismatch, FileTable, SessionKey, VerifyRecord
from djtui.errors import OperationFailed


class VerifyStore:
    """Verification records, all in one SQLite file: ``state_dir/verify.sqlite``.

    One file per session cost a rename each (ext4 flushes data on a rename over an existing
    file: about 1 ms per record); a batch now commits once. Files are stored as four
    NUL-separated text columns, not JSON: no object per file on the way in. Records written by
    earlier versions (``state_dir/verify/<destination>/<pid>_<date>.json``) are moved in on
    first use; one that cannot be read is dropped, which only means "verify again".

    The same file keeps the content differences checksum verifies found (table ``mismatches``):
    a size verify cannot see them, so they must outlive the record they withdrew.
    """

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "verify.sqlite"
        self.legacy_root = Path(state_dir) / "verify"
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def _connect(self) -> sqlite3.Connection:
        """The store's one connection, kept open: closing the last one checkpoints the WAL (an fsync)."""
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            try:
                db.execute("PRAGMA page_size=65536")  # records are a few KB each: fewer overflow pages (new files only)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("CREATE TABLE IF NOT EXISTS records (destination TEXT, participant_id TEXT, "
                           "session_date TEXT, verified_at REAL, method TEXT, files INTEGER, rels BLOB, "
                           "sizes BLOB, mtimes BLOB, hashes BLOB, "
                           "PRIMARY KEY (destination, participant_id, session_date))")
                db.execute("CREATE TABLE IF NOT EXISTS mismatches (destination TEXT, participant_id TEXT, "
                           "session_date TEXT, rel BLOB, src_size INTEGER, src_mtime INTEGER, dst_size INTEGER, "
                           "dst_mtime INTEGER, found_at REAL, method TEXT, "
                           "PRIMARY KEY (destination, participant_id, session_date, rel))")
                if self.legacy_root.is_dir():
                    self._migrate(db)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _migrate(self, db: sqlite3.Connection) -> None:
        olds = sorted(self.legacy_root.glob("*/*.json"))
        rows = []
        for p in olds:
            try:
                rows.append(self._row(VerifyRecord.from_json(json.loads(p.read_text()))))
            except (OSError, ValueError, KeyError, TypeError, IndexError):
                continue
        with db:
            db.executemany("INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        for p in olds:
            p.unlink(missing_ok=True)
        for d in sorted(self.legacy_root.glob("*")):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            self.legacy_root.rmdir()

    @staticmethod
    def _row(record: VerifyRecord) -> tuple:
        files = record.files if isinstance(record.files, FileTable) else FileTable(
            list(record.files), [v[0] for v in record.files.values()], [v[1] for v in record.files.values()],
            [v[2] for v in record.files.values()])
        rels, sizes, mtimes, hashes = files.columns()
        if hashes is not None and not any(hashes):
            hashes = None
        return (record.destination, record.participant_id, record.session_date, record.verified_at, record.method,
                len(rels), pack_column(rels), pack_column(sizes), pack_column(mtimes),
                None if hashes is None else pack_column(hashes))

    @staticmethod
    def _record(row: tuple) -> VerifyRecord:
        dest, pid, date, at, method, n, rels, sizes, mtimes, hashes = row
        hs = unpack_column(hashes, n) if hashes is not None else None
        files = FileTable(unpack_column(rels, n), unpack_column(sizes, n), unpack_column(mtimes, n),
                          [h or None for h in hs] if hs is not None else None)
        files.as_dict()  # parse now: a damaged record must fail here, not later inside a delete check
        return VerifyRecord(pid, date, dest, at, method, files)

    def load(self, key: SessionKey, dest: str) -> VerifyRecord | None:
        return self.load_many([key], dest).get(key)

    def load_many(self, keys: Sequence[SessionKey], dest: str) -> dict[SessionKey, VerifyRecord]:
        """The records of ``keys`` at ``dest`` in one query (status of 5,000 sessions asks once)."""
        if not keys or not (self.path.exists() or self.legacy_root.is_dir()):
            return {}
        want = {(k.participant_id, k.date_str): k for k in keys}
        out: dict[SessionKey, VerifyRecord] = {}
        try:
            with self._lock:
                rows = self._select(self._connect(), want, dest)
            for row in rows:
                k = want.get((row[1], row[2]))
                if k is None:
                    continue
                try:
                    out[k] = self._record(row)
                except (ValueError, TypeError, UnicodeError):
                    continue  # an unreadable record counts as none: the session shows as not verified
        except sqlite3.Error as exc:
            raise OperationFailed(f"cannot read verification records in {self.path}: {exc}") from None
        return out

    @staticmethod
    def _select(db: sqlite3.Connection, want: dict[tuple[str, str], SessionKey], dest: str) -> list[tuple]:
        if len(want) <= 200:
            rows = [db.execute("SELECT * FROM records WHERE destination = ? AND participant_id = ? "
                               "AND session_date = ?", (dest, pid, date)).fetchone() for pid, date in want]
            return [r for r in rows if r is not None]
        return db.execute("SELECT * FROM records WHERE destination = ?", (dest,)).fetchall()

    def load_mismatches(self, keys: Sequence[SessionKey], dest: str) -> dict[SessionKey, list[ContentMismatch]]:
        """The content differences remembered for ``keys`` at ``dest`` (whether or not they still apply)."""
        if not keys or not (self.path.exists() or self.legacy_root.is_dir()):
            return {}
        want = {(k.participant_id, k.date_str): k for k in keys}
        out: dict[SessionKey, list[ContentMismatch]] = defaultdict(list)
        cols = "participant_id, session_date, rel, src_size, src_mtime, dst_size, dst_mtime, found_at, method"
        try:
            with self._lock:
                db = self._connect()
                if len(want) <= 200:
                    rows = [r for pid, date in want for r in db.execute(
                        f"SELECT {cols} FROM mismatches WHERE destination = ? AND participant_id = ? "
                        "AND session_date = ?", (dest, pid, date)).fetchall()]
                else:
                    rows = db.execute(f"SELECT {cols} FROM mismatches WHERE destination = ?", (dest,)).fetchall()
        except sqlite3.Error as exc:
            raise OperationFailed(f"cannot read verification records in {self.path}: {exc}") from None
        for pid, date, rel, ss, sm, ds, dm, at, method in rows:
            k = want.get((pid, date))
            if k is None:
                continue
            out[k].append(ContentMismatch(bytes(rel).decode("utf-8", "surrogateescape"), int(ss), int(sm),
                                          int(ds), int(dm), float(at), str(method)))
        return dict(out)

    def save(self, record: VerifyRecord) -> Path:
        return self.save_many([record])

    def save_many(self, records: Iterable[VerifyRecord], forget: Iterable[tuple[SessionKey, str]] = (),
                  mismatches: Mapping[tuple[SessionKey, str], Sequence[ContentMismatch]] | None = None) -> Path:
        """Store passing records and withdraw failed ones: one transaction each, not one per session.

        ``mismatches``: for each (session, destination) given, the content differences now known there
        (they replace the remembered ones; empty clears them). Written with the withdrawals, synced.
        """
        rows = [self._row(r) for r in records]
        gone = [(d, k.participant_id, k.date_str) for k, d in forget]
        mm = mismatches or {}
        cleared = [(d, k.participant_id, k.date_str) for k, d in mm]
        known = [(d, k.participant_id, k.date_str, m.rel.encode("utf-8", "surrogateescape"), m.src_size,
                  m.src_mtime_ns, m.dst_size, m.dst_mtime_ns, m.found_at, m.method)
                 for (k, d), items in mm.items() for m in items]
        if not rows and not gone and not cleared:
            return self.path
        with self._lock:
            try:
                self._write(self._connect(), rows, gone, cleared, known)
            except sqlite3.Error as exc:
                raise OperationFailed(f"cannot write verification records in {self.path}: {exc}") from None
        return self.path

    @staticmethod
    def _write(db: sqlite3.Connection, rows: list[tuple], gone: list[tuple[str, str, str]],
               cleared: Sequence[tuple[str, str, str]] = (), known: Sequence[tuple] = ()) -> None:
        if gone or cleared:  # a withdrawn record and a found difference must survive a crash: this commit is synced
            db.execute("PRAGMA synchronous=FULL")
            with db:
                db.executemany("DELETE FROM records WHERE destination = ? AND participant_id = ? "
                               "AND session_date = ?", gone)
                db.executemany("DELETE FROM mismatches WHERE destination = ? AND participant_id = ? "
                               "AND session_date = ?", cleared)
                db.executemany("INSERT OR REPLACE INTO mismatches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", known)
        if rows:  # a new record lost in a crash only means "verify again": no sync needed
            db.execute("PRAGMA synchronous=NORMAL")
            with db:
                db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def forget(self, key: SessionKey, dest: str) -> None:
        self.save_many((), [(key, dest)])

    def forget_many(self, keys: Iterable[SessionKey], dest: str) -> None:
        self.save_many((), [(k, dest) for k in keys])


def pack_column(col: Sequence[str]) -> bytes:
    """A column of texts as one NUL-separated blob (names need not be UTF-8: surrogateescape keeps their bytes)."""
    return "\0".join(col).encode("utf-8", "surrogateescape")


def unpack_column(blob: bytes, n: int) -> list[str]:
    """The ``n`` texts of a packed column; ValueError when the blob does not hold exactly ``n``."""
    if n == 0:
        return []
    out = bytes(blob).decode("utf-8", "surrogateescape").split("\0")
    if len(out) != n:
        raise ValueError(f"a packed column holds {len(out)} values, expected {n}")
    return out
