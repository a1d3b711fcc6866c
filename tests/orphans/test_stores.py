"""The Store protocol: a directory and an S3 bucket answer the same calls the same way (issue 14)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from orphans_lab import put

from djtui.config import Secret, StoreSettings
from djtui.domain import stores as ds
from djtui.errors import UserError
from djtui.services.stores import Quarantine, ScanCancelled, Store, local_root, open_store

boto3 = pytest.importorskip("boto3")

OBJECTS = {"lab/ab/cd/abcd0001": b"one", "lab/ab/ce/abce0002": b"", "lab_v2/x.bin": b"other schema",
           "lab/attach/notes.txt": b"notes"}


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path) -> Store:
    if request.param == "file":
        for rel, data in OBJECTS.items():
            put(tmp_path / "loc", rel, data)
        return open_store(StoreSettings(name="main", protocol="file", location=str(tmp_path / "loc")))
    endpoint = request.getfixturevalue("s3_endpoint")
    client = boto3.client("s3", endpoint_url=f"http://{endpoint}", aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    bucket = f"stores-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    for rel, data in OBJECTS.items():
        client.put_object(Bucket=bucket, Key=f"loc/{rel}", Body=data)
    client.put_object(Bucket=bucket, Key="loc_other/lab/not-ours", Body=b"a neighbour prefix")
    return open_store(StoreSettings(name="main", protocol="s3", location="loc", endpoint=endpoint, bucket=bucket,
                                    access_key=Secret("testing"), secret_key=Secret("testing")))


def test_list_and_stat_agree_across_kinds(store):
    listed = {o.path: o for o in store.list()}
    assert set(listed) == set(OBJECTS)  # relative to the location; a neighbour prefix is not listed
    assert {o.path for o in store.list("lab")} == {p for p in OBJECTS if p.startswith("lab/")}  # not lab_v2
    for rel, data in OBJECTS.items():
        got = store.stat(rel)
        assert got is not None and got.path == rel and got.size == len(data) == listed[rel].size
        assert abs(got.mtime - time.time()) < 3600 * 24 * 365
    assert store.stat("lab/ab/cd/missing") is None
    assert (store.root is None) == (store.kind == "s3")


def test_listing_stops_when_cancelled(store):
    if store.root is not None:  # a directory walk asks every 256 directories: give it more than that
        for n in range(300):
            put(store.root, f"many/d{n:03d}/f", b"x")
    asked = []
    with pytest.raises(ScanCancelled):
        list(store.list("", cancelled=lambda: asked.append(1) or True))
    assert asked == [1]  # it stopped at the first question


def test_legacy_listing_sorts_blobs_from_other_objects(store):
    listing = store.legacy_listing("lab", ds.DEFAULT_SUBFOLDING)
    assert listing.count == 3
    assert "lab/attach/notes.txt" in listing.others
    assert "lab/ab/ce/abce0002" in listing.zero


def test_quarantine_restore_delete_round_trip(store, tmp_path):
    qr = Quarantine(tmp_path / "loc" / ".quarantine" if store.root else tmp_path / "q")

    def verify(rel, st):
        return "changed since the scan" if rel == "lab/attach/notes.txt" else None

    moves = [("lab/ab/cd/abcd0001", ds.UNTRACKED_OBJECT, verify), ("lab/attach/notes.txt", ds.UNTRACKED_OBJECT, verify),
             ("lab/gone", ds.UNTRACKED_OBJECT, verify)]
    batch, moved = store.move_to_quarantine(qr, "store:main", moves)
    assert [e["size"] for e in moved] == [3]
    assert store.stat("lab/ab/cd/abcd0001") is None and store.stat("lab/attach/notes.txt") is not None
    skipped = {s["path"]: s["why"] for s in qr.read_manifest(batch)["skipped"]}
    assert skipped == {"lab/attach/notes.txt": "changed since the scan", "lab/gone": "gone"}
    assert [e["size"] for e in store.restore_from_quarantine(qr, batch)] == [3]
    assert store.stat("lab/ab/cd/abcd0001").size == 3
    with pytest.raises(UserError, match="already restored"):
        store.restore_from_quarantine(qr, batch)
    store.delete("lab_v2/x.bin")
    assert store.stat("lab_v2/x.bin") is None


def test_open_store_refuses_a_protocol_it_cannot_read():
    with pytest.raises(UserError, match="cannot read"):
        open_store(StoreSettings(name="gs", protocol="gcs", location="x"))
    assert local_root(StoreSettings(name="f", protocol="file", location="/data")) == Path("/data")
    assert local_root(StoreSettings(name="s", protocol="s3", location="x", bucket="b")) is None
