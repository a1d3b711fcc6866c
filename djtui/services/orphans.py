"""Find orphans (rows, store objects, files) and clean them through the quarantine.

Foreign keys come from ``information_schema`` (so a renamed foreign key counts like
any other) across every schema on the server, and orphan rows are found with
``NOT EXISTS`` subqueries. Store listings never follow symlinks and list one
schema's objects under ``<schema>/`` (with the slash). A quarantine run re-scans
the source under a lock and acts only on items that are still orphans: files and
objects (untracked, zero-byte, stale) move into the quarantine; rows (orphan rows,
unused ``~external`` rows, unreferenced rows whose object is missing) are deleted in
one transaction that checks each again and writes it whole into a row batch before it
goes (:mod:`djtui.services.row_quarantine`), so ``orphans restore`` can put it back.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import Any

import pymysql

from djtui.config import Config, StoreSettings
from djtui.domain import stores as ds
from djtui.errors import OperationFailed, ReadOnlyError, UserError
from djtui.services import commandlog
from djtui.services.audit import AuditLog, db_user_of
from djtui.services.database import Database
from djtui.services.locks import exclusive
from djtui.services.quarantine import CHUNK, Quarantine
from djtui.services.row_quarantine import RAW, RowBatch, restore_rows
from djtui.services.testhook import pause_between_items

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
FETCH_BATCH = 20_000  # rows per fetch of a streamed read; a cancel is noticed between batches


class ScanCancelled(Exception):
    """A scan stopped because its caller asked (a key, or the screen was left): nothing is half-done."""


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class SourceInfo:
    name: str
    kind: str  # table | external | store | dir


@dataclass(frozen=True)
class ScanResult:
    source: SourceInfo
    items: tuple[ds.OrphanItem, ...]
    total: int  # objects/files the source holds (rows for a table source), for the share guard
    root: Path | None = None  # local directory the paths are relative to
    children: tuple[tuple[str, int], ...] = ()  # table sources: (child table, parent rows it references)
    warnings: tuple[str, ...] = ()
    rows: int = 0  # rows of an external table, for the share guard of row deletions

    @property
    def orphans(self) -> int:
        return len(self.items)

    @property
    def bytes(self) -> int:
        return sum(i.size for i in self.items if i.reason != ds.MISSING_OBJECT and i.reason != ds.UNUSED_ROW)


@dataclass(frozen=True)
class ActionResult:
    source: str
    batch_id: str | None
    acted: int
    bytes: int
    skipped: int
    dry_run: bool
    items: tuple[ds.OrphanItem, ...] = ()
    rows: int = 0  # of ``acted``: rows deleted (or, in a dry run, to delete)
    files: int = 0  # of ``acted``: files/objects moved into the quarantine (or to move)
    why_skipped: tuple[tuple[str, int], ...] = ()  # (reason given by the re-check, count)
    reported_only: int = 0  # missing-object rows still referenced: deleting them would break their referrers
    row_batch: str | None = None  # the batch holding the deleted rows whole (``orphans restore`` puts them back)

    def describe(self) -> str:
        """One line for the CLI and the screen: what was (or would be) done."""
        parts = []
        if self.rows or not self.files:
            if self.dry_run:
                parts.append(f"{self.rows} row(s) to delete" + (
                    " (rows are saved in the batch and `djtui orphans restore BATCH` puts them back)"
                    if self.rows else ""))
            elif self.row_batch:
                parts.append(f"{self.rows} row(s) deleted, saved whole in batch {self.row_batch} "
                             f"(`djtui orphans restore {self.row_batch}` puts them back)")
            else:
                parts.append(f"{self.rows} row(s) deleted")
        if self.files:
            where = f" into batch {self.batch_id}" if self.batch_id else ""
            parts.append(f"{self.files} file(s) {'to quarantine' if self.dry_run else 'quarantined' + where}")
        text = ", ".join(parts)
        if self.skipped:
            why = "; ".join(f"{n} {w}" for w, n in self.why_skipped) or "changed since the scan"
            text += f"; {self.skipped} skipped at the re-check ({why})"
        if self.reported_only:
            text += (f"; {self.reported_only} missing object(s) still referenced, reported only "
                     "(re-upload them, or delete the rows that reference them)")
        return text


def _external_row(names: list[str], raw: tuple) -> dict[str, Any]:
    """A ``~external`` row read as the server's bytes, as the audit log shows it."""
    row = dict(zip(names, raw, strict=True))

    def text(v: Any) -> str | None:
        return None if v is None else bytes(v).decode("utf-8", "replace")

    def uid(v: Any) -> str | None:
        return None if v is None else str(uuid.UUID(bytes=bytes(v)))

    return {"hash": uid(row.get("hash")), "size": int(row["size"]) if row.get("size") is not None else None,
            "attachment_name": text(row.get("attachment_name")), "filepath": text(row.get("filepath")),
            "contents_hash": uid(row.get("contents_hash"))}


def never() -> bool:
    return False


def list_files(root: Path, prefix: str = "", exclude: str | None = None,
               cancelled: Callable[[], bool] = never) -> Iterator[ds.StoredObject]:
    """Every regular file under ``root``, named ``<prefix>/<relative path>``, never following a symlink.

    ``exclude`` is a directory (absolute, resolved) not to descend into: the quarantine, when it
    lives inside a scanned tree, must not see its own files as untracked. ``cancelled`` is
    asked every 256 directories; when it says yes the walk raises :class:`ScanCancelled`.
    """
    base = str(root)
    stack = [("", prefix.strip("/"))]
    seen = 0
    while stack:
        seen += 1
        if seen % 256 == 0 and cancelled():
            raise ScanCancelled(str(root))
        rel, name = stack.pop()
        try:
            it = os.scandir(os.path.join(base, rel) if rel else base)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with it:
            for e in it:
                r = f"{rel}/{e.name}" if rel else e.name
                n = f"{name}/{e.name}" if name else e.name
                if e.is_dir(follow_symlinks=False):
                    if exclude is None or os.path.join(base, r) != exclude:
                        stack.append((r, n))
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    yield ds.StoredObject(n, st.st_size, st.st_mtime)


def _branch(fd: int, base: str, rel: str, exclude: str | None, out: ds.LegacyListing, stack: list[str],
            sizes: bool) -> None:
    """A directory above the blob directories: its entries' types come with the listing (no stat)."""
    with os.scandir(fd) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                if exclude is None or os.path.join(base, rel, e.name) != exclude:
                    stack.append(f"{rel}/{e.name}")
            elif e.is_file(follow_symlinks=False):
                out.count += 1
                path = f"{rel}/{e.name}"
                out.others[path] = None
                if sizes and e.stat(follow_symlinks=False).st_size == 0:
                    out.zero.add(path)


def _walk_top(base: str, db: str, top: str, exclude: str | None,
              cancelled: Callable[[], bool], sizes: bool = True) -> ds.LegacyListing:
    """One ``<db>/<top>`` subtree: names by ``listdir``, then one ``lstat`` relative to the directory's
    descriptor per entry (no path lookups, no per-entry objects beyond the name).

    Without ``sizes`` the types come from the directory entries themselves (no ``stat`` at all,
    as ``find -type f`` does): the listing is then blind to empty files.
    """
    if not sizes:
        return _walk_top_types(base, db, top, exclude, cancelled)
    out = ds.LegacyListing()
    stack = [f"{db}/{top}"]
    lstat, is_reg, is_dir = os.lstat, stat.S_ISREG, stat.S_ISDIR
    blob_names, others, zero = out.blob_names, out.others, out.zero
    while stack:
        rel = stack.pop()
        if cancelled():
            raise ScanCancelled(base)
        try:
            fd = os.open(os.path.join(base, rel), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            parts = rel.split("/")
            if len(parts) < 3:
                _branch(fd, base, rel, exclude, out, stack, True)
                continue
            canonical = len(parts) == 3  # <db>/xx/yy: the blob directories
            prefix = parts[1] + parts[2] if canonical else ""
            for name in os.listdir(fd):
                try:
                    st = lstat(name, dir_fd=fd)
                except FileNotFoundError:
                    continue
                mode = st.st_mode
                if is_reg(mode):
                    out.count += 1
                    if canonical and len(name) == 32 and name[:4] == prefix:
                        blob_names.add(name)
                        if not st.st_size:
                            zero.add(f"{rel}/{name}")
                    else:
                        path = f"{rel}/{name}"
                        others[path] = None
                        if not st.st_size:
                            zero.add(path)
                elif is_dir(mode) and (exclude is None or os.path.join(base, rel, name) != exclude):
                    stack.append(f"{rel}/{name}")
        finally:
            os.close(fd)
    return out


def _walk_top_types(base: str, db: str, top: str, exclude: str | None,
                    cancelled: Callable[[], bool]) -> ds.LegacyListing:
    """The walk without sizes: directory entries only, and in the blob directories only names.

    A name of the blob layout in its blob directory is taken as an object without looking at it
    (one ``listdir`` per directory, no call per file); the candidates the set arithmetic leaves
    are looked at afterwards anyway. Any other entry is checked with ``lstat``: directories are
    descended into, regular files are listed, symlinks are never followed.
    """
    out = ds.LegacyListing()
    stack = [f"{db}/{top}"]
    blob_names, others = out.blob_names, out.others
    lstat, is_reg, is_dir = os.lstat, stat.S_ISREG, stat.S_ISDIR
    while stack:
        rel = stack.pop()
        if cancelled():
            raise ScanCancelled(base)
        try:
            fd = os.open(os.path.join(base, rel), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            parts = rel.split("/")
            if len(parts) < 3:
                _branch(fd, base, rel, exclude, out, stack, False)
                continue
            names = os.listdir(fd)
            odd = names
            if len(parts) == 3:  # <db>/xx/yy: the blob directories
                prefix = parts[1] + parts[2]
                good = [n for n in names if len(n) == 32 and n[:4] == prefix]
                blob_names.update(good)
                out.count += len(good)
                odd = [n for n in names if len(n) != 32 or n[:4] != prefix] if len(good) != len(names) else []
            for name in odd:
                try:
                    mode = lstat(name, dir_fd=fd).st_mode
                except FileNotFoundError:
                    continue
                if is_reg(mode):
                    out.count += 1
                    others[f"{rel}/{name}"] = None
                elif is_dir(mode) and (exclude is None or os.path.join(base, rel, name) != exclude):
                    stack.append(f"{rel}/{name}")
        finally:
            os.close(fd)
    return out


def walk_legacy(location: Path, db: str, exclude: str | None = None,
                cancelled: Callable[[], bool] = never, workers: int = 1, sizes: bool = True) -> ds.LegacyListing:
    """List ``<location>/<db>/`` in the compact form, a thread per top-level directory.

    ``scandir`` and ``stat`` release the GIL, so the threads overlap on the kernel's work; the
    size is the only thing read per file (for empty objects), ages only later for the candidates.
    Symlinks are never followed.
    """
    base = str(location)
    root = os.path.join(base, db)
    out = ds.LegacyListing()
    try:
        top = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return out
    dirs = []
    for e in top:
        if e.is_dir(follow_symlinks=False):
            if exclude is None or e.path != exclude:
                dirs.append(e.name)
        elif e.is_file(follow_symlinks=False):
            out.count += 1
            path = f"{db}/{e.name}"
            out.others[path] = None
            if sizes and e.stat(follow_symlinks=False).st_size == 0:
                out.zero.add(path)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="djtui-walk") as pool:
        for part in pool.map(lambda d: _walk_top(base, db, d, exclude, cancelled, sizes), dirs):
            out.count += part.count
            out.blob_names |= part.blob_names
            out.others.update(part.others)
            out.zero |= part.zero
    return out


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

    def check(self) -> None:
        """Raise :class:`ScanCancelled` when the caller asked to stop (between batches of work)."""
        if self.cancelled():
            raise ScanCancelled("scan cancelled")

    # --- discovery ----------------------------------------------------------

    def quarantine(self) -> Quarantine:
        return Quarantine(self.settings.quarantine_dir or self.config.state_dir / "quarantine")

    def _exclude(self) -> str:
        return os.path.realpath(self.quarantine().root)

    def store(self, name: str) -> StoreSettings:
        for s in self.config.stores:
            if s.name == name:
                return s
        raise UserError(f"store {name!r} is not configured", where="stores",
                        hint=f"add `stores: {{{name}: {{protocol: file, location: /path}}}}` to the config")

    def external_tables(self) -> list[tuple[str, str]]:
        """(schema, store) of every DataJoint 0.14 ``~external_<store>`` table on the server."""
        rows = self.db.query(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_name LIKE %s AND table_schema NOT IN %s ORDER BY table_schema, table_name",
            ("~external\\_%", SYSTEM_SCHEMAS))
        return [(s, t[len("~external_"):]) for s, t in rows]

    def sources(self) -> list[SourceInfo]:
        out = [SourceInfo(f"table:{t}", "table") for t in self.settings.tables]
        configured = {s.name for s in self.config.stores}
        out += [SourceInfo(f"external:{s}:{st}", "external") for s, st in self.external_tables() if st in configured]
        out += [SourceInfo(f"store:{s.name}", "store") for s in self.config.stores]
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
        raise UserError(f"no source called {name!r}", where="--source",
                        hint="see `djtui orphans scan` for the source names")

    def scan(self, source: SourceInfo, cancel: threading.Event | None = None, *,
             empty_check: bool = True) -> ScanResult:
        """Scan one source; with ``cancel``, setting the event stops it with :class:`ScanCancelled`.

        ``empty_check=False`` skips reading each object's size in a 0.14 file store (one ``stat``
        per object, most of the cost of a big store): zero-byte objects are then not looked for.
        """
        if cancel is not None:
            self.cancelled = cancel.is_set
        self.empty_check = empty_check
        try:
            return self._scan(source)
        finally:
            self.cancelled = never
            self.empty_check = True

    def _scan(self, source: SourceInfo) -> ScanResult:
        self.check()
        parsed = ds.parse_source(source.name)
        if parsed.kind == "table":
            return self.scan_table(source, *parsed.parts)
        if parsed.kind == "external":
            return self.scan_external(source, *parsed.parts)
        if parsed.kind == "store":
            return self.scan_store_2x(source, parsed.parts[0])
        return self.scan_dir(source, Path(parsed.parts[0]))

    # --- orphan rows ----------------------------------------------------------

    def foreign_keys_to(self, db: str, table: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
        """(child schema, child table, [(child column, parent column)]) for every FK onto db.table."""
        rows = self.db.query(
            "SELECT table_schema, table_name, constraint_name, column_name, referenced_column_name "
            "FROM information_schema.key_column_usage "
            "WHERE referenced_table_schema = %s AND referenced_table_name = %s "
            "ORDER BY table_schema, table_name, constraint_name, ordinal_position", (db, table))
        fks: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        for s, t, c, col, ref in rows:
            fks.setdefault((s, t, c), []).append((col, ref))
        return [(s, t, cols) for (s, t, _c), cols in fks.items()]

    def primary_key(self, db: str, table: str) -> list[str]:
        rows = self.db.query(
            "SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = %s "
            "AND table_name = %s AND constraint_name = 'PRIMARY' ORDER BY ordinal_position", (db, table))
        if not rows:
            exists = self.db.query("SELECT 1 FROM information_schema.tables WHERE table_schema=%s AND table_name=%s",
                                   (db, table))
            if not exists:
                raise UserError(f"table {db}.{table} does not exist", where="orphans.tables",
                                hint="list existing `db.table` names")
            raise UserError(f"table {db}.{table} has no primary key", where="orphans.tables")
        return [r[0] for r in rows]

    def _not_exists(self, fks: list[tuple[str, str, list[tuple[str, str]]]], alias: str = "p") -> str:
        parts = []
        for s, t, cols in fks:
            cond = " AND ".join(f"c.{q(c)} = {alias}.{q(r)}" for c, r in cols)
            parts.append(f"NOT EXISTS (SELECT 1 FROM {q(s)}.{q(t)} c WHERE {cond})")
        return " AND ".join(parts) or "TRUE"

    def scan_table(self, source: SourceInfo, db: str, table: str) -> ScanResult:
        pk = self.primary_key(db, table)
        fks = self.foreign_keys_to(db, table)
        sql = (f"SELECT {', '.join('p.' + q(c) for c in pk)} FROM {q(db)}.{q(table)} p "
               f"WHERE {self._not_exists(fks)}")
        items = tuple(ds.OrphanItem(source.name, ds.ORPHAN_ROW, key=dict(zip(pk, row, strict=True)))
                      for row in self.db.query(sql))
        total = self.db.query(f"SELECT COUNT(*) FROM {q(db)}.{q(table)}")[0][0]
        children = []
        for s, t, cols in fks:
            self.check()
            cond = " AND ".join(f"c.{q(c)} = p.{q(r)}" for c, r in cols)
            n = self.db.query(f"SELECT COUNT(*) FROM {q(db)}.{q(table)} p WHERE EXISTS "
                              f"(SELECT 1 FROM {q(s)}.{q(t)} c WHERE {cond})")[0][0]
            label = f"{s}.{t}({', '.join(c for c, _ in cols)})"
            children.append((label, int(n)))
        warnings = self.blocking_triggers([(db, table), *((s, t) for s, t, _ in fks)])
        return ScanResult(source, items, int(total), children=tuple(children), warnings=warnings)

    def blocking_triggers(self, tables: list[tuple[str, str]]) -> tuple[str, ...]:
        """Triggers that refuse inserts/deletes (``SIGNAL``) on these tables: often left behind by a cleanup."""
        if not tables:
            return ()
        cond = " OR ".join(["(event_object_schema = %s AND event_object_table = %s)"] * len(tables))
        args = [x for pair in tables for x in pair]
        rows = self.db.query(
            "SELECT trigger_schema, trigger_name, event_manipulation, event_object_schema, event_object_table "
            f"FROM information_schema.triggers WHERE ({cond}) AND UPPER(action_statement) LIKE '%%SIGNAL%%'", args)
        return tuple(f"trigger {ts}.{tn} blocks {ev} on {os_}.{ot}; if a cleanup left it behind, drop it"
                     for ts, tn, ev, os_, ot in rows)

    # --- 0.14 external stores -------------------------------------------------

    def scan_external(self, source: SourceInfo, db: str, store_name: str) -> ScanResult:
        """All four kinds of 0.14 orphans of one schema on one store.

        Three reads overlap, each on its own connection or threads: the blob hashes (packed by
        the server with ``GROUP_CONCAT``, so a million rows cost a few packets instead of a
        million Python rows), the ``NOT EXISTS`` scan for unused rows, and the store listing.
        The set arithmetic runs on 32-character names; only the few candidates it leaves are
        looked at again (age, size).
        """
        store = self.store(store_name)
        table = f"~external_{store_name}"
        ext = f"{q(db)}.{q(table)}"
        fks = self.foreign_keys_to(db, table)
        root = Path(store.location) if store.protocol == "file" else None

        def other_rows() -> list[ds.ExternalRow]:
            return [ds.ExternalRow(h, att, fp) for h, att, fp in self._fetch(
                f"SELECT LOWER(HEX(`hash`)), attachment_name, filepath FROM {ext} "
                "WHERE attachment_name IS NOT NULL OR filepath IS NOT NULL")]

        # a row younger than the grace age is no orphan yet: DataJoint inserts it just before the row
        # that references it (the same rule the clean-up re-checks at the moment of action)
        young = ""
        if self._has_column(db, table, "timestamp"):
            cutoff = int(self.now() - self.settings.grace_hours * 3600)
            young = f" AND (e.`timestamp` IS NULL OR e.`timestamp` < FROM_UNIXTIME({cutoff}))"

        def unused_rows() -> dict[str, int]:
            # no materialized temporary table: a probe of the referencing column's index per row is
            # as fast here and does not depend on the server's tmpdir
            return {h: int(n) for h, n in self._fetch(
                f"SELECT LOWER(HEX(e.`hash`)), e.`size` FROM {ext} e WHERE {self._not_exists(fks, 'e')}{young}",
                setup="SET SESSION optimizer_switch = 'materialization=off'")}

        folds = store.legacy_folds

        def listing() -> ds.LegacyListing:
            if store.protocol == "s3" or folds != ds.DEFAULT_SUBFOLDING:
                # the fast walk knows the 2/2 layout only; another subfolding is listed file by file
                out = ds.LegacyListing()
                for o in self._list(store, db):
                    out.add(db, o, folds)
                if store.protocol != "s3":
                    out.zero = {o.path for o in out.details.values() if o.size == 0}
                return out
            return walk_legacy(Path(store.location), db, self._exclude(), self.cancelled, sizes=self.empty_check)

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="djtui-orphans") as pool:
            f_blobs = pool.submit(self._blob_hashes, db, table)
            f_other, f_unused, f_list = pool.submit(other_rows), pool.submit(unused_rows), pool.submit(listing)
            blobs, others, unused, objects = f_blobs.result(), f_other.result(), f_unused.result(), f_list.result()
        self.check()
        extra: dict[str, ds.StoredObject] = {}
        for r in others:
            if r.filepath:
                fp = ds.join(r.filepath)
                if fp not in objects.others:
                    found_obj = self._head(store, fp)
                    if found_obj is not None:
                        extra[fp] = found_obj
        cand = ds.legacy_candidates(db, blobs, others, objects, extra_present=extra, folds=folds)
        now, grace = self.now(), self.settings.grace_hours * 3600

        def detail(path: str) -> ds.StoredObject | None:
            o = objects.details.get(path) or extra.get(path)
            if o is not None or store.protocol == "s3":
                return o or self._head(store, path)
            try:
                st = os.lstat(os.path.join(store.location, path))
            except OSError:
                return None
            if not stat.S_ISREG(st.st_mode):  # a link or a directory where an object should be: not ours
                return None
            return ds.StoredObject(path, st.st_size, st.st_mtime)

        items: list[ds.OrphanItem] = []
        paths = {r.hash: ds.legacy_object_path(db, r.hash, r.attachment_name, r.filepath, folds) for r in others}
        for h, n in unused.items():
            path = paths.get(h) or ds.legacy_blob_path(db, h, folds)
            items.append(ds.OrphanItem(source.name, ds.UNUSED_ROW, path=path, key={"hash": ds.uuid_text(h)},
                                       size=n))
        sizes = self._sizes(ext, [h for h, _ in cand.missing]) if cand.missing else {}
        for h, path in cand.missing:
            items.append(ds.OrphanItem(source.name, ds.MISSING_OBJECT, path=path,
                                       key={"hash": ds.uuid_text(h)}, size=sizes.get(h, 0)))
        for path in cand.zero:
            o = detail(path)
            if o is not None and o.size == 0 and now - o.mtime >= grace:
                items.append(ds.OrphanItem(source.name, ds.ZERO_BYTE, path=path, size=0, mtime=o.mtime))
        for path in cand.untracked:
            o = detail(path)
            if o is not None and now - o.mtime >= grace:  # DataJoint writes the object before the row
                items.append(ds.OrphanItem(source.name, ds.UNTRACKED_OBJECT, path=path, size=o.size,
                                           mtime=o.mtime))
        warnings = self.blocking_triggers([(db, table), *((s, t) for s, t, _ in fks)])
        return ScanResult(source, tuple(items), objects.count, root=root, warnings=warnings, rows=cand.rows)

    def _blob_hashes(self, db: str, table: str) -> set[str]:
        """The 32-hex hashes of the blob rows (no attachment, no filepath), packed by the server.

        One ``GROUP_CONCAT`` per range of the hash space, sized to stay well inside the server's
        ``max_allowed_packet``; a range whose answer comes back cut short is split and asked again.
        """
        full = f"{q(db)}.{q(table)}"
        conn = self.db.connect()
        out: set[str] = set()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@max_allowed_packet, (SELECT table_rows FROM information_schema.tables "
                            "WHERE table_schema = %s AND table_name = %s)", (db, table))
                packet, est = cur.fetchone()
                budget = max(1 << 20, min(int(packet) // 2, 64 << 20))
                cur.execute("SET SESSION group_concat_max_len = %s", (budget,))
                parts = max(1, -(-int(est or 0) * 32 // (budget // 2)))
                step = (1 << 128) // parts
                todo = [(i * step, (i + 1) * step if i < parts - 1 else 1 << 128) for i in range(parts)]
                sql = (f"SELECT COUNT(*), GROUP_CONCAT(LOWER(HEX(`hash`)) SEPARATOR '') FROM {full} "
                       "WHERE attachment_name IS NULL AND filepath IS NULL AND `hash` >= %s")
                while todo:
                    self.check()
                    lo, hi = todo.pop()
                    args: list[Any] = [lo.to_bytes(16, "big")]
                    query = sql
                    if hi < 1 << 128:
                        query += " AND `hash` < %s"
                        args.append(hi.to_bytes(16, "big"))
                    commandlog.record("sql", query, None)
                    cur.execute(query, args)
                    n, packed = cur.fetchone()
                    packed = (packed.decode("ascii") if isinstance(packed, bytes) else packed) or ""
                    if len(packed) != 32 * int(n):  # cut at group_concat_max_len: ask in halves
                        if hi - lo < 2:
                            raise OperationFailed(f"{full}: cannot read the hashes (group_concat_max_len)")
                        mid = (lo + hi) // 2
                        todo += [(lo, mid), (mid, hi)]
                        continue
                    out.update(packed[i:i + 32] for i in range(0, len(packed), 32))
        finally:
            conn.close()
        return out

    def _fetch(self, sql: str, args: Any = None, *, setup: str | None = None) -> list:
        """One streamed read on a connection of its own, closed afterwards (for short-lived scan threads).

        Rows arrive in batches (an unbuffered cursor), so a cancel is noticed between batches and the
        client never holds the whole result twice.
        """
        import pymysql.cursors
        commandlog.record("sql", sql, args)
        conn = self.db.connect()
        out: list = []
        try:
            if setup:
                with conn.cursor() as cur:
                    cur.execute(setup)
            with conn.cursor(pymysql.cursors.SSCursor) as cur:
                cur.execute(sql, args)
                while batch := cur.fetchmany(FETCH_BATCH):
                    out.extend(batch)
                    self.check()
            return out
        finally:
            conn.close()

    def s3(self, store: StoreSettings):
        from djtui.services.s3 import S3Store
        return S3Store(store)

    def _list(self, store: StoreSettings, rel_prefix: str) -> Iterator[ds.StoredObject]:
        """A store's objects under ``<rel_prefix>/`` (the slash keeps ``a`` from listing ``a_v2``)."""
        if store.protocol == "s3":
            return self._checked(self.s3(store).list(rel_prefix.strip("/") + "/"))
        return list_files(Path(store.location) / rel_prefix, rel_prefix, self._exclude(), self.cancelled)

    def _checked(self, objects: Iterable[ds.StoredObject]) -> Iterator[ds.StoredObject]:
        for n, o in enumerate(objects):
            if n % 1000 == 0:
                self.check()
            yield o

    def _head(self, store: StoreSettings, rel: str) -> ds.StoredObject | None:
        if store.protocol == "s3":
            return self.s3(store).head(rel)
        try:
            st = os.lstat(Path(store.location) / rel)
        except OSError:
            return None
        return ds.StoredObject(rel, st.st_size, st.st_mtime)

    def _sizes(self, ext: str, hashes: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for start in range(0, len(hashes), 1000):
            chunk = [bytes.fromhex(h) for h in hashes[start:start + 1000]]
            marks = ", ".join(["%s"] * len(chunk))
            for h, n in self.db.query(f"SELECT LOWER(HEX(`hash`)), `size` FROM {ext} WHERE `hash` IN ({marks})",
                                      chunk):
                out[h] = int(n)
        return out

    # --- 2.x stores -----------------------------------------------------------

    def json_references(self, store_name: str) -> set[str]:
        # MariaDB stores JSON as longtext with a json_valid() check named after the column
        cols = self.db.query(
            "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
            "WHERE c.table_schema NOT IN %s AND (c.data_type = 'json' OR EXISTS (SELECT 1 FROM "
            "information_schema.check_constraints k WHERE k.constraint_schema = c.table_schema "
            "AND k.table_name = c.table_name AND k.constraint_name = c.column_name "
            "AND k.check_clause LIKE 'json_valid%%'))", (SYSTEM_SCHEMAS,))
        values: list[Any] = []
        for s, t, c in cols:
            self.check()
            for (v,) in self.db.query(f"SELECT {q(c)} FROM {q(s)}.{q(t)} WHERE {q(c)} IS NOT NULL"):
                try:
                    values.append(json.loads(v))
                except (TypeError, ValueError):
                    continue
        return ds.referenced_paths_2x(values, store_name)

    def scan_store_2x(self, source: SourceInfo, store_name: str) -> ScanResult:
        """Objects in the store's hash and schema sections (its own ``hash_prefix``/``schema_prefix``)
        that no JSON column names; a sidecar (``<path>.manifest.json``) goes with its object."""
        store = self.store(store_name)
        root = Path(store.location) if store.protocol == "file" else None
        objects: dict[str, ds.StoredObject] = {}
        for prefix in dict.fromkeys((store.hash_prefix, store.schema_prefix)):
            for o in self._list_section(store, prefix):
                objects[o.path] = o
        refs = self.json_references(store_name)
        items = ds.store_2x_orphans(source.name, objects, refs, now=self.now(),
                                    grace_s=self.settings.grace_hours * 3600)
        return ScanResult(source, tuple(items), len(objects), root=root)

    def _list_section(self, store: StoreSettings, prefix: str) -> Iterator[ds.StoredObject]:
        """One section of a 2.x store. An empty prefix (stores written before 2.3.1 put schema-addressed
        objects at ``{schema}/...``) is the location's root without the other sections, the filepath
        section, DataJoint's ``datajoint_store.json`` and djtui's own quarantine."""
        if prefix:
            yield from self._list(store, prefix)
            return
        from djtui.services.s3 import QUARANTINE_PREFIX
        skip = {p for p in (store.hash_prefix, store.schema_prefix, store.filepath_prefix, QUARANTINE_PREFIX) if p}
        if store.protocol == "s3":
            listed: Iterable[ds.StoredObject] = self._checked(self.s3(store).list(""))
        else:
            listed = list_files(Path(store.location), "", self._exclude(), self.cancelled)
        for o in listed:
            top = o.path.split("/", 1)[0]
            if "/" not in o.path or top in skip:
                continue  # root files (datajoint_store.json) are no schema's objects
            yield o

    # --- managed directories --------------------------------------------------

    def scan_dir(self, source: SourceInfo, path: Path) -> ScanResult:
        """Files of a managed directory no row's layout places there, or (temp directories) stale ones."""
        managed = [d for d in self.settings.directories if Path(d.path) == path]
        files = list(list_files(path, exclude=self._exclude(), cancelled=self.cancelled))
        refs: ds.TrackedFiles | None = None
        if managed:
            refs = ds.TrackedFiles()
            for d in managed:
                db, _, table = d.table.partition(".")
                layout = d.layout
                if layout == "auto":
                    layout = ds.SPYGLASS_ANALYSIS if table.lower() == "analysis_nwbfile" else ds.RELATIVE
                exact = self._filepath_places(db, table, d.column, path)
                for (v,) in self.db.query(f"SELECT {q(d.column)} FROM {q(db)}.{q(table)}"):
                    n = ds.normalize_reference(v, str(path))
                    if n:
                        refs.add(n, layout, d.table, exact=exact.get(n))
        found = ds.directory_orphans(source.name, files, refs, now=self.now(),
                                     min_age_s=self.settings.min_file_age_hours * 3600,
                                     temp_max_age_s=self.settings.temp_max_age_days * 86400)
        return ScanResult(source, found.items, found.files, root=path)

    def _filepath_places(self, db: str, table: str, column: str, root: Path) -> dict[str, str]:
        """Column value -> the path (relative to ``root``) a ``filepath@`` column of the same row names.

        Spyglass's AnalysisNwbfile keeps ``analysis_file_abs_path: filepath@analysis``: its ``~external``
        row's ``filepath`` says which of the layout's places the file is at. Used only when that store is
        configured as a file store, so where its paths start is known; otherwise the layout decides.
        """
        fks = self.db.query(
            "SELECT column_name, referenced_table_name FROM information_schema.key_column_usage "
            "WHERE table_schema = %s AND table_name = %s AND referenced_table_schema = %s "
            "AND referenced_table_name LIKE %s", (db, table, db, "~external\\_%"))
        out: dict[str, str] = {}
        base = os.path.normpath(str(root)) + "/"
        for col, ext in fks:
            store = next((s for s in self.config.stores if s.name == ext[len("~external_"):]), None)
            if store is None or store.protocol != "file" or \
                    not self._has_column(db, ext, "filepath"):
                continue
            sql = (f"SELECT t.{q(column)}, e.filepath FROM {q(db)}.{q(table)} t JOIN {q(db)}.{q(ext)} e "
                   f"ON e.`hash` = t.{q(col)} WHERE e.filepath IS NOT NULL")
            for v, fp in self.db.query(sql):
                n = ds.normalize_reference(v, str(root))
                full = os.path.normpath(os.path.join(store.location, str(fp)))
                # a store elsewhere, or a path to another file name, says nothing about this directory's file
                if n and full.startswith(base) and full.rsplit("/", 1)[-1] == n.rsplit("/", 1)[-1]:
                    out.setdefault(n, full[len(base):])
        return out

    # --- acting ---------------------------------------------------------------

    def quarantine_source(self, name: str, *, dry_run: bool = True, max_share: float | None = None,
                          only: Iterable[str] | None = None,
                          reasons: Iterable[str] | None = None) -> ActionResult:
        """Re-scan under a lock, apply the share guard, then delete orphan rows and quarantine files.

        ``only`` limits the run to items named by :attr:`OrphanItem.ref` (or by bare ident, which
        takes every reason of that path/key); ``reasons`` to some reasons. Rows (``orphan-row``,
        ``unused-row``, ``missing-object``) are deleted in one transaction, each re-checked in it;
        files and objects (``untracked-*``, ``zero-byte``, ``stale-temp``) go to the quarantine.
        """
        if not dry_run:
            self._writable("orphans quarantine")
        source = self.resolve(name)
        share = self.settings.max_share if max_share is None else max_share
        wanted = set(only) if only is not None else None
        kinds = set(reasons) if reasons is not None else None
        if kinds is not None and not kinds <= set(ds.REASONS):
            bad = sorted(kinds - set(ds.REASONS))
            raise UserError(f"unknown reason(s): {', '.join(bad)}", where="--reason",
                            hint="one of " + ", ".join(ds.REASONS))
        with exclusive(self.config.state_dir, f"orphans:{source.name}", purpose="orphans quarantine"):
            # a run that cannot act on empty objects need not read every object's size
            result = self.scan(source, empty_check=kinds is None or ds.ZERO_BYTE in kinds)
            acting = [i for i in result.items if i.reason in ds.ACTIONABLE
                      and (kinds is None or i.reason in kinds)
                      and (wanted is None or i.ref in wanted or i.ident in wanted)]
            rows = [i for i in acting if i.reason in ds.ROW_REASONS]
            # a missing object's row that is still referenced cannot go: the rows naming it would break
            # (counted over the whole re-scan, not only the chosen refs: a confirmed run restricted to a preview's
            # refs reports the same referenced rows as the preview did)
            unused = {i.ident for i in result.items if i.reason in (ds.UNUSED_ROW, ds.ORPHAN_ROW)}
            referenced = {i.ident for i in result.items if i.reason == ds.MISSING_OBJECT
                          and (kinds is None or i.reason in kinds) and i.ident not in unused}
            rows = [i for i in rows if i.ident not in referenced]
            acting = [i for i in acting if i.reason in ds.FILE_REASONS or i.ident not in referenced]
            files = [i for i in acting if i.reason in ds.FILE_REASONS]
            n_rows = len({i.ident for i in rows})  # an unused row may also be missing its object
            rows_total = result.total if source.kind == "table" else result.rows
            for what, n, total in (("rows", n_rows, rows_total), ("files", len(files), result.total)):
                if ds.exceeds_share(n, total, share):
                    raise UserError(
                        f"{source.name}: {n} of {total} {what} ({n / max(total, 1):.0%}) would be removed, "
                        f"more than the allowed {share:.0%}",
                        where="orphans.max_share",
                        hint="check the configuration (a wrong store location or table makes everything look "
                             "orphaned); pass --max-share to override")
            nbytes = sum(i.size for i in files)
            # items chosen from an earlier scan that the re-scan no longer calls orphans are kept
            why: dict[str, int] = {}
            if wanted is not None:
                still = {i.ref for i in acting} | {i.ident for i in acting}
                vanished = len([w for w in wanted if w not in still])
                if vanished:
                    why["no longer an orphan at the re-scan"] = vanished
            if dry_run or not acting:
                return ActionResult(source.name, None, n_rows + len(files), nbytes, sum(why.values()), dry_run,
                                    tuple(acting), rows=n_rows, files=len(files), reported_only=len(referenced),
                                    why_skipped=tuple(sorted(why.items())))
            deleted, row_skips, row_batch = 0, {}, None
            if rows and source.kind == "table":
                deleted, row_skips, row_batch = self._delete_rows(source, rows)
            elif rows:
                deleted, row_skips, row_batch = self._delete_external_rows(source, rows)
            batch_id, moved, moved_bytes, file_skips = None, 0, 0, {}
            if files:
                batch_id, moved, moved_bytes, file_skips = self._quarantine_files(source, result, files)
            for k, v in (*row_skips.items(), *file_skips.items()):
                why[k] = why.get(k, 0) + v
            skipped = n_rows - deleted + len(files) - moved + why.get("no longer an orphan at the re-scan", 0)
            return ActionResult(source.name, batch_id, deleted + moved, moved_bytes, skipped, False,
                                tuple(acting), rows=deleted, files=moved, why_skipped=tuple(sorted(why.items())),
                                reported_only=len(referenced), row_batch=row_batch)

    def _quarantine_files(self, source: SourceInfo, result: ScanResult,
                          acting: list[ds.OrphanItem]) -> tuple[str, int, int, dict[str, int]]:
        parsed = ds.parse_source(source.name)
        store = self.store(parsed.parts[-1]) if parsed.kind in ("external", "store") else None
        by_path = {i.path: i for i in acting}
        grace = (self.settings.grace_hours if source.kind in ("external", "store")
                 else self.settings.min_file_age_hours) * 3600

        def verify(rel: str, st: os.stat_result | ds.StoredObject) -> str | None:
            item = by_path[rel]
            mtime = st.mtime if isinstance(st, ds.StoredObject) else st.st_mtime
            size = st.size if isinstance(st, ds.StoredObject) else st.st_size
            if item.mtime is not None and (mtime != item.mtime or size != item.size):
                return "changed since the scan"
            if item.reason == ds.ZERO_BYTE and size != 0:
                return "no longer empty"
            if item.reason != ds.STALE_TEMP and self.now() - mtime < grace:
                return "younger than the grace age"
            return None

        with self.audit.action("orphans-quarantine", target=source.name, db_user=db_user_of(self.db),
                               items=len(acting),
                               bytes=sum(i.size for i in acting),
                               reasons=sorted({i.reason for i in acting})) as rec:
            moves = ((i.path, i.reason, verify) for i in by_path.values() if i.path)
            if store is not None and store.protocol == "s3":
                batch_id, moved = self.quarantine().move_in_s3(source.name, self.s3(store), moves)
            else:
                assert result.root is not None
                batch_id, moved = self.quarantine().move_in(source.name, result.root, moves)
            rec.outcome("ok", batch=batch_id, moved=len(moved))
        why: dict[str, int] = {}
        try:
            for sk in self.quarantine().read_manifest(batch_id).get("skipped", []):
                why[sk["why"]] = why.get(sk["why"], 0) + 1
        except UserError:
            pass
        return batch_id, len(moved), sum(e["size"] for e in moved), why

    def _delete_rows(self, source: SourceInfo, acting: list[ds.OrphanItem]) -> tuple[int, dict[str, int], str]:
        """Delete orphan rows of a table in one transaction, each kept whole in a row batch first.

        Per chunk: the rows still orphaned are locked and read whole (``SELECT ... FOR UPDATE``, the
        re-check), written to the batch (fsynced), then deleted by exactly those keys; a count that
        differs from what was captured rolls everything back.
        """
        db, table = ds.parse_source(source.name).parts
        pk = self.primary_key(db, table)
        fks = self.foreign_keys_to(db, table)
        # single-table DELETE without an alias (MariaDB < 11.6 allows none), so columns are fully qualified
        full = f"{q(db)}.{q(table)}"
        cond = " AND ".join(f"{full}.{q(c)} = %s" for c in pk)
        sql = f"DELETE FROM {full} WHERE {cond} AND {self._not_exists(fks, full)}"
        conn = self.db.connect(autocommit=False, **RAW)
        deleted = 0
        committing = False
        batch: RowBatch | None = None
        try:
            self.quarantine().root.mkdir(parents=True, exist_ok=True)
            batch = RowBatch(self.quarantine(), source.name, db, table, conn)
            sel = batch.select_sql(f"{cond} AND {self._not_exists(fks, full)} FOR UPDATE")
            with self.audit.action("orphans-delete-rows", target=source.name, db_user=db_user_of(self.db),
                                   rows=len(acting), batch=batch.batch_id,
                                   keys=[i.to_json()["key"] for i in acting[:1000]]) as rec:
                with conn.cursor() as cur:
                    conn.begin()
                    for start in range(0, len(acting), CHUNK):
                        found, keys = [], []
                        for n, item in enumerate(acting[start:start + CHUNK]):
                            if n or start:
                                pause_between_items()
                            args = [item.key[c] for c in pk]  # type: ignore[index]
                            commandlog.record("sql", sel, args)
                            cur.execute(sel, args)
                            row = cur.fetchone()
                            if row is not None:
                                found.append(row)
                                keys.append(args)
                        batch.write_ahead(found, ds.ORPHAN_ROW)  # on disk before any of them is deleted
                        for args in keys:
                            commandlog.record("sql", sql, args)
                            n_del = cur.execute(sql, args)
                            if n_del != 1:  # cannot happen under the row locks; never commit a surprise
                                raise OperationFailed(f"{full}: {n_del} rows deleted for a key locked and "
                                                      "captured as one row; rolled back")
                            deleted += 1
                    committing = True
                    conn.commit()
                batch.finish("done", deleted=deleted)
                rec.outcome("ok", deleted=deleted, batch=batch.batch_id)
        except pymysql.err.MySQLError as exc:
            # one transaction: a dropped connection (KILL, restart) rolls the whole batch back
            with contextlib.suppress(Exception):
                conn.rollback()
            what = "the outcome of COMMIT is unknown: run the scan again" if committing else \
                "the transaction was rolled back: no row was deleted"
            if batch is not None and not committing:
                batch.finish("rolled-back", error=str(exc))
            raise OperationFailed(f"{source.name}: deleting orphan rows failed "
                                  f"({exc.args[-1] if exc.args else exc}); {what}") from None
        except BaseException as exc:
            with contextlib.suppress(Exception):
                conn.rollback()
            if batch is not None and not committing:
                batch.finish("rolled-back", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            conn.close()
        skipped = len(acting) - deleted
        return deleted, ({"referenced again": skipped} if skipped else {}), batch.batch_id if deleted else None

    def _has_column(self, db: str, table: str, column: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
                                  "AND table_name = %s AND column_name = %s", (db, table, column)))

    def _delete_external_rows(self, source: SourceInfo,
                              acting: list[ds.OrphanItem]) -> tuple[int, dict[str, int], str | None]:
        """Delete ``~external_<store>`` rows in one transaction, each re-checked inside it.

        A row goes only when no table references it, its ``timestamp`` is past the grace age
        (DataJoint inserts the row before the row that references it) and, when it was chosen
        as a ``missing-object``, its object is still missing. The rows are locked (``FOR UPDATE``)
        and written whole into a row batch before they are deleted: ``orphans restore`` puts them back.
        """
        db, store_name = ds.parse_source(source.name).parts
        store = self.store(store_name)
        table = f"~external_{store_name}"
        full = f"{q(db)}.{q(table)}"
        fks = self.foreign_keys_to(db, table)
        reasons: dict[str, set[str]] = {}
        paths: dict[str, str | None] = {}
        for i in acting:
            h = uuid.UUID(str((i.key or {})["hash"])).hex
            reasons.setdefault(h, set()).add(i.reason)
            paths[h] = i.path
        why: dict[str, int] = {}
        todo = []
        for h, rs in reasons.items():
            # chosen only as missing-object: an object that came back means the row is whole again
            if ds.UNUSED_ROW not in rs and paths[h] and self._head(store, paths[h]) is not None:
                why["object present again"] = why.get("object present again", 0) + 1
                continue
            todo.append(h)
        cond = self._not_exists(fks, full)
        args_tail: list[Any] = []
        if self._has_column(db, table, "timestamp"):
            cond += f" AND {full}.`timestamp` < NOW() - INTERVAL %s SECOND"
            args_tail.append(int(self.settings.grace_hours * 3600))
        conn = self.db.connect(autocommit=False, **RAW)
        deleted: list[tuple] = []
        committing = False
        batch: RowBatch | None = None
        try:
            self.quarantine().root.mkdir(parents=True, exist_ok=True)
            batch = RowBatch(self.quarantine(), source.name, db, table, conn)
            at = batch.names.index("hash")
            with self.audit.action("orphans-delete-rows", target=source.name, db_user=db_user_of(self.db),
                                   table=f"{db}.{table}", batch=batch.batch_id,
                                   rows=len(todo), hashes=[str(uuid.UUID(h)) for h in todo[:1000]]) as rec:
                with conn.cursor() as cur:
                    conn.begin()
                    for start in range(0, len(todo), 1000):
                        chunk = [uuid.UUID(h).bytes for h in todo[start:start + 1000]]
                        marks = ", ".join(["%s"] * len(chunk))
                        sel = batch.select_sql(f"`hash` IN ({marks}) AND {cond} FOR UPDATE")
                        commandlog.record("sql", sel, None)
                        cur.execute(sel, [*chunk, *args_tail])
                        found = list(cur.fetchall())
                        if not found:
                            continue
                        # the locked rows, whole, go to the batch (on disk) and to the audit log before they are deleted
                        self.audit.write({"event": "detail", "id": rec.action_id, "action": rec.action,
                                          "batch": batch.batch_id,
                                          "rows": [_external_row(batch.names, r) for r in found]})
                        batch.write_ahead(found, ["+".join(sorted(reasons[bytes(r[at]).hex()])) for r in found])
                        marks = ", ".join(["%s"] * len(found))
                        dele = f"DELETE FROM {full} WHERE `hash` IN ({marks}) AND {cond}"
                        commandlog.record("sql", dele, None)
                        n = cur.execute(dele, [*(bytes(r[at]) for r in found), *args_tail])
                        if n != len(found):  # cannot happen under the row locks; never commit a surprise
                            raise OperationFailed(f"{full}: {n} rows deleted where {len(found)} were locked; "
                                                  "rolled back")
                        deleted.extend(found)
                    committing = True
                    conn.commit()
                batch.finish("done", deleted=len(deleted))
                rec.outcome("ok", deleted=len(deleted), batch=batch.batch_id)
        except pymysql.err.MySQLError as exc:
            # one transaction: a dropped connection (KILL, restart) rolls the whole batch back
            with contextlib.suppress(Exception):
                conn.rollback()
            what = "the outcome of COMMIT is unknown: run the scan again" if committing else \
                "the transaction was rolled back: no row was deleted"
            if batch is not None and not committing:
                batch.finish("rolled-back", error=str(exc))
            raise OperationFailed(f"{source.name}: deleting unused rows failed "
                                  f"({exc.args[-1] if exc.args else exc}); {what}") from None
        except BaseException as exc:
            with contextlib.suppress(Exception):
                conn.rollback()
            if batch is not None and not committing:
                batch.finish("rolled-back", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            conn.close()
        rest = len(todo) - len(deleted)
        if rest:
            why["referenced again or younger than the grace age"] = rest
        return len(deleted), why, batch.batch_id if deleted else None

    def _writable(self, action: str) -> None:
        """The service refuses writes on its own too, whatever the caller forgot."""
        if self.config.readonly or self.db.readonly:
            raise ReadOnlyError(action)

    def batch_store(self, manifest: dict, cleaner_runs: Iterable[ds.CleanerRun] = ()) -> StoreSettings:
        """The S3 store a batch lives on: where from its manifest, the keys from the config's store of that
        name and place, or from a DataJoint-Cleaner run on the same endpoint and bucket."""
        name = manifest.get("store") or "?"
        spec = manifest.get("store_spec")
        if not spec:  # a batch made before manifests said where: only the config can tell
            return self.store(name)
        place = StoreSettings(name=name, protocol="s3", location=str(spec.get("location") or ""),
                              endpoint=spec.get("endpoint"), bucket=spec.get("bucket"),
                              secure=bool(spec.get("secure", False)))
        for s in self.config.stores:
            if s.name == name and s.protocol == "s3" and (s.endpoint, s.bucket) == (place.endpoint, place.bucket):
                return dc_replace(place, access_key=s.access_key, secret_key=s.secret_key)
        from djtui.config import Secret
        for run in cleaner_runs:
            if (run.endpoint, run.bucket) == (place.endpoint, place.bucket):
                return dc_replace(place, access_key=Secret(run.access_key), secret_key=Secret(run.secret_key))
        raise UserError(
            f"batch {manifest.get('batch')} lives on s3://{place.bucket}/{place.location} at {place.endpoint} "
            f"(store {name!r}), and no keys for it were given", where="orphans restore",
            hint="give the DataJoint-Cleaner TOML that made it again (`--cleaner-config FILE`), or add "
                 f"`stores: {{{name}: {{protocol: s3, endpoint: {place.endpoint}, bucket: {place.bucket}, "
                 f"location: {place.location}, access_key: ..., secret_key: ...}}}}` to the config")

    def restore(self, batch_id: str, *, cleaner_runs: Iterable[ds.CleanerRun] = (),
                skip_existing: bool = False) -> list[dict]:
        """Put a batch back: files where they were, rows into their table (see :mod:`row_quarantine`).

        A row batch whose keys exist again with other contents is refused as a whole unless
        ``skip_existing``; then those rows stay as they are now and the others go back.
        """
        self._writable("orphans restore")
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
            s3 = self.s3(self.batch_store(manifest, runs)) if manifest.get("backend") == "s3" else None
            restored = qr.restore(batch_id, s3=s3)
            rec.outcome("ok", restored=len(restored))
        return restored

    def purge(self, older_than_days: float | None = None) -> list:
        self._writable("orphans purge")
        days = self.settings.purge_after_days if older_than_days is None else older_than_days
        with exclusive(self.config.state_dir, "orphans-quarantine", purpose="orphans purge"), \
                self.audit.action("orphans-purge", target=f"quarantine batches older than {days:g} days",
                                  older_than_days=days) as rec:
            purged = self.quarantine().purge(days, now=self.now(), s3_for=lambda m: self.s3(self.batch_store(m)))
            rec.outcome("ok", batches=[b.batch_id for b in purged])
        return purged


def load_cleaner_runs(path: Path, warn: Callable[[str], None] | None = None) -> list[ds.CleanerRun]:
    """Read a DataJoint-Cleaner TOML file; its passwords and keys are registered as secrets at once.

    Keys djtui does not read are passed to ``warn`` (a format djtui does not own: never an error)."""
    import tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(f"no such file: {path}", where="--cleaner-config") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read the cleaner config: {exc}", where=str(path),
                        hint="it must be TOML with database_servers, storage_servers.minio and [[cleaning_runs]]") \
            from None
    try:
        runs = ds.parse_cleaner_config(data)
    except ValueError as exc:
        raise UserError(str(exc), where=str(path)) from None
    if warn is not None:
        for w in ds.cleaner_config_warnings(data):
            warn(f"{path}: {w}")
    for r in runs:
        commandlog.add_secret(r.db_password)
        commandlog.add_secret(r.secret_key)
    return runs


def cleaner_service(config: Config, run: ds.CleanerRun) -> OrphanService:
    """An OrphanService pointed at one cleaning run's database server and MinIO store."""
    from dataclasses import replace as dc_replace

    from djtui.config import Secret
    from djtui.services.database import ConnectionSettings
    settings = ConnectionSettings(host=run.db_host, port=run.db_port, socket=run.db_socket, user=run.db_user,
                                  password=Secret(run.db_password),
                                  sources=(f"cleaner config: database_servers.{run.database_server}",))
    store = StoreSettings(name=run.store, protocol="s3", location=run.location, endpoint=run.endpoint,
                          bucket=run.bucket, access_key=Secret(run.access_key), secret_key=Secret(run.secret_key),
                          secure=run.secure)
    others = tuple(s for s in config.stores if s.name != run.store)
    return OrphanService(dc_replace(config, stores=(*others, store)), Database(settings, readonly=config.readonly))
