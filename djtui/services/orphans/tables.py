"""Orphan rows of a configured table: rows no foreign key of any schema references.

Found with ``NOT EXISTS`` subqueries over every foreign key onto the table; deleted in one
transaction that re-checks each row, locks it and writes it whole into a row batch first.
"""

from __future__ import annotations

from djtui.domain import stores as ds
from djtui.errors import OperationFailed
from djtui.services import commandlog
from djtui.services.audit import db_user_of
from djtui.services.orphans import catalog
from djtui.services.orphans.model import Orphans, ScanResult, SourceInfo
from djtui.services.orphans.rows import RowDeletion
from djtui.services.stores.quarantine import CHUNK
from djtui.services.testhook import pause_between_items


def scan_table(svc: Orphans, source: SourceInfo, db: str, table: str) -> ScanResult:
    """The table's orphan rows, its size, and how many parent rows each child table references."""
    d = svc.db.dialect
    pk = catalog.primary_key(svc.db, db, table)
    fks = catalog.foreign_keys_to(svc.db, db, table)
    full = d.table(db, table)
    sql = (f"SELECT {', '.join('p.' + d.ident(c) for c in pk)} FROM {full} p "
           f"WHERE {catalog.not_exists(d, fks)}")
    items = tuple(ds.OrphanItem(source.name, ds.ORPHAN_ROW, key=dict(zip(pk, row, strict=True)))
                  for row in svc.db.query(sql))
    total = svc.db.query(f"SELECT COUNT(*) FROM {full}")[0][0]
    children = []
    for s, t, cols in fks:
        svc.check()
        cond = " AND ".join(f"c.{d.ident(c)} = p.{d.ident(r)}" for c, r in cols)
        n = svc.db.query(f"SELECT COUNT(*) FROM {full} p WHERE EXISTS "
                         f"(SELECT 1 FROM {d.table(s, t)} c WHERE {cond})")[0][0]
        label = f"{s}.{t}({', '.join(c for c, _ in cols)})"
        children.append((label, int(n)))
    warnings = catalog.blocking_triggers(svc.db, [(db, table), *((s, t) for s, t, _ in fks)])
    return ScanResult(source, items, int(total), children=tuple(children), warnings=warnings)


def delete_rows(svc: Orphans, source: SourceInfo,
                acting: list[ds.OrphanItem]) -> tuple[int, dict[str, int], str | None]:
    """Delete orphan rows of a table in one transaction, each kept whole in a row batch first.

    Per chunk: the rows still orphaned are locked and read whole (``SELECT ... FOR UPDATE``, the
    re-check), written to the batch (fsynced), then deleted by exactly those keys; a count that
    differs from what was captured rolls everything back.
    """
    d = svc.db.dialect
    db, table = ds.parse_source(source.name).parts
    pk = catalog.primary_key(svc.db, db, table)
    fks = catalog.foreign_keys_to(svc.db, db, table)
    # single-table DELETE without an alias (MariaDB < 11.6 allows none), so columns are fully qualified;
    # the same SQL on PostgreSQL (through db.dialect's quoting)
    full = d.table(db, table)
    cond = " AND ".join(f"{full}.{d.ident(c)} = %s" for c in pk)
    sql = f"DELETE FROM {full} WHERE {cond} AND {catalog.not_exists(d, fks, full)}"
    deleted = 0
    with RowDeletion(svc.db, svc.quarantine(), source.name, db, table, "orphan rows") as tx:
        batch, conn = tx.batch, tx.conn
        assert batch is not None
        sel = batch.select_sql(f"{cond} AND {catalog.not_exists(d, fks, full)} FOR UPDATE")
        with svc.audit.action("orphans-delete-rows", target=source.name, db_user=db_user_of(svc.db),
                              rows=len(acting), batch=batch.batch_id,
                              keys=[i.to_json()["key"] for i in acting[:1000]]) as rec:
            with conn.cursor() as cur:
                tx.begin(cur)
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
                        cur.execute(sql, args)
                        n_del = cur.rowcount
                        if n_del != 1:  # cannot happen under the row locks; never commit a surprise
                            raise OperationFailed(f"{full}: {n_del} rows deleted for a key locked and "
                                                  "captured as one row; rolled back")
                        deleted += 1
                tx.commit()
            batch.finish("done", deleted=deleted)
            rec.outcome("ok", deleted=deleted, batch=batch.batch_id)
    skipped = len(acting) - deleted
    return deleted, ({"referenced again": skipped} if skipped else {}), batch.batch_id if deleted else None
