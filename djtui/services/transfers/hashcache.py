"""The hash cache: xxh3-128 digests by (path, size, mtime), so a re-verify only hashes what changed."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from djtui.services.sessions.records import pack_column, unpack_column


class HashCache:
    """xxh3-128 digests keyed by (path, size, mtime) in ``state_dir/hashcache.sqlite``.

    One row per session folder: its files' relative paths, sizes, mtimes and digests as
    NUL-separated text. A verification of 100,000 files reads and writes a thousand rows, and a
    folder that did not change is recognised by comparing its columns whole, without a Python
    step per file. Keys are bytes, since a file name need not be UTF-8. It is only a cache:
    losing it costs a re-hash, so writes skip fsync.
    """

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "hashcache.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE IF NOT EXISTS hr (root BLOB PRIMARY KEY, n INTEGER, rels BLOB, sizes BLOB, "
                         "mtimes BLOB, digests BLOB)")
        for old in ("h", "hb"):  # one row per file, from earlier versions
            self._db.execute(f"DROP TABLE IF EXISTS {old}")

    def lookup(self, root: str, rels: Sequence[str], sizes: Sequence[str], mtimes: Sequence[str]
               ) -> list[str | None]:
        """The cached digest of each file whose size and mtime are still the same, else None."""
        with self._lock:
            row = self._db.execute("SELECT n, rels, sizes, mtimes, digests FROM hr WHERE root = ?",
                                   (pack_column([root]),)).fetchone()
        if row is None:
            return [None] * len(rels)
        try:
            n = row[0]
            crels, csizes, cmtimes, cdig = (unpack_column(c, n) for c in row[1:])
        except (ValueError, UnicodeError):
            return [None] * len(rels)
        if crels == list(rels) and csizes == list(sizes) and cmtimes == list(mtimes):
            return list(cdig)
        known = {r: (sz, m, d) for r, sz, m, d in zip(crels, csizes, cmtimes, cdig, strict=True)}
        out: list[str | None] = []
        for r, sz, m in zip(rels, sizes, mtimes, strict=True):
            hit = known.get(r)
            out.append(hit[2] if hit is not None and hit[0] == sz and hit[1] == m else None)
        return out

    def store(self, rows: Sequence[tuple[str, Sequence[str], Sequence[str], Sequence[str], Sequence[str]]]) -> None:
        """(root, rels, sizes, mtimes, digests) per folder; a folder's row is replaced whole."""
        if not rows:
            return
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO hr VALUES (?, ?, ?, ?, ?, ?)",
                                 [_row(root, r, s, m, d) for root, r, s, m, d in rows])
            self._db.commit()

    def forget(self, files: Iterable[tuple[str, Iterable[str]]]) -> None:
        """Drop the digests of these (folder, relative paths): read again, whatever their size and mtime."""
        with self._lock:
            for root, rels in files:
                drop = set(rels)
                row = self._db.execute("SELECT n, rels, sizes, mtimes, digests FROM hr WHERE root = ?",
                                       (pack_column([root]),)).fetchone()
                if row is None or not drop:
                    continue
                try:
                    cols = [unpack_column(c, row[0]) for c in row[1:]]
                except (ValueError, UnicodeError):
                    cols = [[], [], [], []]
                keep = [j for j, r in enumerate(cols[0]) if r not in drop]
                r, sz, m, d = ([c[j] for j in keep] for c in cols)
                self._db.execute("INSERT OR REPLACE INTO hr VALUES (?, ?, ?, ?, ?, ?)", _row(root, r, sz, m, d))
            self._db.commit()

    def close(self) -> None:
        self._db.close()


def _row(root: str, *cols: Sequence[str]) -> tuple:
    """A folder's row: its root, its file count, and its four columns packed."""
    return (pack_column([root]), len(cols[0]), *(pack_column(c) for c in cols))
