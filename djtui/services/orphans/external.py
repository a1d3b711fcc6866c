"""DataJoint 0.14 external stores: the orphans of one schema on one store, and deleting its unused rows.

A ``~external_<store>`` table lists the store's objects by hash; DataJoint's tables reference
its rows. Four kinds of orphans: rows no table references (``unused-row``), rows whose object
is missing (``missing-object``), objects no row lists (``untracked-object``) and empty objects
(``zero-byte``). :func:`scan_external` is where the store listing and the rows' hashes meet.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from djtui.domain import stores as ds
from djtui.errors import OperationFailed
from djtui.services import commandlog
from djtui.services.audit import db_user_of
from djtui.services.orphans import catalog
from djtui.services.orphans.model import Orphans, ScanResult, SourceInfo
from djtui.services.orphans.reads import fetch
from djtui.services.orphans.rows import RowDeletion
from djtui.services.orphans.streamed import blob_difference
from djtui.services.stores import Store


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


def scan_external(svc: Orphans, source: SourceInfo, db: str, store_name: str) -> ScanResult:
    """All four kinds of 0.14 orphans of one schema on one store.

    Three reads overlap, each on its own connection or threads: the blob hashes (packed by
    the server with ``GROUP_CONCAT``, so a million rows cost a few packets instead of a
    million Python rows), the ``NOT EXISTS`` scan for unused rows, and the store listing.
    The set arithmetic runs on 32-character names; only the few candidates it leaves are
    looked at again (age, size).
    """
    settings = svc.store(store_name)
    store = svc.open_store(settings)
    table = f"~external_{store_name}"
    ext = svc.db.dialect.table(db, table)
    fks = catalog.foreign_keys_to(svc.db, db, table)

    def other_rows() -> list[ds.ExternalRow]:
        return [ds.ExternalRow(h, att, fp) for h, att, fp in fetch(
            svc.db, f"SELECT LOWER(HEX(`hash`)), attachment_name, filepath FROM {ext} "
            "WHERE attachment_name IS NOT NULL OR filepath IS NOT NULL", check=svc.check)]

    # a row younger than the grace age is no orphan yet: DataJoint inserts it just before the row
    # that references it (the same rule the clean-up re-checks at the moment of action)
    young = ""
    if catalog.has_column(svc.db, db, table, "timestamp"):
        cutoff = int(svc.now() - svc.settings.grace_hours * 3600)
        young = f" AND (e.`timestamp` IS NULL OR e.`timestamp` < FROM_UNIXTIME({cutoff}))"

    def unused_rows() -> dict[str, int]:
        # no materialized temporary table: a probe of the referencing column's index per row is
        # as fast here and does not depend on the server's tmpdir
        not_used = catalog.not_exists(svc.db.dialect, fks, "e")
        return {h: int(n) for h, n in fetch(
            svc.db, f"SELECT LOWER(HEX(e.`hash`)), e.`size` FROM {ext} e WHERE {not_used}{young}",
            setup="SET SESSION optimizer_switch = 'materialization=off'", check=svc.check)}

    folds = settings.legacy_folds

    # the blobs (almost all of a store) are compared as two sorted streams in bounded memory; the
    # attachments and filepath objects, and the unused rows, are the few and are read whole
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="djtui-orphans") as pool:
        f_other, f_unused = pool.submit(other_rows), pool.submit(unused_rows)
        diff = blob_difference(svc.db, db, table, store, folds, check=svc.check, cancelled=svc.cancelled,
                               sizes=svc.empty_check,
                               progress=lambda listed, rows: svc.progressed(listed=listed, rows=rows))
        others, unused = f_other.result(), f_unused.result()
    svc.check()
    objects = diff.listing
    extra: dict[str, ds.StoredObject] = {}
    for r in others:
        if r.filepath:
            fp = ds.join(r.filepath)
            if fp not in objects.others:
                found_obj = store.stat(fp)
                if found_obj is not None:
                    extra[fp] = found_obj
    cand = ds.merged_candidates(db, diff.only_listed, diff.only_rows, diff.rows, others, objects,
                                extra_present=extra, folds=folds)
    sizes = row_sizes(svc.db, ext, [h for h, _ in cand.missing]) if cand.missing else {}
    items = _items(svc, source.name, db, folds, store, cand, others, unused, sizes,
                   lambda path: objects.details.get(path) or extra.get(path))
    warnings = catalog.blocking_triggers(svc.db, [(db, table), *((s, t) for s, t, _ in fks)])
    # checked: the objects listed under <db>/ and those found where a filepath row names them
    return ScanResult(source, tuple(items), objects.count + len(extra), root=store.root, warnings=warnings,
                      rows=cand.rows)

def _items(svc: Orphans, source: str, db: str, folds: tuple[int, ...], store: Store,
           cand: ds.LegacyCandidates, others: list[ds.ExternalRow], unused: dict[str, int], sizes: dict[str, int],
           listed: Callable[[str], ds.StoredObject | None]) -> list[ds.OrphanItem]:
    """The orphan items of the candidates the set arithmetic left; only these are looked at again."""
    now, grace = svc.now(), svc.settings.grace_hours * 3600

    def detail(path: str) -> ds.StoredObject | None:
        # a link or a directory where an object should be is not ours (the store's stat says None)
        return listed(path) or store.stat(path)

    items: list[ds.OrphanItem] = []
    paths = {r.hash: ds.legacy_object_path(db, r.hash, r.attachment_name, r.filepath, folds) for r in others}
    for h, n in unused.items():
        path = paths.get(h) or ds.legacy_blob_path(db, h, folds)
        items.append(ds.OrphanItem(source, ds.UNUSED_ROW, path=path, key={"hash": ds.uuid_text(h)}, size=n))
    for h, path in cand.missing:
        items.append(ds.OrphanItem(source, ds.MISSING_OBJECT, path=path,
                                   key={"hash": ds.uuid_text(h)}, size=sizes.get(h, 0)))
    for path in cand.zero:
        o = detail(path)
        if o is not None and o.size == 0 and now - o.mtime >= grace:
            items.append(ds.OrphanItem(source, ds.ZERO_BYTE, path=path, size=0, mtime=o.mtime))
    for path in cand.untracked:
        o = detail(path)
        if o is not None and now - o.mtime >= grace:  # DataJoint writes the object before the row
            items.append(ds.OrphanItem(source, ds.UNTRACKED_OBJECT, path=path, size=o.size, mtime=o.mtime))
    return items


def row_sizes(db: Any, ext: str, hashes: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for start in range(0, len(hashes), 1000):
        chunk = [bytes.fromhex(h) for h in hashes[start:start + 1000]]
        marks = ", ".join(["%s"] * len(chunk))
        for h, n in db.query(f"SELECT LOWER(HEX(`hash`)), `size` FROM {ext} WHERE `hash` IN ({marks})",
                                  chunk):
            out[h] = int(n)
    return out

# --- 2.x stores -----------------------------------------------------------

def delete_external_rows(svc: Orphans, source: SourceInfo,
                          acting: list[ds.OrphanItem]) -> tuple[int, dict[str, int], str | None]:
    """Delete ``~external_<store>`` rows in one transaction, each re-checked inside it.

    A row goes only when no table references it, its ``timestamp`` is past the grace age
    (DataJoint inserts the row before the row that references it) and, when it was chosen
    as a ``missing-object``, its object is still missing. The rows are locked (``FOR UPDATE``)
    and written whole into a row batch before they are deleted: ``orphans restore`` puts them back.
    """
    db, store_name = ds.parse_source(source.name).parts
    store = svc.open_store(svc.store(store_name))
    table = f"~external_{store_name}"
    full = svc.db.dialect.table(db, table)
    fks = catalog.foreign_keys_to(svc.db, db, table)
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
        if ds.UNUSED_ROW not in rs and paths[h] and store.stat(paths[h]) is not None:
            why["object present again"] = why.get("object present again", 0) + 1
            continue
        todo.append(h)
    cond = catalog.not_exists(svc.db.dialect, fks, full)
    args_tail: list[Any] = []
    if catalog.has_column(svc.db, db, table, "timestamp"):
        cond += f" AND {full}.`timestamp` < NOW() - INTERVAL %s SECOND"
        args_tail.append(int(svc.settings.grace_hours * 3600))
    deleted: list[tuple] = []
    with RowDeletion(svc.db, svc.quarantine(), source.name, db, table, "unused rows") as tx:
        batch, conn = tx.batch, tx.conn
        assert batch is not None
        at = batch.names.index("hash")
        with svc.audit.action("orphans-delete-rows", target=source.name, db_user=db_user_of(svc.db),
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
                    svc.audit.write({"event": "detail", "id": rec.action_id, "action": rec.action,
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
                tx.commit()
            batch.finish("done", deleted=len(deleted))
            rec.outcome("ok", deleted=len(deleted), batch=batch.batch_id)
    rest = len(todo) - len(deleted)
    if rest:
        why["referenced again or younger than the grace age"] = rest
    return len(deleted), why, batch.batch_id if deleted else None
