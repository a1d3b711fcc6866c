"""Which sessions exist, whether the database holds them, and how each destination compares.

The shell tool asked the database 3 + 2 x recordings questions per session,
each in a fresh container. Here a date range costs one query per table
(plus one SQLite query), and the disk scans of all sessions run in one
worker thread per side under a deadline, in parallel with the queries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymysql

from djtui.config import Config, Destination
from djtui.domain.sessions import (
    MOUNT_HUNG,
    MOUNT_MISSING,
    MOUNT_OK,
    ContentMismatch,
    DestinationStatus,
    DjStatus,
    FileTable,
    Listing,
    SessionKey,
    SessionStatus,
    VerifyRecord,
    compare_sizes,
    listing_stats,
    matches_prefix,
    mount_points,
    nearest_mount,
    normalize_participant,
    record_drift,
    render_path,
    standing_mismatches,
    template_regex,
    validate_participant,
)
from djtui.errors import OperationFailed, UserError
from djtui.services import filesystem
from djtui.services.database import Database

MIN_DATE = dt.date(1970, 1, 1)
MAX_DATE = dt.date(9999, 12, 31)


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


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
                len(rels), _pack(rels), _pack(sizes), _pack(mtimes), None if hashes is None else _pack(hashes))

    @staticmethod
    def _record(row: tuple) -> VerifyRecord:
        dest, pid, date, at, method, n, rels, sizes, mtimes, hashes = row
        hs = _unpack(hashes, n) if hashes is not None else None
        files = FileTable(_unpack(rels, n), _unpack(sizes, n), _unpack(mtimes, n),
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


def _pack(col: list[str]) -> bytes:
    return "\0".join(col).encode("utf-8", "surrogateescape")


def _unpack(blob: bytes, n: int) -> list[str]:
    if n == 0:
        return []
    out = bytes(blob).decode("utf-8", "surrogateescape").split("\0")
    if len(out) != n:
        raise ValueError(f"a record column holds {len(out)} values, expected {n}")
    return out


class SessionService:
    """Sessions of one lab machine: discovery on disk, import status in the database, backup state."""

    def __init__(self, config: Config, db: Database | None):
        if config.backup is None:
            raise UserError("no `backup:` section in the config", where=config.label,
                            hint="add backup.source.base_path and at least one destination "
                                 "(see backup_config.example.yaml)")
        self.config = config
        self.backup = config.backup
        self.settings = config.sessions
        self.db = db
        self.records = VerifyStore(config.state_dir)

    # -- paths -----------------------------------------------------------------------------
    @property
    def destinations(self) -> tuple[Destination, ...]:
        return self.backup.enabled_destinations

    @property
    def source_base(self) -> Path:
        return self.backup.source.base_path

    def source_path(self, key: SessionKey) -> Path:
        return self.source_base / render_path(self.backup.source.path_structure, key)

    def dest_path(self, dest: Destination, key: SessionKey) -> Path:
        return dest.base_path / render_path(dest.path_structure, key)

    def db_participant(self, disk_id: str) -> str:
        rule = self.settings.participant_id
        return normalize_participant(disk_id, rule.strip_prefixes, rule.numeric_only)

    @property
    def excludes(self) -> tuple[str, ...]:
        return self.backup.filters.exclude_patterns

    @property
    def timeout(self) -> float:
        return self.settings.mount_timeout

    # -- discovery ---------------------------------------------------------------------------
    def discover(self, start: dt.date | None = None, end: dt.date | None = None) -> list[SessionKey]:
        """Sessions present under the source base, filtered by prefix and date range.

        Folders that look like sessions but cannot be used are remembered for a warning:
        ``odd_folders`` (participant folder name unusable) and ``odd_dates`` (date folder name
        not a valid YYYYMMDD date, while the folder holds files).
        """
        if not self.source_base.is_dir():
            raise UserError(f"source base path {self.source_base} does not exist",
                            where=f"{self.config.label}, key `backup.source.base_path`",
                            hint="fix the path or create the folder")
        found, odd, odd_dates = filesystem.with_deadline(
            lambda beat: self._walk(self.source_base, self.backup.source.path_structure, start, end, beat,
                                    odd_dates=True), self.timeout, self.source_base)
        self.odd_folders = tuple(sorted(odd))
        self.odd_dates = tuple(sorted(odd_dates))
        return found

    def _walk(self, base: Path, template: str, start: dt.date | None, end: dt.date | None,
              beat: filesystem.Heartbeat, *, odd_dates: bool = False
              ) -> tuple[list[SessionKey], list[str], list[str]]:
        """The session folders under ``base`` laid out by ``template``: one directory level at a time."""
        segments = template.split("/")
        regexes = [template_regex(s) if "{" in s else None for s in segments]
        prefixes = self.backup.filters.participant_prefixes
        start, end = start or MIN_DATE, end or MAX_DATE
        found: list[SessionKey] = []
        bad_dates: list[tuple[Path, dict[str, str]]] = []
        level: list[tuple[Path, dict[str, str]]] = [(base, {})]
        for seg, rx in zip(segments, regexes, strict=True):
            nxt: list[tuple[Path, dict[str, str]]] = []
            for path, vals in level:
                if rx is None:
                    nxt.append((path / seg, vals))
                    continue
                try:
                    with os.scandir(path) as it:
                        for e in it:
                            m = rx.match(e.name)
                            if m and e.is_dir(follow_symlinks=False):
                                nxt.append((Path(e.path), {**vals, **m.groupdict()}))
                            elif odd_dates and "{session_date}" in seg and e.is_dir(follow_symlinks=False):
                                bad_dates.append((Path(e.path), vals))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                beat()
            level = nxt
        odd: list[str] = []
        for path, vals in level:
            pid, ds = vals.get("participant_id"), vals.get("session_date")
            if not pid or not ds or not matches_prefix(pid, prefixes):
                continue
            try:  # a hand-made folder (quotes, spaces, non-UTF-8) no command could name: listed, not used
                validate_participant(pid)
            except UserError:
                odd.append(str(path))
                continue
            try:
                d = dt.datetime.strptime(ds, "%Y%m%d").date()
            except ValueError:
                bad_dates.append((path, vals))
                continue
            if start <= d <= end:
                found.append(SessionKey(pid, d))
        dates: list[str] = []
        for path, vals in bad_dates:
            pid = vals.get("participant_id")
            if pid is not None and not matches_prefix(pid, prefixes):
                continue
            if _holds_files(path):
                beat()
                dates.append(str(path))
        return sorted(set(found), key=lambda k: (k.session_date, k.participant_id)), odd, dates

    def elsewhere(self, start: dt.date | None, end: dt.date | None,
                  local: Sequence[SessionKey]) -> list[SessionKey]:
        """Sessions in the range that the database or a destination holds but local disk does not.

        One query (the Session table) and one folder walk per destination; a destination that does not
        answer adds nothing here (its status shows it hung). A database id is spelled as on disk when a
        destination names it, else with the first strip prefix the participant filter accepts.
        """
        have = set(local)
        have_db = {(self.db_participant(k.participant_id), k.session_date) for k in local}
        out: dict[tuple[str, dt.date], SessionKey] = {}
        for d in self.destinations:
            try:
                keys, _, _ = filesystem.with_deadline(
                    lambda beat, d=d: self._walk(d.base_path, d.path_structure, start, end, beat),
                    self.timeout, d.base_path)
            except (filesystem.Hung, OSError):
                continue
            for k in keys:
                ident = (self.db_participant(k.participant_id), k.session_date)
                if k not in have and ident not in have_db:
                    out.setdefault(ident, k)
        lo, hi = start or MIN_DATE, end or MAX_DATE
        prefixes = self.backup.filters.participant_prefixes
        try:
            in_db = self._session_table(lo, hi)
            if self.db is not None and self.settings.imported_rule == "multicamera":
                self._session_rows = (lo, hi, set(in_db))
        except (UserError, pymysql.err.MySQLError):  # the DJ column says why; the disks still show
            in_db = []
        for pid, day in in_db:
            ident = (pid, day)
            if ident in have_db or ident in out:
                continue
            names = [pid] + [p + pid for p in self.settings.participant_id.strip_prefixes
                             if p and self.db_participant(p + pid) == pid]
            name = next((n for n in names if matches_prefix(n, prefixes)), None)
            if name is None:
                continue
            try:
                k = SessionKey(validate_participant(name), day)
            except UserError:
                continue
            if k not in have:
                out[ident] = k
        return sorted(out.values(), key=lambda k: (k.session_date, k.participant_id))

    # -- database --------------------------------------------------------------------------
    def dj_status(self, keys: Sequence[SessionKey]) -> dict[SessionKey, DjStatus]:
        """Import status of every key from one query per table over the keys' date span."""
        if not keys:
            return {}
        if self.db is None:
            return {k: DjStatus(False, error="database not connected") for k in keys}
        start = min(k.session_date for k in keys)
        end = max(k.session_date for k in keys)
        dbid = {k: self.db_participant(k.participant_id) for k in keys}
        missing: dict[SessionKey, list[str]] = defaultdict(list)
        held: set[tuple[str, dt.date]] = set()  # (database id, date) some table holds: the session exists there
        try:
            if self.settings.imported_rule == "multicamera":
                held |= self._multicamera(keys, dbid, start, end, missing)
            for t in self.settings.tables:
                db_name, table = t.table.split(".", 1)
                rows = self.db.query(
                    f"SELECT DISTINCT {q(t.participant_column)}, {q(t.date_column)} FROM {q(db_name)}.{q(table)} "
                    f"WHERE {q(t.date_column)} BETWEEN %s AND %s", (start, end))
                have = {(str(p), _date_of(d)) for p, d in rows}
                held |= have
                for k in keys:
                    if (dbid[k], k.session_date) not in have:
                        missing[k].append(t.table)
        except pymysql.err.MySQLError as exc:
            msg = f"database query failed: {exc.args[-1] if exc.args else exc}"
            return {k: DjStatus(False, error=msg) for k in keys}
        except UserError as exc:  # could not connect: the disks are still worth showing
            return {k: DjStatus(False, error=f"database unreachable: {exc.what}") for k in keys}
        if self.settings.sqlite_path is not None:
            have_sqlite, err = self._sqlite_imported(start, end)
            for k in keys:
                if err:
                    missing[k].append(f"SQLite ({err})")
                elif (k.participant_id, k.session_date) not in have_sqlite and \
                        (dbid[k], k.session_date) not in have_sqlite:
                    missing[k].append("SQLite imported flag")
        return {k: DjStatus(not missing.get(k), tuple(missing.get(k, ())),
                            in_database=(dbid[k], k.session_date) in held)
                for k in keys}

    def _multicamera(self, keys: Sequence[SessionKey], dbid: dict[SessionKey, str], start: dt.date, end: dt.date,
                     missing: dict[SessionKey, list[str]]) -> set[tuple[str, dt.date]]:
        """Fills ``missing``; returns the (database id, date) pairs that have a Session row."""
        s, m = q(self.settings.sessions_schema), q(self.settings.multicamera_schema)
        pids = sorted(set(dbid.values()))
        subjects: set[str] = set()
        for i in range(0, len(pids), 1000):
            chunk = pids[i:i + 1000]
            rows = self.db.query(f"SELECT participant_id FROM {s}.`subject` WHERE participant_id IN "
                                 f"({','.join(['%s'] * len(chunk))})", chunk)
            subjects.update(str(r[0]) for r in rows)
        rng = (start, end)
        cached = getattr(self, "_session_rows", None)  # range_keys just read them: no second query
        if cached is not None and cached[0] <= start and end <= cached[1]:
            sessions = {x for x in cached[2] if start <= x[1] <= end}
        else:
            sessions = {(str(p), _date_of(d)) for p, d in self.db.query(
                f"SELECT participant_id, session_date FROM {s}.`session` WHERE session_date BETWEEN %s AND %s",
                rng)}
        recordings = {(str(p), _date_of(d)): int(n) for p, d, n in self.db.query(
            f"SELECT participant_id, session_date, COUNT(*) FROM {s}.`recording` "
            "WHERE session_date BETWEEN %s AND %s GROUP BY participant_id, session_date", rng)}
        no_mcr = {(str(p), _date_of(d)) for p, d, n in self.db.query(
            f"SELECT r.participant_id, r.session_date, COUNT(*) FROM {s}.`recording` r "
            f"LEFT JOIN {m}.`multi_camera_recording` c USING (recording_timestamps, camera_config_hash) "
            "WHERE r.session_date BETWEEN %s AND %s AND c.recording_timestamps IS NULL "
            "GROUP BY r.participant_id, r.session_date", rng) if n}
        no_video = {(str(p), _date_of(d)) for p, d in self.db.query(
            f"SELECT DISTINCT r.participant_id, r.session_date FROM {s}.`recording` r "
            f"LEFT JOIN {m}.`single_camera_video` v USING (recording_timestamps, camera_config_hash) "
            "WHERE r.session_date BETWEEN %s AND %s AND v.filename IS NULL", rng)}
        for k in keys:
            ident = (dbid[k], k.session_date)
            if dbid[k] not in subjects:
                missing[k].append("Subject")
            if ident not in sessions:
                missing[k].append("Session")
            if not recordings.get(ident):
                missing[k].extend(["Recording", "MultiCameraRecording", "SingleCameraVideo"])
                continue
            if ident in no_mcr:
                missing[k].append("MultiCameraRecording")
            if ident in no_video:
                missing[k].append("SingleCameraVideo")
        return sessions | set(recordings)

    def _sqlite_imported(self, start: dt.date, end: dt.date) -> tuple[set[tuple[str, dt.date]], str | None]:
        path = self.settings.sqlite_path
        assert path is not None
        if not path.is_file():
            return set(), f"{path} not found"
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=self.timeout)
            try:
                rows = conn.execute(
                    "SELECT p.name, s.session_date FROM imported i JOIN sessions s ON s.id = i.session_id "
                    "JOIN participants p ON p.id = s.participant_id").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return set(), str(exc)
        out = set()
        for name, d in rows:
            try:
                out.add((str(name), _date_of(d)))
            except ValueError:
                continue
        return out, None

    def db_sessions(self, start: dt.date, end: dt.date) -> list[tuple[str, dt.date]]:
        """(database participant id, date) of every Session row in the range: what batch considers."""
        try:
            return self._session_table(start, end)
        except pymysql.err.MySQLError:
            return []

    def _session_table(self, start: dt.date, end: dt.date) -> list[tuple[str, dt.date]]:
        if self.db is None or self.settings.imported_rule != "multicamera":
            return []
        s = q(self.settings.sessions_schema)
        rows = self.db.query(f"SELECT participant_id, session_date FROM {s}.`session` "
                             "WHERE session_date BETWEEN %s AND %s", (start, end))
        return [(str(p), _date_of(d)) for p, d in rows]

    # -- status ------------------------------------------------------------------------------
    def probe(self, dest: Destination) -> filesystem.MountProbe:
        """Does the destination answer? With ``verify_mount`` and a ``mount_point``, that must be mounted:
        a plain directory there is the share not mounted (the backup manager's ``mountpoint -q``)."""
        strict = bool(dest.verify_mount and dest.mount_point)
        target = dest.mount_point if strict else dest.base_path
        probe = filesystem.probe_mount(target, self.timeout, require_mountpoint=strict)
        if probe.ok and target != dest.base_path:
            probe = filesystem.probe_mount(dest.base_path, self.timeout)
        return probe

    def statuses(self, keys: Sequence[SessionKey]) -> list[SessionStatus]:
        """Full status of each key: source scan, DB status and every enabled destination."""
        if not keys:
            return []
        with ThreadPoolExecutor(max_workers=2 + len(self.destinations)) as pool:
            f_dj = pool.submit(self.dj_status, keys)
            f_src = pool.submit(self._scan_side, [self.source_path(k) for k in keys])
            f_dst = {d.name: pool.submit(self._dest_side, d, keys) for d in self.destinations}
            dj = f_dj.result()
            src, src_err = f_src.result()
            dst = {name: f.result() for name, f in f_dst.items()}
        out = []
        exts = self.settings.video_extensions
        records = {d.name: self.records.load_many(keys, d.name) for d in self.destinations}
        known = {d.name: self.records.load_mismatches(keys, d.name) for d in self.destinations}
        for i, k in enumerate(keys):
            listing = src[i] if src is not None else Listing(False)
            dstats = []
            for d in self.destinations:
                probe, listings = dst[d.name]
                path = str(self.dest_path(d, k))
                if not probe.ok or listings is None:
                    detail, mp = probe.detail, None
                    if probe.state == MOUNT_HUNG:
                        mp = self.mount_point_of(d)
                        detail = f"{probe.path} did not answer within {self.timeout:g} s (stale mount?)"
                    dstats.append(DestinationStatus(d.name, path, mount=probe.state, detail=detail, mount_point=mp))
                    continue
                dl = listings[i]
                cmp = compare_sizes(listing, dl) if dl.exists else None
                drift = tuple(record_drift(records[d.name].get(k), listing))
                bad = standing_mismatches(known[d.name].get(k, ()), listing_stats(listing), listing_stats(dl))
                if bad:  # the failed content check, not "never verified"
                    drift = tuple(m.reason() for m in bad) + tuple(x for x in drift if x != "never verified")
                dstats.append(DestinationStatus(d.name, path, MOUNT_OK, dl, cmp, drift,
                                                content_differs=tuple(m.rel for m in bad)))
            out.append(SessionStatus(k, self.db_participant(k.participant_id), str(self.source_path(k)), listing,
                                     dj.get(k, DjStatus(False, error="not queried")), tuple(dstats),
                                     listing.videos(exts), local=listing.exists))
            if src_err:
                out[-1] = SessionStatus(k, out[-1].db_participant, out[-1].source_path, Listing(False),
                                        DjStatus(False, error=src_err), tuple(dstats), 0)
        return out

    def mount_point_of(self, dest: Destination) -> str | None:
        """Where ``dest`` is mounted: its configured mount point, else the nearest one in /proc/self/mountinfo.

        Reads only the kernel's table (never the hung mount itself); None when it cannot tell.
        """
        if dest.mount_point:
            return str(dest.mount_point)
        try:
            text = Path("/proc/self/mountinfo").read_text(errors="surrogateescape")
        except OSError:
            return None
        return nearest_mount(os.path.abspath(dest.base_path), mount_points(text))

    def _scan_side(self, paths: list[Path]) -> tuple[list[Listing] | None, str | None]:
        try:
            return filesystem.scan_many(paths, exclude=self.excludes, timeout=self.timeout), None
        except filesystem.Hung as exc:
            return None, str(exc)
        except OSError as exc:
            return None, f"{exc.filename}: {exc.strerror}"

    def _dest_side(self, dest: Destination, keys: Sequence[SessionKey]
                   ) -> tuple[filesystem.MountProbe, list[Listing] | None]:
        probe = self.probe(dest)
        if not probe.ok:
            return probe, None
        try:
            return probe, filesystem.scan_many([self.dest_path(dest, k) for k in keys], exclude=self.excludes,
                                               timeout=self.timeout)
        except filesystem.Hung as exc:
            return filesystem.MountProbe(str(dest.base_path), MOUNT_HUNG, self.timeout, str(exc)), None
        except OSError as exc:
            return filesystem.MountProbe(str(dest.base_path), MOUNT_MISSING, 0.0,
                                         f"{exc.filename}: {exc.strerror}"), None

    def status_range(self, start: dt.date | None = None, end: dt.date | None = None) -> list[SessionStatus]:
        """Local sessions merged with those only the database or a destination holds (``local`` False)."""
        return self.statuses(self.range_keys(start, end))

    def range_keys(self, start: dt.date | None = None, end: dt.date | None = None) -> list[SessionKey]:
        local = self.discover(start, end)
        return sorted([*local, *self.elsewhere(start, end, local)], key=lambda k: (k.session_date, k.participant_id))

    def status(self, key: SessionKey) -> SessionStatus:
        return self.statuses([key])[0]


def _holds_files(path: Path) -> bool:
    """Does the folder hold any file (at any depth)? Stops at the first one."""
    try:
        for _root, _dirs, files in os.walk(path):
            if files:
                return True
    except OSError:
        return False
    return False


def _date_of(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).replace("-", "")[:8]
    return dt.datetime.strptime(text, "%Y%m%d").date()


def parse_range(start: str | None, end: str | None) -> tuple[dt.date | None, dt.date | None]:
    from djtui.domain.sessions import parse_date
    s = parse_date(start, where="--start-date") if start else None
    e = parse_date(end, where="--end-date") if end else None
    if s and e and s > e:
        raise UserError(f"start date {start} is after end date {end}", where="--start-date/--end-date",
                        hint="swap them")
    return s, e


def keys_for_batch(service: SessionService, start: dt.date, end: dt.date) -> tuple[list[SessionKey], list[str]]:
    """Sessions in range from the database and the disk; database sessions absent locally are skipped."""
    local = service.discover(start, end)
    local_by_db = {(service.db_participant(k.participant_id), k.session_date): k for k in local}
    skipped = []
    for pid, d in service.db_sessions(start, end):
        if (pid, d) not in local_by_db and SessionKey(pid, d) not in local:
            skipped.append(f"{pid} {d:%Y%m%d}: in the database, not on local disk")
    return local, skipped


def iter_labels(keys: Iterable[SessionKey]) -> list[str]:
    return [k.label for k in keys]
