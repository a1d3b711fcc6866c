"""Which sessions exist, whether the database holds them, and how each destination compares.

The shell tool asked the database 3 + 2 x recordings questions per session,
each in a fresh container. Here a date range costs one query per table
(plus one SQLite query), and the disk scans of all sessions run in one
worker thread per side under a deadline, in parallel with the queries.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymysql

from djtui.config import Config, Destination
from djtui.domain.sessions import (
    MOUNT_HUNG,
    MOUNT_MISSING,
    MOUNT_OK,
    DestinationStatus,
    DjStatus,
    Listing,
    SessionKey,
    SessionStatus,
    VerifyRecord,
    compare_sizes,
    matches_prefix,
    normalize_participant,
    record_drift,
    render_path,
    template_regex,
)
from djtui.errors import UserError
from djtui.services import filesystem
from djtui.services.database import Database

MIN_DATE = dt.date(1970, 1, 1)
MAX_DATE = dt.date(9999, 12, 31)


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class VerifyStore:
    """Verification records as JSON under ``state_dir/verify/<destination>/``, one file per session."""

    def __init__(self, state_dir: Path):
        self.root = Path(state_dir) / "verify"
        self._made: set[Path] = set()

    def path(self, key: SessionKey, dest: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", dest)
        return self.root / safe / f"{key.participant_id}_{key.date_str}.json"

    def load(self, key: SessionKey, dest: str) -> VerifyRecord | None:
        try:
            return VerifyRecord.from_json(json.loads(self.path(key, dest).read_text()))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def save(self, record: VerifyRecord) -> Path:
        key = SessionKey(record.participant_id, dt.datetime.strptime(record.session_date, "%Y%m%d").date())
        p = self.path(key, record.destination)
        if p.parent not in self._made:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(p.parent)
        tmp = f"{p}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(record.to_json(), separators=(",", ":")).encode())
        finally:
            os.close(fd)
        os.replace(tmp, p)  # atomic: a reader sees the old record or the new one
        return p

    def forget(self, key: SessionKey, dest: str) -> None:
        self.path(key, dest).unlink(missing_ok=True)


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
        """Sessions present under the source base, filtered by prefix and date range."""
        template = self.backup.source.path_structure
        segments = template.split("/")
        regexes = [template_regex(s) if "{" in s else None for s in segments]
        prefixes = self.backup.filters.participant_prefixes
        start, end = start or MIN_DATE, end or MAX_DATE

        def walk(beat: filesystem.Heartbeat) -> list[SessionKey]:
            found: list[SessionKey] = []
            level: list[tuple[Path, dict[str, str]]] = [(self.source_base, {})]
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
                    except (FileNotFoundError, NotADirectoryError):
                        continue
                    beat()
                level = nxt
            for _path, vals in level:
                pid, ds = vals.get("participant_id"), vals.get("session_date")
                if not pid or not ds or not matches_prefix(pid, prefixes):
                    continue
                try:
                    d = dt.datetime.strptime(ds, "%Y%m%d").date()
                except ValueError:
                    continue
                if start <= d <= end:
                    found.append(SessionKey(pid, d))
            return sorted(set(found), key=lambda k: (k.session_date, k.participant_id))

        if not self.source_base.is_dir():
            raise UserError(f"source base path {self.source_base} does not exist",
                            where=f"{self.config.label}, key `backup.source.base_path`",
                            hint="fix the path or create the folder")
        return filesystem.with_deadline(walk, self.timeout, self.source_base)

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
        try:
            if self.settings.imported_rule == "multicamera":
                self._multicamera(keys, dbid, start, end, missing)
            for t in self.settings.tables:
                db_name, table = t.table.split(".", 1)
                rows = self.db.query(
                    f"SELECT DISTINCT {q(t.participant_column)}, {q(t.date_column)} FROM {q(db_name)}.{q(table)} "
                    f"WHERE {q(t.date_column)} BETWEEN %s AND %s", (start, end))
                have = {(str(p), _date_of(d)) for p, d in rows}
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
        return {k: DjStatus(not missing.get(k), tuple(missing.get(k, ()))) for k in keys}

    def _multicamera(self, keys: Sequence[SessionKey], dbid: dict[SessionKey, str], start: dt.date, end: dt.date,
                     missing: dict[SessionKey, list[str]]) -> None:
        s, m = q(self.settings.sessions_schema), q(self.settings.multicamera_schema)
        pids = sorted(set(dbid.values()))
        subjects: set[str] = set()
        for i in range(0, len(pids), 1000):
            chunk = pids[i:i + 1000]
            rows = self.db.query(f"SELECT participant_id FROM {s}.`subject` WHERE participant_id IN "
                                 f"({','.join(['%s'] * len(chunk))})", chunk)
            subjects.update(str(r[0]) for r in rows)
        rng = (start, end)
        sessions = {(str(p), _date_of(d)) for p, d in self.db.query(
            f"SELECT participant_id, session_date FROM {s}.`session` WHERE session_date BETWEEN %s AND %s", rng)}
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
        if self.db is None or self.settings.imported_rule != "multicamera":
            return []
        s = q(self.settings.sessions_schema)
        try:
            rows = self.db.query(f"SELECT participant_id, session_date FROM {s}.`session` "
                                 "WHERE session_date BETWEEN %s AND %s", (start, end))
        except pymysql.err.MySQLError:
            return []
        return [(str(p), _date_of(d)) for p, d in rows]

    # -- status ------------------------------------------------------------------------------
    def probe(self, dest: Destination) -> filesystem.MountProbe:
        target = dest.mount_point if (dest.verify_mount and dest.mount_point) else dest.base_path
        probe = filesystem.probe_mount(target, self.timeout)
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
        for i, k in enumerate(keys):
            listing = src[i] if src is not None else Listing(False)
            dstats = []
            for d in self.destinations:
                probe, listings = dst[d.name]
                path = str(self.dest_path(d, k))
                if not probe.ok or listings is None:
                    dstats.append(DestinationStatus(d.name, path, mount=probe.state, detail=probe.detail))
                    continue
                dl = listings[i]
                cmp = compare_sizes(listing, dl) if dl.exists else None
                drift = tuple(record_drift(self.records.load(k, d.name), listing))
                dstats.append(DestinationStatus(d.name, path, MOUNT_OK, dl, cmp, drift))
            out.append(SessionStatus(k, self.db_participant(k.participant_id), str(self.source_path(k)), listing,
                                     dj.get(k, DjStatus(False, error="not queried")), tuple(dstats),
                                     listing.videos(exts)))
            if src_err:
                out[-1] = SessionStatus(k, out[-1].db_participant, out[-1].source_path, Listing(False),
                                        DjStatus(False, error=src_err), tuple(dstats), 0)
        return out

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
        return self.statuses(self.discover(start, end))

    def status(self, key: SessionKey) -> SessionStatus:
        return self.statuses([key])[0]


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
