"""Is a session in DataJoint? One query per table over the keys' date span (plus one SQLite query),
whatever the number of sessions; the MultiCameraTracking rule checks each level of the pipeline."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from djtui.domain.sessions import DjStatus, SessionKey
from djtui.errors import UserError

if TYPE_CHECKING:
    from djtui.config import SessionsSettings
    from djtui.services.database import Database


class ImportCheckMixin:
    """The database side of ``SessionService`` (the attributes below are the service's)."""

    settings: SessionsSettings
    db: Database | None
    timeout: float
    _session_rows: tuple[dt.date, dt.date, set[tuple[str, dt.date]]] | None

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
                q = self.db.dialect.ident
                rows = self.db.query(
                    f"SELECT DISTINCT {q(t.participant_column)}, {q(t.date_column)} "
                    f"FROM {self.db.dialect.table(db_name, table)} "
                    f"WHERE {q(t.date_column)} BETWEEN %s AND %s", (start, end))
                have = {(str(p), date_of(d)) for p, d in rows}
                held |= have
                for k in keys:
                    if (dbid[k], k.session_date) not in have:
                        missing[k].append(t.table)
        except self.db.backend.driver_error as exc:
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
        ss, ms = self.settings.sessions_schema, self.settings.multicamera_schema

        def s(table: str) -> str:  # a table of the sessions schema, in the server's quoting
            return self.db.dialect.table(ss, table)

        mcr, scv = self.db.dialect.table(ms, "multi_camera_recording"), self.db.dialect.table(ms, "single_camera_video")
        pids = sorted(set(dbid.values()))
        subjects: set[str] = set()
        for i in range(0, len(pids), 1000):
            chunk = pids[i:i + 1000]
            rows = self.db.query(f"SELECT participant_id FROM {s('subject')} WHERE participant_id IN "
                                 f"({','.join(['%s'] * len(chunk))})", chunk)
            subjects.update(str(r[0]) for r in rows)
        rng = (start, end)
        cached = self._session_rows  # range_keys just read them: no second query
        if cached is not None and cached[0] <= start and end <= cached[1]:
            sessions = {x for x in cached[2] if start <= x[1] <= end}
        else:
            sessions = {(str(p), date_of(d)) for p, d in self.db.query(
                f"SELECT participant_id, session_date FROM {s('session')} WHERE session_date BETWEEN %s AND %s",
                rng)}
        recordings = {(str(p), date_of(d)): int(n) for p, d, n in self.db.query(
            f"SELECT participant_id, session_date, COUNT(*) FROM {s('recording')} "
            "WHERE session_date BETWEEN %s AND %s GROUP BY participant_id, session_date", rng)}
        no_mcr = {(str(p), date_of(d)) for p, d, n in self.db.query(
            f"SELECT r.participant_id, r.session_date, COUNT(*) FROM {s('recording')} r "
            f"LEFT JOIN {mcr} c USING (recording_timestamps, camera_config_hash) "
            "WHERE r.session_date BETWEEN %s AND %s AND c.recording_timestamps IS NULL "
            "GROUP BY r.participant_id, r.session_date", rng) if n}
        no_video = {(str(p), date_of(d)) for p, d in self.db.query(
            f"SELECT DISTINCT r.participant_id, r.session_date FROM {s('recording')} r "
            f"LEFT JOIN {scv} v USING (recording_timestamps, camera_config_hash) "
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
                out.add((str(name), date_of(d)))
            except ValueError:
                continue
        return out, None

    def db_sessions(self, start: dt.date, end: dt.date) -> list[tuple[str, dt.date]]:
        """(database participant id, date) of every Session row in the range: what batch considers."""
        if self.db is None:
            return []
        try:
            return self._session_table(start, end)
        except self.db.backend.driver_error:  # pymysql's or psycopg2's
            return []

    def _session_table(self, start: dt.date, end: dt.date) -> list[tuple[str, dt.date]]:
        if self.db is None or self.settings.imported_rule != "multicamera":
            return []
        s = self.db.dialect.table(self.settings.sessions_schema, "session")
        rows = self.db.query(f"SELECT participant_id, session_date FROM {s} "
                             "WHERE session_date BETWEEN %s AND %s", (start, end))
        return [(str(p), date_of(d)) for p, d in rows]


def date_of(value: object) -> dt.date:
    """A date from what a driver returns for a DATE column (date, datetime or text)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).replace("-", "")[:8]
    return dt.datetime.strptime(text, "%Y%m%d").date()

