"""DataJoint 2.x stores: objects in the hash and schema sections that no JSON column names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from djtui.config import StoreSettings
from djtui.domain import stores as ds
from djtui.services.orphans import catalog
from djtui.services.orphans.model import Orphans, ScanResult, SourceInfo
from djtui.services.stores import Store
from djtui.services.stores.s3 import QUARANTINE_PREFIX


def json_references(svc: Orphans, store_name: str) -> set[str]:
    """Every path of ``store_name`` some JSON column of any schema names (the backend's SQL may leave
    out, on the server, values that name no path)."""
    d, backend = svc.db.dialect, svc.db.backend
    values: list[Any] = []
    for s, t, c in catalog.json_columns(svc.db):
        svc.check()
        for (v,) in svc.db.query(backend.json_values_sql(d.table(s, t), d.ident(c))):
            if isinstance(v, (bytes, bytearray)):
                v = v.decode("utf-8", "replace")
            try:
                values.append(json.loads(v) if isinstance(v, str) else v)
            except ValueError:
                continue
    return ds.referenced_paths_2x(values, store_name)


def scan_store_2x(svc: Orphans, source: SourceInfo, store_name: str) -> ScanResult:
    """Objects in the store's hash and schema sections (its own ``hash_prefix``/``schema_prefix``)
    that no JSON column names; a sidecar (``<path>.manifest.json``) goes with its object."""
    settings = svc.store(store_name)
    store = svc.open_store(settings)
    objects: dict[str, ds.StoredObject] = {}
    sections = (o for prefix in dict.fromkeys((settings.hash_prefix, settings.schema_prefix))
                for o in _list_section(svc, settings, store, prefix))
    for o in svc.counted(sections):
        objects[o.path] = o
    refs = json_references(svc, store_name)
    items = ds.store_2x_orphans(source.name, objects, refs, now=svc.now(),
                                grace_s=svc.settings.grace_hours * 3600)
    return ScanResult(source, tuple(items), len(objects), root=store.root)


def _list_section(svc: Orphans, settings: StoreSettings, store: Store,
                  prefix: str) -> Iterator[ds.StoredObject]:
    """One section of a 2.x store. An empty prefix (stores written before 2.3.1 put schema-addressed
    objects at ``{schema}/...``) is the location's root without the other sections, the filepath
    section, DataJoint's ``datajoint_store.json`` and djtui's own quarantine."""
    if prefix:
        yield from store.list(prefix, cancelled=svc.cancelled)
        return
    skip = {p for p in (settings.hash_prefix, settings.schema_prefix, settings.filepath_prefix, QUARANTINE_PREFIX)
            if p}
    for o in store.list("", cancelled=svc.cancelled):
        top = o.path.split("/", 1)[0]
        if "/" not in o.path or top in skip:
            continue  # root files (datajoint_store.json) are no schema's objects
        yield o
