"""Which sessions exist: walks of the source and destination trees laid out by their path templates,
and the sessions only the database holds.

``Discovery`` is what one walk of the source found, including the folders it had to skip.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from djtui.domain.sessions import BY_DATE, SessionKey, matches_prefix, template_regex, validate_participant
from djtui.errors import UserError
from djtui.services import filesystem

if TYPE_CHECKING:
    from djtui.config import BackupSettings, Config, SessionsSettings

MIN_DATE = dt.date(1970, 1, 1)
MAX_DATE = dt.date(9999, 12, 31)


@dataclass(frozen=True)
class Discovery:
    """Sessions found under the source base, and session-like folders skipped (for a warning):
    ``odd_folders`` (participant folder name unusable), ``odd_dates`` (holds files, date name not YYYYMMDD)."""

    keys: list[SessionKey] = field(default_factory=list)
    odd_folders: tuple[str, ...] = ()
    odd_dates: tuple[str, ...] = ()


class DiscoveryMixin:
    """Walks for ``SessionService`` (the attributes below are the service's)."""

    config: Config
    backup: BackupSettings
    settings: SessionsSettings
    last_discovery: Discovery
    _session_rows: tuple[dt.date, dt.date, set[tuple[str, dt.date]]] | None

    def discover(self, start: dt.date | None = None, end: dt.date | None = None) -> list[SessionKey]:
        """Sessions present under the source base, filtered by prefix and date range.

        What else the walk found is kept in ``last_discovery`` (see ``find``).
        """
        return self.find(start, end).keys

    def find(self, start: dt.date | None = None, end: dt.date | None = None) -> Discovery:
        """The sessions under the source base and the folders that look like sessions but cannot be used."""
        if not self.source_base.is_dir():
            raise UserError(f"source base path {self.source_base} does not exist",
                            where=f"{self.config.label}, key `backup.source.base_path`",
                            hint="fix the path or create the folder")
        found, odd, odd_dates = filesystem.with_deadline(
            lambda beat: self._walk(self.source_base, self.backup.source.path_structure, start, end, beat,
                                    odd_dates=True), self.timeout, self.source_base)
        self.last_discovery = Discovery(found, tuple(sorted(odd)), tuple(sorted(odd_dates)))
        return self.last_discovery

    def _walk(self, base: Path, template: str, start: dt.date | None, end: dt.date | None,
              beat: filesystem.Heartbeat, *, odd_dates: bool = False
              ) -> tuple[list[SessionKey], list[str], list[str]]:
        """The session folders under ``base`` laid out by ``template``: one directory level at a time."""
        segments = template.split("/")
        regexes = [template_regex(s) if "{" in s else None for s in segments]
        prefixes = self.backup.filters.participant_prefixes
        start, end = start or MIN_DATE, end or MAX_DATE
        found: list[SessionKey] = []
        bad_dates: list[tuple[str, dict[str, str]]] = []
        # paths stay strings: a Path per folder cost more than the rest of a 50,000-session walk
        level: list[tuple[str, dict[str, str]]] = [(os.fspath(base), {})]
        join = os.path.join
        for seg, rx in zip(segments, regexes, strict=True):
            nxt: list[tuple[str, dict[str, str]]] = []
            for path, vals in level:
                if rx is None:
                    nxt.append((join(path, seg), vals))
                    continue
                try:
                    with os.scandir(path) as it:
                        for e in it:
                            m = rx.match(e.name)
                            if m and e.is_dir(follow_symlinks=False):
                                nxt.append((e.path, {**vals, **m.groupdict()}))
                            elif odd_dates and "{session_date}" in seg and e.is_dir(follow_symlinks=False):
                                bad_dates.append((e.path, vals))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                beat()
            level = nxt
        odd: list[str] = []
        # a lab has far fewer participants and days than sessions: each name is judged once
        usable: dict[str, bool] = {}
        days: dict[str, dt.date | None] = {}
        for path, vals in level:
            pid, ds = vals.get("participant_id"), vals.get("session_date")
            if not pid or not ds:
                continue
            ok = usable.get(pid)
            if ok is None:
                ok = usable[pid] = _usable_participant(pid, prefixes)
            if not ok:
                if matches_prefix(pid, prefixes):
                    odd.append(path)  # a hand-made folder (quotes, spaces, non-UTF-8) no command could name
                continue
            if ds in days:
                d = days[ds]
            else:
                d = days[ds] = _day(ds)
            if d is None:
                bad_dates.append((path, vals))
                continue
            if start <= d <= end:
                found.append(SessionKey(pid, d))
        dates: list[str] = []
        for path, vals in bad_dates:
            pid = vals.get("participant_id")
            if pid is not None and not matches_prefix(pid, prefixes):
                continue
            if holds_files(path):
                beat()
                dates.append(path)
        return sorted(set(found), key=BY_DATE), odd, dates

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's errors of this lab's server (pymysql's or psycopg2's); none without a database."""
        return (self.db.backend.driver_error,) if self.db is not None else ()

    def elsewhere(self, start: dt.date | None, end: dt.date | None, local: Sequence[SessionKey],
                  found: tuple[list[list[SessionKey]], list[tuple[str, dt.date]]] | None = None
                  ) -> list[SessionKey]:
        """Sessions in the range that the database or a destination holds but local disk does not.

        One query (the Session table) and one folder walk per destination (``found``: what
        ``elsewhere_sources`` returned, when they ran while the source was walked); a destination that
        does not answer adds nothing here (its status shows it hung). A database id is spelled as on
        disk when a destination names it, else with the first strip prefix the participant filter accepts.
        """
        dest_keys, in_db = found if found is not None else self.elsewhere_sources(start, end)
        have = set(local)
        spelled: dict[str, str] = {}  # disk id -> database id, once per participant (not once per session)

        def db_id(pid: str) -> str:
            got = spelled.get(pid)
            if got is None:
                got = spelled[pid] = self.db_participant(pid)
            return got

        have_db = {(db_id(k.participant_id), k.session_date) for k in local}
        out: dict[tuple[str, dt.date], SessionKey] = {}
        for keys in dest_keys:
            for k in keys:
                ident = (db_id(k.participant_id), k.session_date)
                if k not in have and ident not in have_db:
                    out.setdefault(ident, k)
        prefixes = self.backup.filters.participant_prefixes
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
        return sorted(out.values(), key=BY_DATE)

    def elsewhere_sources(self, start: dt.date | None, end: dt.date | None
                          ) -> tuple[list[list[SessionKey]], list[tuple[str, dt.date]]]:
        """What ``elsewhere`` reads: each destination's sessions (a walk) and the Session table's rows."""
        dest_keys: list[list[SessionKey]] = []
        for d in self.destinations:
            try:
                keys, _, _ = filesystem.with_deadline(
                    lambda beat, d=d: self._walk(d.base_path, d.path_structure, start, end, beat),
                    self.timeout, d.base_path)
            except (filesystem.Hung, OSError):
                continue
            dest_keys.append(keys)
        lo, hi = start or MIN_DATE, end or MAX_DATE
        try:
            in_db = self._session_table(lo, hi)
            if self.db is not None and self.settings.imported_rule == "multicamera":
                self._session_rows = (lo, hi, set(in_db))
        except (UserError, *self._driver_errors()):  # the DJ column says why; the disks still show
            in_db = []
        return dest_keys, in_db


def _usable_participant(pid: str, prefixes: Sequence[str]) -> bool:
    """Is a participant folder's name one djtui backs up (its prefix wanted, a name a command can use)?"""
    if not matches_prefix(pid, prefixes):
        return False
    try:
        validate_participant(pid)
    except UserError:
        return False
    return True


def _day(text: str) -> dt.date | None:
    """A YYYYMMDD folder name (the template's regex let only 8 digits through) as a date; None if impossible."""
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def holds_files(path: str | Path) -> bool:
    """Does the folder hold any file (at any depth)? Stops at the first one."""
    try:
        for _root, _dirs, files in os.walk(path):
            if files:
                return True
    except OSError:
        return False
    return False
