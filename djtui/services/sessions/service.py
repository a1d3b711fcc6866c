"""``SessionService``: the sessions of one lab machine, their paths, and the full status of each.

Discovery (``discovery.py``) and the database check (``imported.py``) are its two halves; here they
meet the destinations. A date range costs one query per table (plus one SQLite query), and the disk
scans of all sessions run in one worker thread per side under a deadline, in parallel with the queries.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from djtui.config import Config, Destination
from djtui.domain.mounts import mount_points, nearest_mount
from djtui.domain.sessions import (
    BY_DATE,
    MOUNT_HUNG,
    MOUNT_MISSING,
    MOUNT_OK,
    ContentMismatch,
    DestinationStatus,
    DjStatus,
    Listing,
    Scan,
    SessionKey,
    SessionStatus,
    VerifyRecord,
    normalize_participant,
    render_path,
    scan_stats,
    standing_mismatches,
)
from djtui.errors import UserError
from djtui.services import filesystem
from djtui.services.database import Database
from djtui.services.sessions.discovery import Discovery, DiscoveryMixin
from djtui.services.sessions.imported import ImportCheckMixin
from djtui.services.sessions.lazy import PathRenderer, ScanListing, collector_paused, drift
from djtui.services.sessions.records import VerifyStore


class SessionService(DiscoveryMixin, ImportCheckMixin):
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
        self.last_discovery = Discovery()  # what the last walk of the source found (odd folders included)
        self._session_rows = None  # (start, end, Session rows) the last range_keys read, for dj_status

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
        """Full status of each key: source scan, DB status and every enabled destination.

        Listings stay as the scanner's text columns (``lazy.ScanListing``): counts, sizes, videos, the
        size comparison and an unchanged verification record are answered without an object per file.
        """
        if not keys:
            return []
        with collector_paused():
            return self._statuses(keys)

    def _statuses(self, keys: Sequence[SessionKey]) -> list[SessionStatus]:
        src_paths = PathRenderer(self.source_base, self.backup.source.path_structure).many(keys)
        with ThreadPoolExecutor(max_workers=2 + len(self.destinations)) as pool:
            f_dj = pool.submit(self.dj_status, keys)
            f_src = pool.submit(self._scan_side, src_paths)
            f_dst = {d.name: pool.submit(self._dest_side, d, keys) for d in self.destinations}
            dj = f_dj.result()
            src, src_err = f_src.result()
            dst = {name: f.result() for name, f in f_dst.items()}
        records = {d.name: self.records.load_many(keys, d.name) for d in self.destinations}
        known = {d.name: self.records.load_mismatches(keys, d.name) for d in self.destinations}
        exts = self.settings.video_extensions
        absent = Scan(False)
        dests = self.destinations
        out = []
        for i, k in enumerate(keys):
            scan = src[i] if src is not None else absent
            listing = ScanListing(scan)
            dstats = tuple(self._dest_status(d, dst[d.name], i, k, scan, listing, records[d.name].get(k),
                                             known[d.name].get(k)) for d in dests)
            if src_err:
                out.append(SessionStatus(k, self.db_participant(k.participant_id), src_paths[i], Listing(False),
                                         DjStatus(False, error=src_err), dstats, 0))
                continue
            out.append(SessionStatus(k, self.db_participant(k.participant_id), src_paths[i], listing,
                                     dj.get(k, DjStatus(False, error="not queried")), dstats,
                                     listing.videos(exts), local=scan.exists))
        return out

    def _dest_status(self, d: Destination, side: tuple[filesystem.MountProbe, list[Scan] | None, list[str]], i: int,
                     k: SessionKey, scan: Scan, listing: Listing, record: VerifyRecord | None,
                     known: Sequence[ContentMismatch] | None) -> DestinationStatus:
        probe, scans, paths = side
        if not probe.ok or scans is None:
            detail, mp = probe.detail, None
            if probe.state == MOUNT_HUNG:
                mp = self.mount_point_of(d)
                detail = f"{probe.path} did not answer within {self.timeout:g} s (stale mount?)"
            return DestinationStatus(d.name, paths[i], mount=probe.state, detail=detail, mount_point=mp)
        ds = scans[i]
        cmp = filesystem.compare_columns(scan, ds) if ds.exists else None
        why = drift(record, scan, listing)
        bad: list[ContentMismatch] = []
        if known:
            rels = [m.rel for m in known]
            bad = standing_mismatches(known, scan_stats(scan, rels), scan_stats(ds, rels))
        if bad:  # the failed content check, not "never verified"
            why = tuple(m.reason() for m in bad) + tuple(x for x in why if x != "never verified")
        return DestinationStatus(d.name, paths[i], MOUNT_OK, ScanListing(ds), cmp, why,
                                 content_differs=tuple(m.rel for m in bad))

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

    def _scan_side(self, paths: list[str]) -> tuple[list[Scan] | None, str | None]:
        try:
            return filesystem.scan_columns(paths, exclude=self.excludes, timeout=self.timeout), None
        except filesystem.Hung as exc:
            return None, str(exc)
        except OSError as exc:
            return None, f"{exc.filename}: {exc.strerror}"

    def _dest_side(self, dest: Destination, keys: Sequence[SessionKey]
                   ) -> tuple[filesystem.MountProbe, list[Scan] | None, list[str]]:
        paths = PathRenderer(dest.base_path, dest.path_structure).many(keys)
        probe = self.probe(dest)
        if not probe.ok:
            return probe, None, paths
        try:
            return probe, filesystem.scan_columns(paths, exclude=self.excludes, timeout=self.timeout), paths
        except filesystem.Hung as exc:
            return filesystem.MountProbe(str(dest.base_path), MOUNT_HUNG, self.timeout, str(exc)), None, paths
        except OSError as exc:
            return filesystem.MountProbe(str(dest.base_path), MOUNT_MISSING, 0.0,
                                         f"{exc.filename}: {exc.strerror}"), None, paths

    def status_range(self, start: dt.date | None = None, end: dt.date | None = None) -> list[SessionStatus]:
        """Local sessions merged with those only the database or a destination holds (``local`` False)."""
        with collector_paused():
            return self.statuses(self.range_keys(start, end))

    def range_keys(self, start: dt.date | None = None, end: dt.date | None = None) -> list[SessionKey]:
        """The source's sessions and those held elsewhere; the destinations' walks and the Session query
        run while the source is walked. Without cyclic collection passes, as ``statuses``: the walks make an
        object per session, and with a screen's 50,000 loaded sessions back in the collector's generations
        (a reload unfreezes them) each full pass walked them all (range_keys 0.6 s -> 2.3 s by the third load)."""
        with collector_paused(), ThreadPoolExecutor(max_workers=1) as pool:
            f_found = pool.submit(self.elsewhere_sources, start, end)
            local = self.discover(start, end)
            found = f_found.result()
            return sorted([*local, *self.elsewhere(start, end, local, found)], key=BY_DATE)

    def status(self, key: SessionKey) -> SessionStatus:
        return self.statuses([key])[0]


def keys_for_batch(service: SessionService, start: dt.date, end: dt.date) -> tuple[list[SessionKey], list[str]]:
    """Sessions in range from the database and the disk; database sessions absent locally are skipped."""
    local = service.discover(start, end)
    local_by_db = {(service.db_participant(k.participant_id), k.session_date): k for k in local}
    skipped = []
    for pid, d in service.db_sessions(start, end):
        if (pid, d) not in local_by_db and SessionKey(pid, d) not in local:
            skipped.append(f"{pid} {d:%Y%m%d}: in the database, not on local disk")
    return local, skipped
