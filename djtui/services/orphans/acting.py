"""Acting on a source: re-scan under a lock, the share guard, then rows deleted and files quarantined.

Rows (``orphan-row``, ``unused-row``, ``missing-object``) are deleted in one transaction, each
re-checked in it and saved whole in a row batch first; files and objects (``untracked-*``,
``zero-byte``, ``stale-temp``) are moved into the quarantine, each re-checked at its move.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from djtui.domain import stores as ds
from djtui.errors import UserError
from djtui.services.audit import db_user_of
from djtui.services.locks import exclusive
from djtui.services.orphans.external import delete_external_rows
from djtui.services.orphans.model import ActionResult, Orphans, ScanResult, SourceInfo
from djtui.services.orphans.plan import select
from djtui.services.orphans.tables import delete_rows
from djtui.services.stores import Store, directory_store


def _check_share(source: SourceInfo, result: ScanResult, n_rows: int, n_files: int, share: float) -> None:
    rows_total = result.total if source.kind == "table" else result.rows
    for what, n, total in (("rows", n_rows, rows_total), ("files", n_files, result.total)):
        if ds.exceeds_share(n, total, share):
            raise UserError(
                f"{source.name}: {n} of {total} {what} ({n / max(total, 1):.0%}) would be removed, "
                f"more than the allowed {share:.0%}",
                where="orphans.max_share",
                hint="check the configuration (a wrong store location or table makes everything look "
                     "orphaned); pass --max-share to override")


def quarantine_source(svc: Orphans, name: str, *, dry_run: bool = True, max_share: float | None = None,
                      only: Iterable[str] | None = None,
                      reasons: Iterable[str] | None = None) -> ActionResult:
    """Re-scan under a lock, apply the share guard, then delete orphan rows and quarantine files.

    ``only`` limits the run to items named by :attr:`OrphanItem.ref` (or by bare ident, which
    takes every reason of that path/key); ``reasons`` to some reasons.
    """
    if not dry_run:
        svc.writable("orphans quarantine")
    source = svc.resolve(name)
    share = svc.settings.max_share if max_share is None else max_share
    wanted = set(only) if only is not None else None
    kinds = set(reasons) if reasons is not None else None
    if kinds is not None and not kinds <= set(ds.REASONS):
        bad = sorted(kinds - set(ds.REASONS))
        raise UserError(f"unknown reason(s): {', '.join(bad)}", where="--reason",
                        hint="one of " + ", ".join(ds.REASONS))
    with exclusive(svc.config.state_dir, f"orphans:{source.name}", purpose="orphans quarantine"):
        # a run that cannot act on empty objects need not read every object's size
        result = svc.scan(source, empty_check=kinds is None or ds.ZERO_BYTE in kinds)
        sel = select(result, kinds=kinds, wanted=wanted)
        acting, n_rows, files = list(sel.items), sel.rows, list(sel.files)
        rows = [i for i in acting if i.reason in ds.ROW_REASONS]
        _check_share(source, result, n_rows, len(files), share)
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
                                tuple(acting), rows=n_rows, files=len(files), reported_only=len(sel.referenced),
                                why_skipped=tuple(sorted(why.items())), files_total=result.total,
                                rows_total=result.total if source.kind == "table" else result.rows)
        deleted, row_skips, row_batch = 0, {}, None
        if rows and source.kind == "table":
            deleted, row_skips, row_batch = delete_rows(svc, source, rows)
        elif rows:
            deleted, row_skips, row_batch = delete_external_rows(svc, source, rows)
        batch_id, moved, moved_bytes, file_skips = None, 0, 0, {}
        if files:
            batch_id, moved, moved_bytes, file_skips = quarantine_files(svc, source, result, files)
        for k, v in (*row_skips.items(), *file_skips.items()):
            why[k] = why.get(k, 0) + v
        skipped = n_rows - deleted + len(files) - moved + why.get("no longer an orphan at the re-scan", 0)
        return ActionResult(source.name, batch_id, deleted + moved, moved_bytes, skipped, False,
                            tuple(acting), rows=deleted, files=moved, why_skipped=tuple(sorted(why.items())),
                            reported_only=len(sel.referenced), row_batch=row_batch)


def _source_store(svc: Orphans, source: SourceInfo, result: ScanResult) -> Store:
    parsed = ds.parse_source(source.name)
    if parsed.kind in ("external", "store"):
        return svc.open_store(svc.store(parsed.parts[-1]))
    assert result.root is not None
    return directory_store(result.root, exclude=svc.exclude())


def quarantine_files(svc: Orphans, source: SourceInfo, result: ScanResult,
                     acting: list[ds.OrphanItem]) -> tuple[str, int, int, dict[str, int]]:
    """Move the files into one batch, each re-checked (unchanged, still empty, past the grace age)."""
    store = _source_store(svc, source, result)
    by_path = {i.path: i for i in acting}
    grace = (svc.settings.grace_hours if source.kind in ("external", "store")
             else svc.settings.min_file_age_hours) * 3600

    def verify(rel: str, st: os.stat_result | ds.StoredObject) -> str | None:
        item = by_path[rel]
        mtime = st.mtime if isinstance(st, ds.StoredObject) else st.st_mtime
        size = st.size if isinstance(st, ds.StoredObject) else st.st_size
        if item.mtime is not None and (mtime != item.mtime or size != item.size):
            return "changed since the scan"
        if item.reason == ds.ZERO_BYTE and size != 0:
            return "no longer empty"
        if item.reason != ds.STALE_TEMP and svc.now() - mtime < grace:
            return "younger than the grace age"
        return None

    with svc.audit.action("orphans-quarantine", target=source.name, db_user=db_user_of(svc.db),
                          items=len(acting),
                          bytes=sum(i.size for i in acting),
                          reasons=sorted({i.reason for i in acting})) as rec:
        moves = ((i.path, i.reason, verify) for i in by_path.values() if i.path)
        batch_id, moved = store.move_to_quarantine(svc.quarantine(), source.name, moves)
        rec.outcome("ok", batch=batch_id, moved=len(moved))
    why: dict[str, int] = {}
    try:
        for sk in svc.quarantine().read_manifest(batch_id).get("skipped", []):
            why[sk["why"]] = why.get(sk["why"], 0) + 1
    except UserError:
        pass
    return batch_id, len(moved), sum(e["size"] for e in moved), why
