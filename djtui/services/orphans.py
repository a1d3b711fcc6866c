"""Find orphans (rows, store objects, files) and clean them through the quarantine.

Foreign keys come from ``information_schema`` (so a renamed foreign key counts like
any other) across every schema on the server, and orphan rows are found with
``NOT EXISTS`` subqueries. Store listings never follow symlinks and list one
schema's objects under ``<schema>/`` (with the slash). A quarantine run re-scans
the source under a lock and acts only on items that are still orphans.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from djtui.config import Config, StoreSettings
from djtui.domain import stores as ds
from djtui.errors import ReadOnlyError, UserError
from djtui.services import commandlog
from djtui.services.audit import AuditLog
from djtui.services.database import Database
from djtui.services.locks import exclusive
from djtui.services.quarantine import Quarantine

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")


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
    total: int  # rows/objects/files the source holds, for the share guard
    root: Path | None = None  # local directory the paths are relative to
    children: tuple[tuple[str, int], ...] = ()  # table sources: (child table, parent rows it references)
    warnings: tuple[str, ...] = ()

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


def list_files(root: Path, prefix: str = "", exclude: str | None = None) -> Iterator[ds.StoredObject]:
    """Every regular file under ``root``, named ``<prefix>/<relative path>``, never following a symlink.

    ``exclude`` is a directory (absolute, resolved) not to descend into: the quarantine, when it
    lives inside a scanned tree, must not see its own files as untracked.
    """
    base = str(root)
    stack = [("", prefix.strip("/"))]
    while stack:
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


class OrphanService:
    """Scans sources and acts on them; every call is blocking (run it through ``Database.run``)."""

    def __init__(self, config: Config, db: Database, *, audit: AuditLog | None = None,
                 now: Callable[[], float] = time.time):
        self.config = config
        self.db = db
        self.audit = audit or AuditLog(config.audit_log)
        self.now = now
        self.settings = config.orphans

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

    def scan(self, source: SourceInfo) -> ScanResult:
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
        store = self.store(store_name)
        ext = f"{q(db)}.{q('~external_' + store_name)}"
        fks = self.foreign_keys_to(db, f"~external_{store_name}")
        root = Path(store.location) if store.protocol == "file" else None

        def blob_rows() -> list[ds.ExternalRow]:
            # one narrow column for the many blob rows; attachments and filepaths separately
            out = [ds.ExternalRow(h) for (h,) in self._fetch(
                f"SELECT LOWER(HEX(`hash`)) FROM {ext} WHERE attachment_name IS NULL AND filepath IS NULL")]
            out += [ds.ExternalRow(h, att, fp) for h, att, fp in self._fetch(
                f"SELECT LOWER(HEX(`hash`)), attachment_name, filepath FROM {ext} "
                "WHERE attachment_name IS NOT NULL OR filepath IS NOT NULL")]
            return out

        def unused_rows() -> dict[str, int]:
            return {h: int(n) for h, n in self._fetch(
                f"SELECT LOWER(HEX(e.`hash`)), e.`size` FROM {ext} e WHERE {self._not_exists(fks, 'e')}")}

        def listing() -> dict[str, ds.StoredObject]:
            return {o.path: o for o in self._list(store, db)}

        # the server's NOT EXISTS scan, the row fetch and the store listing overlap (each thread
        # has its own connection): the scan costs about the slowest of the three, not their sum
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="djtui-orphans") as pool:
            f_rows, f_unused, f_list = pool.submit(blob_rows), pool.submit(unused_rows), pool.submit(listing)
            rows, unused, objects = f_rows.result(), f_unused.result(), f_list.result()
        extra: dict[str, ds.StoredObject] = {}
        for r in rows:
            if r.filepath:
                p = ds.join(r.filepath)
                if p not in objects:
                    found_obj = self._head(store, p)
                    if found_obj is not None:
                        extra[p] = found_obj
        found = ds.legacy_store_orphans(source.name, db, rows, unused, objects, now=self.now(),
                                        grace_s=self.settings.grace_hours * 3600, extra_present=extra)
        items = found.items
        missing = [uuid.UUID(i.key["hash"]).hex for i in items if i.reason == ds.MISSING_OBJECT and i.key]
        if missing:  # the recorded size of a missing object, fetched only for the few that are missing
            sizes = self._sizes(ext, missing)
            items = tuple(replace(i, size=sizes.get(uuid.UUID(i.key["hash"]).hex, 0))
                          if i.reason == ds.MISSING_OBJECT and i.key else i for i in items)
        warnings = self.blocking_triggers([(db, f"~external_{store_name}"), *((s, t) for s, t, _ in fks)])
        return ScanResult(source, items, max(found.objects, found.rows), root=root, warnings=warnings)

    def _fetch(self, sql: str, args: Any = None) -> list:
        """One read on a connection of its own, closed afterwards (for short-lived scan threads)."""
        commandlog.record("sql", sql, args)
        conn = self.db.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def s3(self, store: StoreSettings):
        from djtui.services.s3 import S3Store
        return S3Store(store)

    def _list(self, store: StoreSettings, rel_prefix: str) -> Iterator[ds.StoredObject]:
        """A store's objects under ``<rel_prefix>/`` (the slash keeps ``a`` from listing ``a_v2``)."""
        if store.protocol == "s3":
            return self.s3(store).list(rel_prefix.strip("/") + "/")
        return list_files(Path(store.location) / rel_prefix, rel_prefix, self._exclude())

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
            chunk = [uuid.UUID(h).bytes for h in hashes[start:start + 1000]]
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
            for (v,) in self.db.query(f"SELECT {q(c)} FROM {q(s)}.{q(t)} WHERE {q(c)} IS NOT NULL"):
                try:
                    values.append(json.loads(v))
                except (TypeError, ValueError):
                    continue
        return ds.referenced_paths_2x(values, store_name)

    def scan_store_2x(self, source: SourceInfo, store_name: str) -> ScanResult:
        store = self.store(store_name)
        root = Path(store.location) if store.protocol == "file" else None
        objects: dict[str, ds.StoredObject] = {}
        for prefix in (ds.HASH_PREFIX, ds.SCHEMA_PREFIX):
            for o in self._list(store, prefix):
                objects[o.path] = o
        refs = self.json_references(store_name)
        items = ds.store_2x_orphans(source.name, objects, refs, now=self.now(),
                                    grace_s=self.settings.grace_hours * 3600)
        return ScanResult(source, tuple(items), len(objects), root=root)

    # --- managed directories --------------------------------------------------

    def scan_dir(self, source: SourceInfo, path: Path) -> ScanResult:
        managed = [d for d in self.settings.directories if Path(d.path) == path]
        files = list(list_files(path, exclude=self._exclude()))
        if managed:
            refs: set[str] | None = set()
            for d in managed:
                db, _, table = d.table.partition(".")
                for (v,) in self.db.query(f"SELECT {q(d.column)} FROM {q(db)}.{q(table)}"):
                    n = ds.normalize_reference(v, str(path))
                    if n:
                        refs.add(n)  # type: ignore[union-attr]
        else:
            refs = None
        found = ds.directory_orphans(source.name, files, refs, now=self.now(),
                                     min_age_s=self.settings.min_file_age_hours * 3600,
                                     temp_max_age_s=self.settings.temp_max_age_days * 86400)
        return ScanResult(source, found.items, found.files, root=path)

    # --- acting ---------------------------------------------------------------

    def quarantine_source(self, name: str, *, dry_run: bool = True, max_share: float | None = None,
                          only: Iterable[str] | None = None) -> ActionResult:
        """Re-scan under a lock, apply the share guard, then quarantine files / delete orphan rows."""
        if not dry_run:
            self._writable("orphans quarantine")
        source = self.resolve(name)
        share = self.settings.max_share if max_share is None else max_share
        with exclusive(self.config.state_dir, f"orphans:{source.name}", purpose="orphans quarantine"):
            result = self.scan(source)
            wanted = set(only) if only is not None else None
            acting = [i for i in result.items if i.reason in ds.ACTIONABLE and (wanted is None or i.ident in wanted)]
            if ds.exceeds_share(len(acting), result.total, share):
                raise UserError(
                    f"{source.name}: {len(acting)} of {result.total} items ({len(acting) / max(result.total, 1):.0%}) "
                    f"would be removed, more than the allowed {share:.0%}",
                    where="orphans.max_share",
                    hint="check the configuration (a wrong store location or table makes everything look orphaned); "
                         "pass --max-share to override")
            nbytes = sum(i.size for i in acting)
            if dry_run or not acting:
                return ActionResult(source.name, None, len(acting), nbytes, 0, True, tuple(acting))
            if source.kind == "table":
                return self._delete_rows(source, acting)
            return self._quarantine_files(source, result, acting)

    def _quarantine_files(self, source: SourceInfo, result: ScanResult, acting: list[ds.OrphanItem]) -> ActionResult:
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
            if item.reason != ds.STALE_TEMP and self.now() - mtime < grace:
                return "younger than the grace age"
            return None

        with self.audit.action("orphans-quarantine", source=source.name, items=len(acting),
                               bytes=sum(i.size for i in acting)) as rec:
            moves = ((i.path, i.reason, verify) for i in acting if i.path)
            if store is not None and store.protocol == "s3":
                batch_id, moved = self.quarantine().move_in_s3(source.name, self.s3(store), moves)
            else:
                assert result.root is not None
                batch_id, moved = self.quarantine().move_in(source.name, result.root, moves)
            rec.outcome("ok", batch=batch_id, moved=len(moved))
        return ActionResult(source.name, batch_id, len(moved), sum(e["size"] for e in moved),
                            len(acting) - len(moved), False, tuple(acting))

    def _delete_rows(self, source: SourceInfo, acting: list[ds.OrphanItem]) -> ActionResult:
        db, table = ds.parse_source(source.name).parts
        pk = self.primary_key(db, table)
        fks = self.foreign_keys_to(db, table)
        # single-table DELETE without an alias (MariaDB < 11.6 allows none), so columns are fully qualified
        full = f"{q(db)}.{q(table)}"
        cond = " AND ".join(f"{full}.{q(c)} = %s" for c in pk)
        sql = f"DELETE FROM {full} WHERE {cond} AND {self._not_exists(fks, full)}"
        conn = self.db.connect(autocommit=False)
        deleted = 0
        try:
            with self.audit.action("orphans-delete-rows", source=source.name, rows=len(acting),
                                   keys=[i.to_json()["key"] for i in acting[:1000]]) as rec:
                with conn.cursor() as cur:
                    conn.begin()
                    for item in acting:
                        args = [item.key[c] for c in pk]  # type: ignore[index]
                        commandlog.record("sql", sql, args)
                        deleted += cur.execute(sql, args)
                    conn.commit()
                rec.outcome("ok", deleted=deleted)
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
        return ActionResult(source.name, None, deleted, 0, len(acting) - deleted, False, tuple(acting))

    def _writable(self, action: str) -> None:
        """The service refuses writes on its own too, whatever the caller forgot."""
        if self.config.readonly or self.db.readonly:
            raise ReadOnlyError(action)

    def restore(self, batch_id: str) -> list[dict]:
        self._writable("orphans restore")
        with exclusive(self.config.state_dir, "orphans-quarantine", purpose="orphans restore"), \
                self.audit.action("orphans-restore", batch=batch_id) as rec:
            qr = self.quarantine()
            manifest = qr.read_manifest(batch_id)
            s3 = self.s3(self.store(manifest["store"])) if manifest.get("backend") == "s3" else None
            restored = qr.restore(batch_id, s3=s3)
            rec.outcome("ok", restored=len(restored))
        return restored

    def purge(self, older_than_days: float | None = None) -> list:
        self._writable("orphans purge")
        days = self.settings.purge_after_days if older_than_days is None else older_than_days
        with exclusive(self.config.state_dir, "orphans-quarantine", purpose="orphans purge"), \
                self.audit.action("orphans-purge", older_than_days=days) as rec:
            purged = self.quarantine().purge(days, now=self.now(), s3_for=lambda name: self.s3(self.store(name)))
            rec.outcome("ok", batches=[b.batch_id for b in purged])
        return purged


def load_cleaner_runs(path: Path) -> list[ds.CleanerRun]:
    """Read a DataJoint-Cleaner TOML file; its passwords and keys are registered as secrets at once."""
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
    for r in runs:
        commandlog.add_secret(r.db_password)
        commandlog.add_secret(r.secret_key)
    return runs


def cleaner_service(config: Config, run: ds.CleanerRun) -> OrphanService:
    """An OrphanService pointed at one cleaning run's database server and MinIO store."""
    from dataclasses import replace as dc_replace

    from djtui.config import Secret
    from djtui.services.database import ConnectionSettings
    host, _, port = run.db_host.partition(":")
    settings = ConnectionSettings(host=host, port=int(port or 3306), user=run.db_user,
                                  password=Secret(run.db_password), sources=("cleaner config",))
    store = StoreSettings(name=run.store, protocol="s3", location=run.location, endpoint=run.endpoint,
                          bucket=run.bucket, access_key=Secret(run.access_key), secret_key=Secret(run.secret_key),
                          secure=run.secure)
    others = tuple(s for s in config.stores if s.name != run.store)
    return OrphanService(dc_replace(config, stores=(*others, store)), Database(settings, readonly=config.readonly))
