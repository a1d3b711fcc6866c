"""DataJoint 2.3's own object stores against djtui's store scan, and against ``dj.gc`` in dry run.

DataJoint 2.3.5 (its own venv) declares the tables and writes every object through its codecs:
hash-addressed ``<blob@>``, schema-addressed ``<npy@>`` and ``<object@>`` folder objects (which get a
``<path>.manifest.json`` sidecar), on a store with the defaults and on one with a non-default
``hash_prefix``, ``schema_prefix`` and ``subfolding``. Orphans come the ways labs get them: rows
deleted (2.x never deletes objects with rows), a whole schema dropped, and an upload whose
transaction rolled back a moment ago (in flight, younger than the grace age). The
``datajoint.json`` DataJoint reads is the very file djtui reads its stores from.

The truth is computed from the store and the JSON columns alone: a file is live when a row's
``path`` names it, when it lies inside a named folder, or when it is the ``.manifest.json`` of a
named path. ``dj.gc`` agrees with that truth for the schemas it is given, with two mistakes djtui
must not copy: it has no grace age (the in-flight upload is an orphan to it), and it only sees
schemas that exist (the dropped schema's objects are invisible to it, though nothing references
them).

MariaDB is not a supported DataJoint 2.x backend (MySQL 8.0.13+ and PostgreSQL 15+ are); MySQL 8
cannot be installed here and PostgreSQL comes with a later issue. On MariaDB 2.3.5 hands a codec's
JSON value to the driver as a dict ("dict can not be used as parameter"), so the scripts register
a pymysql encoder for dict, as djtui's demo does.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ._stores import by_reason, djtui_json, file_tree, write_djtui_config
from .tools import run_tool, server_env

PRELUDE = r"""
import json
import os

import datajoint as dj
import numpy as np
import pymysql

conn = dj.conn()
# MariaDB only: DataJoint 2.3.5 sees a codec's json column as longtext and hands pymysql a dict
conn._conn.encoders[dict] = lambda d, _m=None: "'" + pymysql.converters.escape_string(json.dumps(d)) + "'"
S = os.environ["CF_SCHEMA"]
DROPPED = os.environ["CF_DROPPED"]


def declare(name):
    schema = dj.Schema(name, connection=conn)

    @schema
    class Waveform(dj.Manual):
        definition = '''
        wid : int32
        ---
        wave : <blob@main>
        deep_wave : <blob@deep>
        '''

    @schema
    class Trace(dj.Manual):
        definition = '''
        tid : int32
        ---
        samples : <npy@main>
        deep_samples : <npy@deep>
        '''

    @schema
    class Recording(dj.Manual):
        definition = '''
        rid : int32
        ---
        folder : <object@main>
        deep_folder : <object@deep>
        '''

    return schema, Waveform, Trace, Recording
"""

BUILD = PRELUDE + r"""
from pathlib import Path

src = Path(os.environ["CF_SRC"])


def folder(tag, i):
    d = src / f"{tag}{i}" / "session.zarr"
    (d / "0").mkdir(parents=True, exist_ok=True)
    (d / ".zattrs").write_text(json.dumps({"tag": tag, "i": i}))
    (d / "0" / "0.0").write_bytes(bytes([i]) * (100 + i))
    return str(d)


def fill(tables, tag, n):
    Waveform, Trace, Recording = tables
    Waveform.insert([dict(wid=i, wave=np.arange(20.0) + 100 * i, deep_wave=np.arange(30.0) + 100 * i)
                     for i in range(n)])
    Trace.insert([dict(tid=i, samples=np.arange(i * 7 + 3, dtype=np.float32),
                       deep_samples=np.arange(i * 5 + 2, dtype=np.int16)) for i in range(n)])
    Recording.insert([dict(rid=i, folder=folder(tag + "m", i), deep_folder=folder(tag + "d", i)) for i in range(n)])


schema, *tables = declare(S)
fill(tables, "live", 4)
# deleting rows never deletes objects in 2.x: these become orphans
for t, k in zip(tables, ("wid", "tid", "rid")):
    (t & f"{k} in (1, 3)").delete(prompt=False)
# a whole schema dropped: its objects stay in both stores
old, *old_tables = declare(DROPPED)
fill(old_tables, "old", 2)
old.drop(prompt=False)
print(json.dumps({"ok": True}))
"""

IN_FLIGHT = PRELUDE + r"""
schema, Waveform, Trace, Recording = declare(S)
try:
    with conn.transaction:
        Waveform.insert1(dict(wid=9, wave=np.arange(11.0) * 9, deep_wave=np.arange(13.0) * 9))
        raise RuntimeError("make() failed after its upload")
except RuntimeError:
    pass
print(json.dumps({"ok": True}))
"""

GC = PRELUDE + r"""
schema, Waveform, Trace, Recording = declare(S)
out = {}
for store in ("main", "deep"):
    r = dj.gc.GarbageCollector(schema, store=store).collect(dry_run=True)
    out[store] = {"orphans": sorted(r["orphaned_hash_paths"] + r["orphaned_schema_paths"]),
                  "deleted": r["deleted"], "scan_errors": r["scan_errors"]}
# every live value, read back through DataJoint
fetch = out["fetch"] = {}
for i in Waveform.fetch("wid", order_by="wid"):
    w, d = (Waveform & {"wid": i}).fetch1("wave", "deep_wave")
    fetch[f"wave{i}"] = bool(np.array_equal(w, np.arange(20.0) + 100 * i)
                             and np.array_equal(d, np.arange(30.0) + 100 * i))
for i in Trace.fetch("tid", order_by="tid"):
    s, d = (Trace & {"tid": i}).fetch1("samples", "deep_samples")
    fetch[f"trace{i}"] = bool(np.array_equal(np.asarray(s), np.arange(i * 7 + 3, dtype=np.float32))
                              and np.array_equal(np.asarray(d), np.arange(i * 5 + 2, dtype=np.int16)))
for i in Recording.fetch("rid", order_by="rid"):
    ok = True
    for ref in (Recording & {"rid": i}).fetch1("folder", "deep_folder"):
        ok = ok and ref.verify() and ref.exists(".zattrs") and \
            ref.fs.cat(ref.full_path + "/0/0.0") == bytes([i]) * (100 + i)
    fetch[f"folder{i}"] = bool(ok)
print(json.dumps(out))
"""


@dataclass
class Lab23:
    schema: str
    dropped: str
    work: Path
    home: Path
    stores: dict[str, Path]
    config: Path
    env: dict = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)  # store/path of the upload younger than the grace age

    def gc(self) -> dict:
        return run_tool("dj23", GC, env=self.env, cwd=self.work)

    def tree(self, store: str) -> dict[str, bytes]:
        return file_tree(self.stores[store])


def json_paths(conn, store: str) -> set[str]:
    """Every ``path`` a stored JSON column names for ``store``, read with plain SQL (no tool involved)."""
    out: set[str] = set()
    with conn.cursor() as cur:
        cur.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns "
                    "WHERE column_comment LIKE ':<%%@%%>%%' AND table_schema NOT IN ('mysql', 'sys')")
        for s, t, c in cur.fetchall():
            cur.execute(f"SELECT `{c}` FROM `{s}`.`{t}` WHERE `{c}` IS NOT NULL")
            for (v,) in cur.fetchall():
                d = json.loads(v)
                if d.get("store") == store and d.get("path"):
                    out.add(d["path"].strip("/"))
    return out


def covered(path: str, refs: set[str]) -> bool:
    if path.endswith(".manifest.json"):
        path = path[: -len(".manifest.json")]
    parts = path.split("/")
    return any("/".join(parts[:i]) in refs for i in range(1, len(parts) + 1))


@pytest.fixture(scope="module")
def lab23(server, tmp_path_factory):
    root = tmp_path_factory.mktemp("dj23")
    schema, dropped = f"cf23_{os.getpid()}", f"cf23_{os.getpid()}_old"
    work, home = root / "work", root / "home"
    stores = {"main": root / "store_main", "deep": root / "store_deep"}
    for d in (work / ".git", home, root / "src", *stores.values()):
        d.mkdir(parents=True)
    # the lab's DataJoint 2.3 project config, exactly as DataJoint reads it; djtui reads the same file
    (work / "datajoint.json").write_text(json.dumps({
        "database": {"host": "127.0.0.1", "port": server.port, "user": server.settings.user},
        "stores": {
            "default": "main",
            "main": {"protocol": "file", "location": str(stores["main"])},
            "deep": {"protocol": "file", "location": str(stores["deep"]), "hash_prefix": "blobs",
                     "schema_prefix": "objects", "subfolding": [2, 3]},
        }}, indent=2))
    env = server_env(server, CF_SCHEMA=schema, CF_DROPPED=dropped, CF_SRC=str(root / "src"))
    run_tool("dj23", BUILD, env=env, cwd=work)
    # everything so far was written three hours ago; then one upload whose row was rolled back just now
    old = time.time() - 3 * 3600
    before = {}
    for name, loc in stores.items():
        for p in loc.rglob("*"):
            os.utime(p, (old, old), follow_symlinks=False)
        before[name] = set(file_tree(loc))
    run_tool("dj23", IN_FLIGHT, env=env, cwd=work)
    config = write_djtui_config(server, root, "orphans:\n  grace_hours: 1\n  max_share: 0.7\n")
    lab = Lab23(schema, dropped, work, home, stores, config, env=env)
    lab.in_flight = {f"{name}/{p}" for name in stores for p in set(file_tree(stores[name])) - before[name]}
    yield lab
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            for db in (schema, dropped):
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    finally:
        conn.close()


def truth_23(lab: Lab23, store: str, conn) -> tuple[set[str], set[str], set[str]]:
    """(orphans past the grace age, the in-flight upload, the dropped schema's files) of one store."""
    refs = json_paths(conn, store)
    files = set(lab.tree(store))
    young = {p for p in files if f"{store}/{p}" in lab.in_flight}
    orphans = {p for p in files if not covered(p, refs)}
    dropped = {p for p in files if f"/{lab.dropped}/" in f"/{p}"}
    assert young and young <= orphans and dropped <= orphans
    return orphans - young, young, dropped


def test_store_scan_agrees_with_dj_gc_and_the_truth(lab23, admin_conn):
    gc = lab23.gc()
    assert all(gc["fetch"].values()) and len(gc["fetch"]) == 6
    for store in ("main", "deep"):
        orphans, young, dropped = truth_23(lab23, store, admin_conn)
        files = lab23.tree(store)
        manifests = {p for p in files if p.endswith(".manifest.json") and covered(p, json_paths(admin_conn, store))}
        assert len(manifests) == 2  # Recording 0 and 2 keep a folder object each on each store
        # dj.gc (dry run) is right about the schema it is given, and wrong twice: no grace age (the
        # in-flight upload is an orphan to it) and blind to the dropped schema (no Schema to hand it)
        assert gc[store]["deleted"] == 0 and not gc[store]["scan_errors"]
        assert set(gc[store]["orphans"]) == (orphans - dropped) | young
        got = djtui_json(lab23.config, "orphans", "scan", "--source", f"store:{store}", cwd=lab23.work,
                         home=lab23.home)
        found = by_reason(got["items"])
        untracked = found.pop("untracked-object", set())
        assert not found, found
        assert (sorted(untracked - orphans), sorted(orphans - untracked)) == ([], []), \
            f"{store}: (called orphans but live or young, orphans missed)"


def test_quarantine_keeps_every_live_object_and_its_manifest_then_restores(lab23, admin_conn):
    before = {store: lab23.tree(store) for store in ("main", "deep")}
    batches = {}
    for store in ("main", "deep"):
        orphans, young, _ = truth_23(lab23, store, admin_conn)
        refs = json_paths(admin_conn, store)
        live = {p for p in before[store] if covered(p, refs)}
        assert any(p.endswith(".manifest.json") for p in live)
        src = f"store:{store}"
        preview = djtui_json(lab23.config, "orphans", "quarantine", "--source", src, "--dry-run",
                             cwd=lab23.work, home=lab23.home)
        assert by_reason(preview["would"]) == {"untracked-object": orphans}, store
        done = djtui_json(lab23.config, "orphans", "quarantine", "--source", src, "--confirm", "QUARANTINE",
                          cwd=lab23.work, home=lab23.home)
        batches[store] = done["batch"]
        assert (done["files"], done["skipped"]) == (len(orphans), 0)
        after = lab23.tree(store)
        # exactly the orphans left; every live file (manifests too) and the in-flight upload untouched
        assert set(before[store]) - set(after) == orphans
        assert live | young <= set(after) and all(after[p] == before[store][p] for p in after)
    # DataJoint still reads every live blob, array and folder (verified against its manifest)
    gc = lab23.gc()
    assert all(gc["fetch"].values()) and len(gc["fetch"]) == 6
    for store in ("main", "deep"):
        # what dj.gc still calls orphans is the in-flight upload only: djtui left nothing else
        _, young, _ = truth_23(lab23, store, admin_conn)
        assert set(gc[store]["orphans"]) == young
        djtui_json(lab23.config, "orphans", "restore", batches[store], cwd=lab23.work, home=lab23.home)
        assert lab23.tree(store) == before[store]
