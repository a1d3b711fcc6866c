"""The streamed 0.14 comparison gives the same answer as the in-memory one, on real files, a real S3
server and the suite's private database server: subfolding variants, names that differ only in case,
names of the wrong shape or place, attachments, filepath objects, empty files, an empty store, an empty table.
"""

from __future__ import annotations

import hashlib
import threading
import uuid

import pytest
from orphans_lab import ext_ddl, make_config, put

from djtui.domain import stores as ds
from djtui.domain.stores import merged_candidates
from djtui.services.database import Database
from djtui.services.orphans import OrphanService
from djtui.services.orphans.streamed import blob_difference
from djtui.services.stores import ScanCancelled
from djtui.services.stores.file import FileStore

FOLDS = [(2, 2), (1,), (), (3, 1), (2, 2, 2)]


@pytest.fixture
def db(server):
    d = Database(server.settings)
    yield d
    d.close()


def h(i: int) -> str:
    return hashlib.md5(f"scale:{i}".encode()).hexdigest()


def build(conn, root, schema: str, folds: tuple[int, ...], n: int = 1500, *, table: bool = True) -> None:
    """Rows and objects of every kind: used, missing, untracked, empty, case twins, misplaced, strays."""
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{schema}`")
    cur.execute(ext_ddl(schema, "main"))
    rows = []
    for i in range(n):
        x = h(i)
        if table and i % 7 != 3:
            rows.append((bytes.fromhex(x), 8, None, None))
        if i % 11 == 5:  # a row whose object is missing
            continue
        put(root, ds.legacy_blob_path(schema, x, folds), b"" if i % 97 == 0 else b"blobdata")
    # names that differ from a row's only in case, at the upper-case place and at the lower-case one
    up = h(1).upper()
    put(root, ds.join(schema, *ds.subfold(up, folds), up), b"twin")
    put(root, ds.join(schema, *ds.subfold(h(2), folds), h(2).upper()), b"twin")
    # the right name in the wrong folder, a 32-character name that is not hex, strays at every level
    wrong = "f" * 8 if folds else "nested"
    put(root, ds.join(schema, wrong, h(4)), b"misplaced")
    if folds:
        bad = h(6)[: sum(folds)] + "z" * (32 - sum(folds))
        put(root, ds.join(schema, *ds.subfold(h(6), folds), bad), b"not hex")
        put(root, ds.join(schema, *ds.subfold(h(8), folds)[:1], "stray.txt"), b"")
    put(root, f"{schema}/stray.txt", b"s")
    put(root, f"{schema}/deep/er/a.bin", b"")
    # an attachment (used), one without its object, and a filepath object outside the schema's folder
    att, gone, fp = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    if table:
        rows += [(att.bytes, 3, "notes.txt", None), (gone.bytes, 3, "gone.txt", None),
                 (fp.bytes, 4, None, "raw/s1/f.dat")]
    put(root, ds.legacy_attach_path(schema, att, "notes.txt", folds), b"att")
    put(root, "raw/s1/f.dat", b"file")
    if rows:
        cur.executemany(f"INSERT INTO `{schema}`.`~external_main` (hash, size, attachment_name, filepath) "
                        "VALUES (%s, %s, %s, %s)", rows)
    conn.commit()
    cur.close()


def in_memory(db, store, schema: str, folds: tuple[int, ...]) -> ds.LegacyCandidates:
    """The reference: every object in a LegacyListing, every blob row in a set, set arithmetic."""
    listing = ds.LegacyListing()
    for o in store.list(schema):
        listing.add(schema, o, folds)
    blobs, others = set(), []
    for x, att, fp in db.query(f"SELECT LOWER(HEX(hash)), attachment_name, filepath FROM `{schema}`.`~external_main`"):
        if att is None and fp is None:
            blobs.add(x)
        else:
            others.append(ds.ExternalRow(x, att, fp))
    extra = {}
    for r in others:
        if r.filepath and ds.join(r.filepath) not in listing.others:
            o = store.stat(ds.join(r.filepath))
            if o is not None:
                extra[ds.join(r.filepath)] = o
    return ds.legacy_candidates(schema, blobs, others, listing, extra_present=extra, folds=folds)


def streamed(db, store, schema: str, folds: tuple[int, ...], **kw) -> ds.LegacyCandidates:
    others = [ds.ExternalRow(x, att, fp) for x, att, fp in db.query(
        f"SELECT LOWER(HEX(hash)), attachment_name, filepath FROM `{schema}`.`~external_main` "
        "WHERE attachment_name IS NOT NULL OR filepath IS NOT NULL")]
    d = blob_difference(db, schema, "~external_main", store, folds, check=lambda: None, cancelled=lambda: False,
                        **kw)
    extra = {}
    for r in others:
        if r.filepath and ds.join(r.filepath) not in d.listing.others:
            o = store.stat(ds.join(r.filepath))
            if o is not None:
                extra[ds.join(r.filepath)] = o
    assert d.listing.blob_names == set()  # the blob names are never held
    return merged_candidates(schema, d.only_listed, d.only_rows, d.rows, others, d.listing,
                             extra_present=extra, folds=folds)


def same(a: ds.LegacyCandidates, b: ds.LegacyCandidates) -> None:
    assert set(a.untracked) == set(b.untracked)
    assert set(a.missing) == set(b.missing)
    assert set(a.zero) == set(b.zero)
    assert a.rows == b.rows


@pytest.mark.parametrize("folds", FOLDS, ids=lambda f: "folds" + "-".join(map(str, f)) if f else "flat")
def test_streamed_equals_in_memory_on_a_mixed_file_store(admin_conn, db, schema_name, tmp_path, folds):
    root = tmp_path / "store"
    build(admin_conn, root, schema_name, folds)
    store = FileStore("main", root)
    ref = in_memory(db, store, schema_name, folds)
    # small chunks and ranges: the merge crosses many chunk borders and the row ranges are split
    got = streamed(db, store, schema_name, folds, chunk=37, range_bytes=32 * 50)
    same(got, ref)
    same(streamed(db, store, schema_name, folds), ref)  # the default sizes
    # the reference is not empty: every kind of candidate is there to be found
    assert ref.missing and ref.untracked and ref.zero
    names = {p.rsplit("/", 1)[-1] for p in got.untracked}
    assert h(1).upper() in names and h(2).upper() in names  # case twins are untracked, not matches
    assert h(1) not in names and (h(1), ds.legacy_blob_path(schema_name, h(1), folds)) not in got.missing


def test_empty_store_and_empty_table(admin_conn, db, schema_name, tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    cur = admin_conn.cursor()
    cur.execute(f"CREATE DATABASE `{schema_name}`")
    cur.execute(ext_ddl(schema_name, "main"))
    cur.executemany(f"INSERT INTO `{schema_name}`.`~external_main` (hash, size) VALUES (%s, 8)",
                    [(bytes.fromhex(h(i)),) for i in range(300)])
    admin_conn.commit()
    store = FileStore("main", root)
    got = streamed(db, store, schema_name, (2, 2), chunk=16, range_bytes=32 * 20)
    same(got, in_memory(db, store, schema_name, (2, 2)))
    assert len(got.missing) == 300 and got.untracked == ()

    other = schema_name + "_e"
    build(admin_conn, tmp_path / "s2", other, (2, 2), n=400, table=False)
    store2 = FileStore("main", tmp_path / "s2")
    got2 = streamed(db, store2, other, (2, 2), chunk=16)
    same(got2, in_memory(db, store2, other, (2, 2)))
    assert got2.missing == () and got2.rows == 0 and len(got2.untracked) > 360  # every file, 1 in 11 never made


def test_the_whole_scan_finds_the_lab_orphans_through_the_stream(server, db, tmp_path, legacy_lab):
    svc = OrphanService(make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: "
                                                      f"{legacy_lab.location}\n"), db)
    got: dict[str, set[str]] = {}
    for i in svc.scan(svc.resolve(f"external:{legacy_lab.schema}:main")).items:
        got.setdefault(i.reason, set()).add(i.path)
    assert got == legacy_lab.expected


def test_a_cancel_stops_both_producers(admin_conn, db, schema_name, tmp_path):
    root = tmp_path / "store"
    build(admin_conn, root, schema_name, (2, 2), n=3000)
    store = FileStore("main", root)
    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 40

    before = {t.name for t in threading.enumerate()}
    with pytest.raises(ScanCancelled):
        blob_difference(db, schema_name, "~external_main", store, (2, 2), check=lambda: None,
                        cancelled=cancelled, chunk=10, range_bytes=32 * 10)
    left = {t.name for t in threading.enumerate() if t.is_alive()} - before
    # the scan's own threads (the Database's watchdog outlives a scan by design)
    assert not {n for n in left if n.startswith(("djtui-rows", "djtui-walk", "djtui-s3list"))}


boto3 = pytest.importorskip("boto3")


def test_s3_parallel_listing_equals_in_memory(server, db, admin_conn, schema_name, tmp_path, s3_endpoint):
    root = tmp_path / "store"
    build(admin_conn, root, schema_name, (2, 2), n=600)
    client = boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    bucket = f"scale-{schema_name.replace('_', '-')}"
    client.create_bucket(Bucket=bucket)
    for p in root.rglob("*"):
        if p.is_file():
            client.put_object(Bucket=bucket, Key=f"loc/{p.relative_to(root).as_posix()}", Body=p.read_bytes())
    cfg = make_config(server, tmp_path, (
        f"stores:\n  main:\n    protocol: s3\n    location: loc\n    endpoint: {s3_endpoint}\n"
        f"    bucket: {bucket}\n    access_key: testing\n    secret_key: testing\n    secure: false\n"))
    svc = OrphanService(cfg, db)
    store = svc.open_store(svc.store("main"))
    ref = in_memory(db, store, schema_name, (2, 2))
    # a spill budget far below the store's size: the listing is sorted through run files
    same(streamed(db, store, schema_name, (2, 2), chunk=25, spill_items=64), ref)
    same(ref, in_memory(db, FileStore("main", root), schema_name, (2, 2)))  # the bucket is the directory
