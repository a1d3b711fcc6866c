"""The store layouts and orphan rules, on their own (no server)."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from djtui.domain import stores as ds

H = uuid.UUID("0123456789abcdef0123456789abcdef")


def test_legacy_paths_match_datajoint_014_layout():
    assert ds.legacy_blob_path("lab", H) == "lab/01/23/0123456789abcdef0123456789abcdef"
    assert ds.legacy_blob_path("lab", H.bytes) == ds.legacy_blob_path("lab", str(H))
    assert ds.legacy_attach_path("lab", H, "a.b.txt") == "lab/01/23/0123456789abcdef0123456789abcdef.a.b.txt"
    assert ds.legacy_object_path("lab", H, None, "/raw/x.dat") == "raw/x.dat"
    assert ds.legacy_object_path("lab", H, "n.txt", None).endswith(".n.txt")


def test_schema_prefix_never_matches_a_longer_schema_name():
    v2_obj = ds.legacy_blob_path("my_schema_v2", H)
    assert not ds.belongs_to_schema(v2_obj, "my_schema")
    assert ds.belongs_to_schema(ds.legacy_blob_path("my_schema", H), "my_schema")
    assert ds.legacy_hash_of(v2_obj, "my_schema") is None
    assert ds.legacy_hash_of(v2_obj, "my_schema_v2") == H.hex
    assert ds.legacy_hash_of("my_schema/01/23/" + H.hex + ".att.txt", "my_schema") == H.hex
    assert ds.legacy_hash_of("my_schema/01/23/notahash", "my_schema") is None


def test_2x_hash_and_schema_paths():
    h = ds.content_hash(b"hello")
    assert len(h) == 26 and h == h.lower()
    import base64
    assert base64.b32decode(h.upper() + "======") == hashlib.md5(b"hello").digest()
    assert ds.hash_path("lab", h) == f"_hash/lab/{h}"
    assert ds.hash_path("lab", h, folds=(2,)) == f"_hash/lab/{h[:2]}/{h}"
    assert ds.schema_path("lab", "rec", "id=1", "x.npy") == "_schema/lab/rec/id=1/x.npy"
    refs = ds.referenced_paths_2x([{"path": "_schema/lab/rec/id=1", "store": "s"},
                                   {"path": "_hash/lab/zz", "store": "other"}, "not json"], "s")
    assert refs == {"_schema/lab/rec/id=1"}
    assert ds.is_referenced_2x("_schema/lab/rec/id=1/x.npy", refs)
    assert not ds.is_referenced_2x("_schema/lab/rec/id=10/x.npy", refs)


def test_legacy_set_arithmetic_with_grace_age():
    now = 10_000.0
    used, unused, missing = (uuid.uuid4().hex for _ in range(3))
    rows = [ds.ExternalRow(used), ds.ExternalRow(unused), ds.ExternalRow(missing)]
    objs = {ds.legacy_blob_path("s", h): ds.StoredObject(ds.legacy_blob_path("s", h), 3, 0.0) for h in (used, unused)}
    stray_old = ds.legacy_blob_path("s", uuid.uuid4())
    stray_new = ds.legacy_blob_path("s", uuid.uuid4())
    objs[stray_old] = ds.StoredObject(stray_old, 7, now - 3601)
    objs[stray_new] = ds.StoredObject(stray_new, 7, now - 10)
    f = ds.legacy_store_orphans("external:s:x", "s", rows, {unused: 3}, objs, now=now, grace_s=3600,
                                sizes={missing: 9})
    got = {(i.reason, i.path) for i in f.items}
    assert got == {(ds.UNUSED_ROW, ds.legacy_blob_path("s", unused)),
                   (ds.MISSING_OBJECT, ds.legacy_blob_path("s", missing)),
                   (ds.UNTRACKED_OBJECT, stray_old)}
    assert (f.rows, f.objects) == (3, 4)
    assert {i.reason: i.size for i in f.items}[ds.MISSING_OBJECT] == 9


def test_directory_rules_match_names_and_paths():
    now = 1e6
    files = [ds.StoredObject("a.nwb", 5, 0), ds.StoredObject("sub/b.nwb", 5, 0), ds.StoredObject("c.nwb", 5, 0),
             ds.StoredObject("young.nwb", 5, now - 5), ds.StoredObject("z.nwb", 0, 0)]
    f = ds.directory_orphans("dir:/d", files, {"a.nwb", "sub/b.nwb", "z.nwb"}, now=now, min_age_s=3600)
    assert {(i.reason, i.path) for i in f.items} == {(ds.UNTRACKED_FILE, "c.nwb"), (ds.ZERO_BYTE, "z.nwb")}
    t = ds.directory_orphans("dir:/t", files, None, now=now, min_age_s=0, temp_max_age_s=7 * 86400)
    assert {i.path for i in t.items} == {"a.nwb", "sub/b.nwb", "c.nwb", "z.nwb"}
    assert all(i.reason == ds.STALE_TEMP for i in t.items)
    assert ds.normalize_reference("/d/sub/b.nwb", "/d") == "sub/b.nwb"
    assert ds.normalize_reference(b"x.nwb", "/d") == "x.nwb"
    assert ds.normalize_reference("  ", "/d") is None


@pytest.mark.parametrize("text, kind, parts", [
    ("table:lab.interval_list", "table", ("lab", "interval_list")),
    ("external:my_schema:main", "external", ("my_schema", "main")),
    ("store:main", "store", ("main",)),
    ("dir:/data/analysis", "dir", ("/data/analysis",)),
])
def test_parse_source(text, kind, parts):
    s = ds.parse_source(text)
    assert (s.kind, s.parts, s.name) == (kind, parts, text)


@pytest.mark.parametrize("bad", ["lab.t", "table:lab", "external:main", "bucket:x", "dir:"])
def test_parse_source_rejects(bad):
    with pytest.raises(ValueError):
        ds.parse_source(bad)


def test_share_guard():
    assert not ds.exceeds_share(0, 0, 0.2)
    assert not ds.exceeds_share(2, 10, 0.2)
    assert ds.exceeds_share(3, 10, 0.2)
    assert ds.exceeds_share(1, 0, 0.2)


def test_compact_set_arithmetic_gives_the_reference_answer():
    """The fast path (names, not paths) against :func:`legacy_store_orphans` on a random store."""
    import random
    rnd = random.Random(3)
    db = "lab"

    def h() -> str:
        return uuid.UUID(int=rnd.getrandbits(128)).hex

    rows = [ds.ExternalRow(h()) for _ in range(300)]
    rows += [ds.ExternalRow(h(), attachment_name=f"f{n}.txt") for n in range(40)]
    rows += [ds.ExternalRow(h(), filepath=f"raw/s{n}/x.dat") for n in range(10)]
    objects: dict[str, ds.StoredObject] = {}
    for n, r in enumerate(rows):
        if n % 17 == 0:
            continue  # missing
        path = ds.legacy_object_path(db, r.hash, r.attachment_name, r.filepath)
        objects[path] = ds.StoredObject(path, 0 if n % 23 == 0 else 5, 0.0)
    for _ in range(30):  # strays: blobs, attachments, odd names and places
        for path in (ds.legacy_blob_path(db, h()), ds.legacy_attach_path(db, h(), "a.bin"), f"{db}/odd/{h()}",
                     f"{db}/{h()}"):
            objects[path] = ds.StoredObject(path, rnd.choice((0, 3)), 0.0)
    under_db = {p: o for p, o in objects.items() if ds.belongs_to_schema(p, db)}
    extra = {p: o for p, o in objects.items() if not ds.belongs_to_schema(p, db)}
    ref = ds.legacy_store_orphans("s", db, rows, {}, under_db, now=1e9, grace_s=0, extra_present=extra)
    by_reason: dict[str, set[str]] = {}
    for i in ref.items:
        by_reason.setdefault(i.reason, set()).add(i.path)

    listing = ds.LegacyListing()
    for o in under_db.values():
        listing.add(db, o)
    blob_rows = {r.hash for r in rows if not r.attachment_name and not r.filepath}
    cand = ds.legacy_candidates(db, blob_rows, [r for r in rows if r.attachment_name or r.filepath], listing,
                                extra_present=extra)
    assert set(cand.untracked) == by_reason[ds.UNTRACKED_OBJECT]
    assert {p for _, p in cand.missing} == by_reason[ds.MISSING_OBJECT]
    assert set(cand.zero) == by_reason[ds.ZERO_BYTE]
    assert cand.rows == ref.rows == len(rows) and listing.count == ref.objects
    assert ds.uuid_text("0123456789abcdef0123456789abcdef") == str(uuid.UUID("0123456789abcdef0123456789abcdef"))
