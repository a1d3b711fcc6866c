"""The orphan capability's entry point: which sources a lab has, scanning one, plan -> execute, restore.

:class:`OrphanService` holds what every topic module needs (config, database, audit log, clock,
the caller's cancel flag) and dispatches to them: ``tables`` (orphan rows), ``external`` (0.14
stores), ``store2x`` (2.x stores), ``directories`` (managed and temp directories), ``acting``
(the clean-up under a lock). Every call is blocking: screens run it through ``Database.run``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import TypeVar

from djtui.config import Config, Secret, StoreSettings
from djtui.domain import stores as ds
from djtui.errors import ReadOnlyError, UserError
from djtui.services.audit import AuditLog, db_user_of
from djtui.services.database import Database
from djtui.services.locks import exclusive
from djtui.services.orphans import acting, catalog, directories, external, store2x, tables
from djtui.services.orphans.model import ActionResult, ScanProgress, ScanResult, SourceInfo
from djtui.services.orphans.plan import CleanupPlan, claim, plan_from_scan
from djtui.services.orphans.rows import restore_rows
from djtui.services.stores import Quarantine, ScanCancelled, Store, batch_place, is_remote_batch, never, open_store

_T = TypeVar("_T")


PROGRESS_EVERY_S = 0.1  # a scan's progress is heard at most this often (and once at its end)
COUNT_EVERY = 1000  # objects of a listing between two progress reports


class OrphanService:
    """Scans sources and acts on them; every call is blocking (run it through ``Database.run``)."""

    def __init__(self, config: Config, db: Database, *, audit: AuditLog | None = None,
                 now: Callable[[], float] = time.time):
        self.config = config
        self.db = db
        self.audit = audit or AuditLog(config.audit_log)
        self.now = now
        self.settings = config.orphans
        self.cancelled: Callable[[], bool] = never
        self.empty_check = True
        self._progress: ScanProgress | None = None
        self._on_progress: Callable[[ScanProgress], None] | None = None
        self._progress_lock = threading.Lock()
        self._progress_at = 0.0

    def check(self) -> None:
        """Raise :class:`ScanCancelled` when the caller asked to stop (between batches of work)."""
        if self.cancelled():
            raise ScanCancelled("scan cancelled")

    def progressed(self, *, listed: int | None = None, rows: int | None = None) -> None:
        """Where the running scan is (counts so far, from any of its threads); the caller's ``progress``
        hears it at most every ``PROGRESS_EVERY_S``."""
        hook = self._on_progress
        if hook is None:
            return
        with self._progress_lock:
            p = self._progress
            if p is None:
                return
            p = self._progress = dc_replace(p, listed=p.listed if listed is None else listed,
                                            rows=p.rows if rows is None else rows)
            now = time.monotonic()
            if now - self._progress_at < PROGRESS_EVERY_S:
                return
            self._progress_at = now
        hook(p)

    def counted(self, objects: Iterable[_T]) -> Iterator[_T]:
        """``objects`` as they come, counted as listed (and asked whether to stop) every ``COUNT_EVERY``."""
        n = 0
        for n, o in enumerate(objects, 1):
            if n % COUNT_EVERY == 0:
                self.progressed(listed=n)
            yield o
        self.progressed(listed=n)

    # --- discovery ----------------------------------------------------------

    def quarantine(self) -> Quarantine:
        return Quarantine(self.settings.quarantine_dir or self.config.state_dir / "quarantine")

    def exclude(self) -> str:
        """The quarantine directory, resolved: never listed as part of a scanned tree."""
        return os.path.realpath(self.quarantine().root)

    def store(self, name: str) -> StoreSettings:
        for s in self.config.stores:
            if s.name == name:
                return s
        raise UserError(f"store {name!r} is not configured", where="stores",
                        hint=f"add `stores: {{{name}: {{protocol: file, location: /path}}}}` to the config")

    def open_store(self, settings: StoreSettings) -> Store:
        return open_store(settings, exclude=self.exclude())

    def sources(self) -> list[SourceInfo]:
        """The lab's sources: configured tables; per schema, each 0.14 store it has a ``~external_<store>``
        table for; each configured store that no such table names (a DataJoint 2.x store); directories."""
        out = [SourceInfo(f"table:{t}", "table") for t in self.settings.tables]
        configured = {s.name for s in self.config.stores}
        legacy = catalog.external_tables(self.db)
        out += [SourceInfo(f"external:{s}:{st}", "external") for s, st in legacy if st in configured]
        used_by_014 = {st for _s, st in legacy}
        out += [SourceInfo(f"store:{s.name}", "store") for s in self.config.stores if s.name not in used_by_014]
        seen: set[str] = set()
        for d in self.settings.directories:
            if str(d.path) not in seen:
                seen.add(str(d.path))
                out.append(SourceInfo(f"dir:{d.path}", "dir"))
        for t in self.settings.temp_directories:
            if str(t) not in seen:
                seen.add(str(t))
                out.append(SourceInfo(f"dir:{t}", "dir"))
        return out

    def resolve(self, name: str) -> SourceInfo:
        try:
            parsed = ds.parse_source(name)
        except ValueError as exc:
            raise UserError(str(exc), where="--source", hint="see `djtui orphans scan` for the source names") from None
        for s in self.sources():
            if s.name == parsed.name or (parsed.kind == "dir" and s.kind == "dir"
                                         and Path(s.name[4:]) == Path(parsed.parts[0])):
                return s
        if parsed.kind == "external":
            self.store(parsed.parts[1])
        if parsed.kind == "store":  # asked for by name: a store 0.14 also uses can hold 2.x objects too
            self.store(parsed.parts[0])
            return SourceInfo(parsed.name, "store")
        raise UserError(f"no source called {name!r}", where="--source",
                        hint="see `djtui orphans scan` for the source names")

    # --- scanning -----------------------------------------------------------

    def scan(self, source: SourceInfo, cancel: threading.Event | None = None, *, empty_check: bool = True,
             progress: Callable[[ScanProgress], None] | None = None) -> ScanResult:
        """Scan one source; with ``cancel``, setting the event stops it with :class:`ScanCancelled`.

        ``empty_check=False`` skips reading each object's size in a 0.14 file store (one ``stat``
        per object, most of the cost of a big store): zero-byte objects are then not looked for.
        ``progress`` hears a :class:`ScanProgress` now and then from the scan's threads, and a last
        one (``done``) when it ends.
        """
        if cancel is not None:
            self.cancelled = cancel.is_set
        self.empty_check = empty_check
        self._progress, self._on_progress, self._progress_at = ScanProgress(source.name), progress, 0.0
        try:
            result = self._scan(source)
            # built here in the worker thread, not on the UI's loop: one line per orphan, and what a plan
            # needs of the whole scan
            result.listing  # noqa: B018
            result.referenced_missing  # noqa: B018
            if progress is not None and self._progress is not None:
                progress(self._last_progress(self._progress, result))
            return result
        finally:
            self.cancelled = never
            self.empty_check = True
            self._progress, self._on_progress = None, None

    @staticmethod
    def _last_progress(last: ScanProgress, result: ScanResult) -> ScanProgress:
        """The report at the end: what the result counted (a table source's total is rows, not objects)."""
        if result.source.kind == "table":
            return dc_replace(last, rows=max(last.rows, result.total), done=True)
        return dc_replace(last, listed=max(last.listed, result.total), rows=max(last.rows, result.rows), done=True)

    def _scan(self, source: SourceInfo) -> ScanResult:
        self.check()
        parsed = ds.parse_source(source.name)
        if parsed.kind == "table":
            return tables.scan_table(self, source, *parsed.parts)
        if parsed.kind == "external":
            return external.scan_external(self, source, *parsed.parts)
        if parsed.kind == "store":
            return store2x.scan_store_2x(self, source, parsed.parts[0])
        return directories.scan_dir(self, source, Path(parsed.parts[0]))

    # --- plan -> confirmation -> execute ------------------------------------

    def plan(self, name: str, *, max_share: float | None = None,
             reasons: Iterable[str] | None = None) -> CleanupPlan:
        """A fresh scan under the lock turned into a plan (the CLI's dry run); the guard refuses here."""
        preview = acting.quarantine_source(self, name, dry_run=True, max_share=max_share, reasons=reasons)
        share = self.settings.max_share if max_share is None else max_share
        files = [i for i in preview.items if i.reason in ds.FILE_REASONS]
        return CleanupPlan(self.resolve(name), preview.items, preview.rows, preview.files,
                           sum(i.size for i in files), preview.rows_total, preview.files_total, share,
                           reported_only=preview.reported_only,
                           reasons=tuple(sorted(set(reasons))) if reasons is not None else None, preview=preview)

    def plan_for(self, result: ScanResult, chosen: Iterable[ds.OrphanItem] | None = None) -> CleanupPlan:
        """The plan for a scan in hand (the screen's), for the chosen items or all; no I/O."""
        return plan_from_scan(result, self.settings.max_share, chosen)

    def execute(self, plan: CleanupPlan, *, max_share: float | None = None) -> ActionResult:
        """Run a confirmed plan once: a fresh scan under the lock, acting only on the plan's items
        that are still orphans, under the guard the plan was made with unless ``max_share`` overrides it
        (the share the person typed)."""
        if not claim(plan):
            raise UserError(f"plan {plan.plan_id} of {plan.source.name} was executed already",
                            hint="scan again and confirm a new plan")
        return acting.quarantine_source(self, plan.source.name, dry_run=False, only=plan.refs,
                                        max_share=plan.allowed if max_share is None else max_share,
                                        reasons=plan.reasons)

    def quarantine_source(self, name: str, *, dry_run: bool = True, max_share: float | None = None,
                          only: Iterable[str] | None = None,
                          reasons: Iterable[str] | None = None) -> ActionResult:
        """Re-scan under a lock, apply the share guard, then delete rows and quarantine files
        (see :func:`djtui.services.orphans.acting.quarantine_source`)."""
        return acting.quarantine_source(self, name, dry_run=dry_run, max_share=max_share, only=only,
                                        reasons=reasons)

    # --- the quarantine -------------------------------------------------------

    def writable(self, action: str) -> None:
        """The service refuses writes on its own too, whatever the caller forgot."""
        if self.config.readonly or self.db.readonly:
            raise ReadOnlyError(action)

    def batch_store(self, manifest: dict, cleaner_runs: Iterable[ds.CleanerRun] = ()) -> Store:
        """The remote store a batch lives on: where from its manifest, the keys from the config's store of
        that name and place, or from a DataJoint-Cleaner run on the same endpoint and bucket."""
        name = manifest.get("store") or "?"
        place = batch_place(manifest)
        if place is None:  # a batch made before manifests said where: only the config can tell
            return self.open_store(self.store(name))
        for s in self.config.stores:
            if s.name == name and s.bucket and (s.endpoint, s.bucket) == (place.endpoint, place.bucket):
                return self.open_store(dc_replace(place, access_key=s.access_key, secret_key=s.secret_key))
        for run in cleaner_runs:
            if (run.endpoint, run.bucket) == (place.endpoint, place.bucket):
                return self.open_store(dc_replace(place, access_key=Secret(run.access_key),
                                                  secret_key=Secret(run.secret_key)))
        raise UserError(
            f"batch {manifest.get('batch')} lives on s3://{place.bucket}/{place.location} at {place.endpoint} "
            f"(store {name!r}), and no keys for it were given", where="orphans restore",
            hint="give the DataJoint-Cleaner TOML that made it again (`--cleaner-config FILE`), or add "
                 f"`stores: {{{name}: {{protocol: s3, endpoint: {place.endpoint}, bucket: {place.bucket}, "
                 f"location: {place.location}, access_key: ..., secret_key: ...}}}}` to the config")

    def restore(self, batch_id: str, *, cleaner_runs: Iterable[ds.CleanerRun] = (),
                skip_existing: bool = False) -> list[dict]:
        """Put a batch back: files where they were, rows into their table (see :mod:`.rows`).

        A row batch whose keys exist again with other contents is refused as a whole unless
        ``skip_existing``; then those rows stay as they are now and the others go back.
        """
        self.writable("orphans restore")
        runs = list(cleaner_runs)
        with exclusive(self.config.state_dir, "orphans-quarantine", purpose="orphans restore"), \
                self.audit.action("orphans-restore", target=batch_id, db_user=db_user_of(self.db),
                                  batch=batch_id, skip_existing=skip_existing) as rec:
            qr = self.quarantine()
            manifest = qr.read_manifest(batch_id)
            if manifest.get("backend") == "rows":
                restored, outcome = restore_rows(self.db, qr, batch_id, skip_existing=skip_existing)
                rec.outcome("ok", table=manifest.get("table"), restored=outcome["inserted"],
                            already_present=outcome["already_present"],
                            skipped_existing=outcome["skipped_existing"])
                return restored
            if is_remote_batch(manifest):
                restored = self.batch_store(manifest, runs).restore_from_quarantine(qr, batch_id)
            else:
                restored = qr.restore(batch_id)
            rec.outcome("ok", restored=len(restored))
        return restored

    def purge(self, older_than_days: float | None = None) -> list:
        self.writable("orphans purge")
        days = self.settings.purge_after_days if older_than_days is None else older_than_days
        with exclusive(self.config.state_dir, "orphans-quarantine", purpose="orphans purge"), \
                self.audit.action("orphans-purge", target=f"quarantine batches older than {days:g} days",
                                  older_than_days=days) as rec:
            purged = self.quarantine().purge(days, now=self.now(), store_for=self.batch_store)
            rec.outcome("ok", batches=[b.batch_id for b in purged])
        return purged
