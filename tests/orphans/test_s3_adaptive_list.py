"""The adaptive S3 listing of a 0.14 schema, against a real local S3 server (moto): a small store is listed
with one paginated listing; a store whose estimate crosses the threshold (lowered here) switches to listing
by prefix in parallel and still lists every key exactly once (strays, non-hex and misplaced names, the keys
of the prefix where it switched); a cancel after the switch ends the workers; a worker's error reaches the
consumer. LIST requests are counted with a botocore event hook on the store's client.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from djtui.config import parse_config
from djtui.services import commandlog
from djtui.services.orphans.streamed import adaptive_list, judge_switch, key_position
from djtui.services.stores import ScanCancelled, open_store

boto3 = pytest.importorskip("boto3")

SCHEMA = "lab_ephys"
FOLDS = (2, 2)
PAGE = 100


def h(i: int) -> str:
    return hashlib.md5(f"adaptive:{i}".encode()).hexdigest()


def layout_keys(n: int) -> list[str]:
    return [f"{SCHEMA}/{x[:2]}/{x[2:4]}/{x}" for x in (h(i) for i in range(n))]


def strays() -> list[str]:
    """Keys outside the layout, all over the key space: strays directly under the schema (before, among and
    after the hex folders), a blob at the top, non-hex names and folders, upper case, a misplaced blob."""
    up = h(900_001).upper()
    return [f"{SCHEMA}/00stray", f"{SCHEMA}/stray.txt", f"{SCHEMA}/zz.txt", f"{SCHEMA}/{h(900_000)}",
            f"{SCHEMA}/ab/cd/notahash.txt", f"{SCHEMA}/deep/er/a.bin", f"{SCHEMA}/{up[:2]}/{up[2:4]}/{up}",
            f"{SCHEMA}/ffffffff/{h(900_002)}", f"{SCHEMA}/12/stray.bin"]


class Lab:
    def __init__(self, endpoint: str, keys: list[str]):
        self.bucket = f"adaptive-{uuid.uuid4().hex[:12]}"
        self.keys = keys
        client = boto3.client("s3", endpoint_url=f"http://{endpoint}", aws_access_key_id="testing",
                              aws_secret_access_key="testing", region_name="us-east-1")
        client.create_bucket(Bucket=self.bucket)
        # an object of another schema whose name starts with this one's: never listed
        extra = [f"{SCHEMA}_v2/00/00/{h(1)}"]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: client.put_object(Bucket=self.bucket, Key=f"loc/{k}", Body=b"x"), keys + extra))
        cfg = parse_config(f"stores:\n  main:\n    protocol: s3\n    location: loc\n    endpoint: {endpoint}\n"
                           f"    bucket: {self.bucket}\n    access_key: testing\n    secret_key: testing\n"
                           "    secure: false\n")
        self.store = open_store(next(st for st in cfg.stores if st.name == "main"))
        self.calls: list[dict] = []
        self.store.client.meta.events.register("provide-client-params.s3.ListObjectsV2", self._seen)

    def _seen(self, params: dict, **_: object) -> None:
        self.calls.append(dict(params))

    def first_page_end(self) -> str:
        """The full key the first page of ``PAGE`` keys ends at (S3 lists in key order)."""
        return "loc/" + sorted(self.keys)[PAGE - 1]


def test_a_small_store_is_listed_with_one_listing(s3_endpoint):
    lab = Lab(s3_endpoint, layout_keys(1500) + strays())
    commandlog.clear()
    got = Counter(o.path for o in adaptive_list(lab.store, SCHEMA, FOLDS, cancelled=lambda: False, page=PAGE))
    assert got == Counter(lab.keys)  # every key once, nothing of the other schema
    pages = -(-len(lab.keys) // PAGE)
    assert len(lab.calls) == pages  # the pages of one listing, no request per prefix
    assert all("Delimiter" not in c and "StartAfter" not in c and c["Prefix"] == f"loc/{SCHEMA}/"
               for c in lab.calls)
    said = [e.text for e in commandlog.entries() if "s3 list" in e.text]
    assert len(said) == 1 and "(one listing: about" in said[0] and "threshold 1,000" in said[0]


def test_a_store_past_the_threshold_switches_and_lists_every_key_once(s3_endpoint):
    base = layout_keys(1500) + strays()
    end = "loc/" + sorted(base)[PAGE - 1]
    head = end[len(f"loc/{SCHEMA}/"):].split("/")[0]
    # keys of the prefix where the switch happens, after the key it happens at (one canonical, one not)
    later = [f"{SCHEMA}/{head}/ff/{head}ff{'0' * 28}", f"{SCHEMA}/{head}/zz-not-hex"]
    lab = Lab(s3_endpoint, base + later)
    assert lab.first_page_end() == end and all("loc/" + k > end for k in later)
    commandlog.clear()
    # 1,500 objects over 256 prefixes is about 6 per prefix: a threshold of 3 switches after the first page
    got = Counter(o.path for o in adaptive_list(lab.store, SCHEMA, FOLDS, cancelled=lambda: False, workers=4,
                                                per_prefix=3, page=PAGE))
    assert got == Counter(lab.keys)
    plain = [c for c in lab.calls if c["Prefix"] == f"loc/{SCHEMA}/" and "Delimiter" not in c]
    delimited = [c for c in lab.calls if "Delimiter" in c]
    resumed = [c for c in lab.calls if "StartAfter" in c]
    by_prefix = {c["Prefix"] for c in lab.calls if c["Prefix"] != f"loc/{SCHEMA}/"}
    assert len(plain) == 1 and len(delimited) == 1  # switched after the first page
    assert resumed == [{"Bucket": lab.bucket, "Prefix": f"loc/{SCHEMA}/{head}/", "StartAfter": end,
                        "MaxKeys": PAGE}]
    assert f"loc/{SCHEMA}/00/" not in by_prefix and f"loc/{SCHEMA}/ff/" in by_prefix  # only the rest
    assert f"loc/{SCHEMA}/deep/" in by_prefix and f"loc/{SCHEMA}/ffffffff/" in by_prefix
    said = [e.text for e in commandlog.entries() if "s3 list" in e.text]
    assert len(said) == 1 and "(one listing, then by prefix x4: about" in said[0]


def test_a_cancel_after_the_switch_ends_the_listing(s3_endpoint):
    lab = Lab(s3_endpoint, layout_keys(1500) + strays())
    taken = []

    def cancelled() -> bool:
        return len(taken) > 400  # the switch came after the first 100

    before = {t.name for t in threading.enumerate()}
    with pytest.raises(ScanCancelled):
        for o in adaptive_list(lab.store, SCHEMA, FOLDS, cancelled=cancelled, workers=2, per_prefix=3,
                               page=PAGE, depth=4):
            taken.append(o)
    assert any("StartAfter" in c for c in lab.calls)
    prefixes = [c for c in lab.calls if c["Prefix"] != f"loc/{SCHEMA}/"]
    n = len(prefixes)
    assert n < 150  # of about 240 prefixes left: the ones not started were dropped
    for _ in range(50):
        left = {t.name for t in threading.enumerate() if t.is_alive()} - before
        if not {x for x in left if x.startswith("djtui-s3list")}:
            break
        time.sleep(0.1)
    assert not {x for x in left if x.startswith("djtui-s3list")}
    time.sleep(0.3)
    assert len([c for c in lab.calls if c["Prefix"] != f"loc/{SCHEMA}/"]) == n  # nothing asked after


def test_a_workers_error_is_raised_in_the_consumer(s3_endpoint):
    lab = Lab(s3_endpoint, layout_keys(800))

    def refuse(params: dict, **_: object) -> None:
        if params["Prefix"] == f"loc/{SCHEMA}/ff/":  # a prefix listed by a worker after the switch
            raise RuntimeError("the server refused ff")

    lab.store.client.meta.events.register("provide-client-params.s3.ListObjectsV2", refuse)
    with pytest.raises(RuntimeError, match="refused ff"):
        list(adaptive_list(lab.store, SCHEMA, FOLDS, cancelled=lambda: False, per_prefix=2, page=PAGE))
    assert any("StartAfter" in c for c in lab.calls) and f"loc/{SCHEMA}/ff/" in {c["Prefix"] for c in lab.calls}


def test_the_estimate_reads_the_place_of_the_last_key():
    x = "80" + "0" * 30
    assert key_position(f"80/00/{x}", FOLDS) == 0.5
    assert key_position("80/00/notahash", FOLDS) == pytest.approx((0x8000 + 0.5) / 0x10000)
    assert key_position("80/stray", FOLDS) == pytest.approx((0x80 + 0.5) / 0x100)
    for outside in ("stray.txt", "deep/er/a.bin", "AB/CD/x", f"{x}"):
        assert key_position(outside, FOLDS) is None
    assert key_position(f"80/{x}", ()) is None  # a flat store has no prefixes to go by
    # 1,000 keys up to 1/64 of the space: about 64,000 objects, 250 per prefix
    assert judge_switch(1000, f"04/00/04{'0' * 30}", FOLDS, 1000)[0] is False
    switch, why = judge_switch(1000, f"04/00/04{'0' * 30}", FOLDS, 200)
    assert switch and "about 64,000 objects, 250 per first-level prefix" in why
    # past the last prefix nothing is left to go by prefix; outside the layout there is no estimate
    assert judge_switch(1000, f"ff/ff/ff{'f' * 30}", FOLDS, 1)[0] is False
    assert judge_switch(1000, "deep/er/a.bin", FOLDS, 1) == (False, "no estimate at 'deep/er/a.bin' (not a key "
                                                                  "of the layout)")
    assert judge_switch(1000, f"04{'0' * 30}", (), 1) == (False, "a flat layout has no prefixes to go by")
