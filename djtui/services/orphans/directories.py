"""Managed directories: files no row's layout places there, and stale files of temp directories."""

from __future__ import annotations

import os
from pathlib import Path

from djtui.domain import stores as ds
from djtui.services.orphans import catalog
from djtui.services.orphans.model import Orphans, ScanResult, SourceInfo
from djtui.services.stores import list_files, local_root


def scan_dir(svc: Orphans, source: SourceInfo, path: Path) -> ScanResult:
    """Files of a managed directory no row's layout places there, or (temp directories) stale ones."""
    d = svc.db.dialect
    managed = [m for m in svc.settings.directories if Path(m.path) == path]
    files = list(svc.counted(list_files(path, exclude=svc.exclude(), cancelled=svc.cancelled)))
    refs: ds.TrackedFiles | None = None
    if managed:
        refs = ds.TrackedFiles()
        for m in managed:
            db, _, table = m.table.partition(".")
            layout = m.layout
            if layout == "auto":
                layout = ds.SPYGLASS_ANALYSIS if table.lower() == "analysis_nwbfile" else ds.RELATIVE
            exact = filepath_places(svc, db, table, m.column, path)
            for (v,) in svc.db.query(f"SELECT {d.ident(m.column)} FROM {d.table(db, table)}"):
                n = ds.normalize_reference(v, str(path))
                if n:
                    refs.add(n, layout, m.table, exact=exact.get(n))
    found = ds.directory_orphans(source.name, files, refs, now=svc.now(),
                                 min_age_s=svc.settings.min_file_age_hours * 3600,
                                 temp_max_age_s=svc.settings.temp_max_age_days * 86400)
    return ScanResult(source, found.items, found.files, root=path)


def filepath_places(svc: Orphans, db: str, table: str, column: str, root: Path) -> dict[str, str]:
    """Column value -> the path (relative to ``root``) a ``filepath@`` column of the same row names.

    Spyglass's AnalysisNwbfile keeps ``analysis_file_abs_path: filepath@analysis``: its ``~external``
    row's ``filepath`` says which of the layout's places the file is at. Used only when that store is
    a local directory, so where its paths start is known; otherwise the layout decides.
    """
    d = svc.db.dialect
    out: dict[str, str] = {}
    base = os.path.normpath(str(root)) + "/"
    for col, ext in catalog.external_references(svc.db, db, table):
        settings = next((s for s in svc.config.stores if s.name == ext[len("~external_"):]), None)
        store_root = local_root(settings) if settings is not None else None
        if store_root is None or not catalog.has_column(svc.db, db, ext, "filepath"):
            continue
        sql = (f"SELECT t.{d.ident(column)}, e.filepath FROM {d.table(db, table)} t JOIN {d.table(db, ext)} e "
               f"ON e.{d.ident('hash')} = t.{d.ident(col)} WHERE e.filepath IS NOT NULL")
        for v, fp in svc.db.query(sql):
            n = ds.normalize_reference(v, str(root))
            full = os.path.normpath(os.path.join(str(store_root), str(fp)))
            # a store elsewhere, or a path to another file name, says nothing about this directory's file
            if n and full.startswith(base) and full.rsplit("/", 1)[-1] == n.rsplit("/", 1)[-1]:
                out.setdefault(n, full[len(base):])
    return out
