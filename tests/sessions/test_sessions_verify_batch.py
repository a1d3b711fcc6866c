"""Batch verification on real trees: the fast scan, the one-file record store, hashing workers, the cache.

No database is needed here: verification only reads the two trees and writes djtui's state_dir.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest

from djtui.config import parse_config
from djtui.domain.sessions import (
    FileEntry,
    Listing,
    Scan,
    SessionKey,
    VerifyRecord,
    compare_scans,
    compare_sizes,
    mtime_ns,
    record_drift,
)
from djtui.services import filesystem, findscan
from djtui.services.sessions import SessionService
from djtui.services.transfers import HashCache, hash_files, verify_many


def make_service(root: Path, exclude: tuple[str, ...] = ()) -> SessionService:
    for sub in ("src", "dst", "state"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    text = f"""
backup:
  source:
    base_path: {root}/src
    path_structure: "{{participant_id}}/{{session_date}}"
  destinations:
    - name: net
      base_path: {root}/dst
      verify_mount: false
      path_structure: "{{session_date}}/{{participant_id}}"
  filters:
    exclude_patterns: {json.dumps(list(exclude))}
sessions:
  mount_timeout: 10
  checksum_workers: 2
state_dir: {root}/state
audit_log: {root}/state/audit.jsonl
"""
    path = root / "djtui.yaml"
    path.write_text(text)
    return SessionService(parse_config(text, path=path), None)


def make_sessions(svc: SessionService, n: int, files: int, size: int = 64) -> list[SessionKey]:
    """``n`` sessions of ``files`` files each (distinct content), copied whole to the destination."""
    keys = []
    for i in range(n):
        key = SessionKey(f"p{i:03d}", dt.date(2025, 1, 1) + dt.timedelta(days=i % 28))
        src = svc.source_path(key)
        (src / "sub").mkdir(parents=True, exist_ok=True)
        for j in range(files):
            where = src / "sub" if j % 5 == 0 else src
            (where / f"f{j:03d}.bin").write_bytes(f"{key.label}/{j}".encode().ljust(size, b"."))
        shutil.copytree(src, svc.dest_path(svc.destinations[0], key), copy_function=shutil.copy2)
        keys.append(key)
    return keys


def test_scan_columns_equal_the_python_scanner_on_odd_trees(tmp_path):
    s1 = tmp_path / "s1"
    (s1 / "sub" / "deep").mkdir(parents=True)
    (s1 / "skipdir").mkdir()
    (s1 / "a.bin").write_bytes(b"a")
    (s1 / "sub" / "b.tmp").write_bytes(b"bb")
    (s1 / "sub" / "deep" / "c").write_bytes(b"ccc")
    (s1 / "skipdir" / "x").write_bytes(b"x")
    (s1 / "link").symlink_to("a.bin")
    os.mkfifo(s1 / "fifo")
    s2 = tmp_path / "s2"
    s2.mkdir()
    (s2 / os.fsdecode(b"bad\xffname")).write_bytes(b"z")
    (s2 / "new\nline").write_bytes(b"nl")
    (tmp_path / "rootfile").write_bytes(b"r")
    (tmp_path / "empty").mkdir()
    roots = [s1, tmp_path / "rootfile", s2, tmp_path / "missing", tmp_path / "empty", s1]
    for pats in [(), ("*.tmp", "skipdir"), ("sub/deep",)]:
        fast = filesystem.scan_many(roots, exclude=pats, timeout=5)
        slow = [filesystem.scan(r, exclude=pats, timeout=5) for r in roots]
        assert fast == slow, pats
    got = filesystem.scan_many([s1], exclude=("*.tmp", "skipdir"))[0]
    assert [f.rel for f in got.files] == ["a.bin", "sub/deep/c"]  # an excluded folder takes its contents along
    assert got.special == ("fifo",) and got.symlinks == ("link",)
    cols = filesystem.scan_columns([s2])[0]
    assert cols.count == 2 and cols.bytes == 3 and cols.error is None


def test_find_errors_are_pinned_to_their_folder():
    paths = ["/a/p1/d", "/a/p2/d"]
    text = ("find: '/a/p1/d/sub': Permission denied\n"
            "find: '/a/p2/d': No such file or directory\n")
    assert findscan.find_errors(text, paths) == {"/a/p1/d": "'/a/p1/d/sub': Permission denied"}
    # a message no folder claims fails every folder of the run: never a silent partial listing
    assert set(findscan.find_errors("find: something odd\n", paths)) == set(paths)


def test_fast_comparison_agrees_with_the_file_by_file_one():
    def scan(files: dict[str, int], extra: tuple[str, ...] = ()) -> Scan:
        listing = Listing(True, tuple(FileEntry(r, s, 5) for r, s in sorted(files.items())), extra)
        return Scan.of(listing)

    base = {"a": 1, "b/c": 2}
    cases = [(base, base), (base, {"a": 1}), (base, {"a": 1, "b/c": 3}), (base, {**base, "z": 9}), ({}, base)]
    for src, dst in cases:
        s, d = scan(src), scan(dst)
        assert compare_scans(s, d) == compare_sizes(s.listing(), d.listing())
    # a FIFO on one side only is not a file difference
    assert compare_scans(scan(base, ("pipe",)), scan(base)).ok
    assert mtime_ns("1750766400.1234567890") == 1750766400123456789
    assert mtime_ns("1750766400.5") == 1750766400500000000
    assert mtime_ns("1750766400123456789") == 1750766400123456789
    assert mtime_ns("-1.5000000000") == -1500000000


def test_batch_verify_writes_one_store_and_withdraws_what_fails(tmp_path):
    svc = make_service(tmp_path)
    dest = svc.destinations[0]
    keys = make_sessions(svc, 30, 6)
    short, gone = keys[3], keys[7]
    victim = svc.dest_path(dest, short) / "f001.bin"
    victim.write_bytes(victim.read_bytes()[:-1])
    (svc.dest_path(dest, gone) / "sub" / "f000.bin").unlink()
    out = verify_many(svc, keys, dest)
    bad = {o.key: o for o in out if not o.ok}
    assert set(bad) == {short, gone}
    assert bad[short].comparison.size_mismatch == ("f001.bin",)
    assert bad[gone].comparison.missing == ("sub/f000.bin",)
    assert all(o.comparison.compared == 6 for o in out)
    assert not (tmp_path / "state" / "verify").exists()  # no file per session any more
    records = svc.records.load_many(keys, dest.name)
    assert set(records) == set(keys) - {short, gone}
    rec = records[keys[0]]
    src = filesystem.scan(svc.source_path(keys[0]))
    assert record_drift(rec, src) == [] and rec.files["sub/f000.bin"][0] == 64
    # a fresh service (another process) reads the same records
    assert SessionService(svc.config, None).status(keys[0]).verified
    # what fails later withdraws its record
    (svc.dest_path(dest, keys[0]) / "f002.bin").unlink()
    assert not verify_many(svc, [keys[0]], dest)[0].ok
    assert svc.records.load(keys[0], dest.name) is None
    assert not SessionService(svc.config, None).status(keys[0]).verified


def test_records_of_earlier_versions_are_moved_in_and_damaged_ones_dropped(tmp_path):
    svc = make_service(tmp_path)
    good, broken = make_sessions(svc, 2, 3)
    files = {f.rel: (f.size, f.mtime_ns, None) for f in filesystem.scan(svc.source_path(good)).files}
    old = tmp_path / "state" / "verify" / "net"
    old.mkdir(parents=True)
    rec = VerifyRecord(good.participant_id, good.date_str, "net", 1.0, "size", files)
    (old / f"{good.participant_id}_{good.date_str}.json").write_text(json.dumps(rec.to_json()))
    (old / f"{broken.participant_id}_{broken.date_str}.json").write_text("{not json")
    fresh = SessionService(svc.config, None)
    got = fresh.records.load(good, "net")
    assert got is not None and dict(got.files) == files and got.verified_at == 1.0
    assert fresh.records.load(broken, "net") is None
    assert not (tmp_path / "state" / "verify").exists()
    assert fresh.status(good).verified and not fresh.status(broken).verified


def test_checksum_batch_uses_workers_finds_same_size_corruption_and_caches(tmp_path):
    svc = make_service(tmp_path, exclude=("*.tmp",))
    dest = svc.destinations[0]
    keys = make_sessions(svc, 25, 45)  # 1,125 files a side: the worker processes hash them
    (svc.source_path(keys[1]) / "skip.tmp").write_bytes(b"not verified")
    victim = svc.dest_path(dest, keys[5]) / "sub" / "f010.bin"
    data = bytearray(victim.read_bytes())
    data[3] ^= 0xFF
    victim.write_bytes(bytes(data))
    out = verify_many(svc, keys, dest, checksum=True)
    assert out[0].hashed_now == 2 * 25 * 45
    bad = [o for o in out if not o.ok]
    assert [o.key for o in bad] == [keys[5]] and bad[0].comparison.hash_mismatch == ("sub/f010.bin",)
    rec = svc.records.load(keys[0], dest.name)
    assert rec is not None and rec.method == "checksum" and all(h for _s, _m, h in rec.files.values())
    again = verify_many(svc, keys, dest, checksum=True)
    # only the file whose content differed is read again, on both sides (a re-copy may keep its size and mtime)
    assert again[0].hashed_now == 2 and [o.key for o in again if not o.ok] == [keys[5]]
    # a file whose mtime changed is read again, and only that one (plus the known difference's two sides)
    touched = svc.source_path(keys[2]) / "f003.bin"
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert verify_many(svc, keys, dest, checksum=True)[0].hashed_now == 1 + 2


def test_hash_workers_report_a_file_that_cannot_be_read(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    rels = [f"f{i}" for i in range(2100)]
    for r in rels:
        (root / r).write_bytes(r.encode())
    sizes = [str(len(r)) for r in rels]
    (root / rels[1500]).unlink()
    cache = HashCache(tmp_path / "state")
    try:
        with pytest.raises(OSError) as info:
            hash_files([(str(root), rels, sizes, ["1"] * len(rels))], cache, 2, 10)
        assert info.value.filename == f"{root}/{rels[1500]}" and "No such file" in str(info.value)
    finally:
        cache.close()



def test_a_fifo_where_a_file_was_is_reported_hung_not_waited_for(tmp_path):
    from djtui.services.hashing import hash_file
    fifo = tmp_path / "was-a-file"
    os.mkfifo(fifo)
    with pytest.raises(filesystem.Hung):
        filesystem.with_deadline(lambda beat: hash_file(str(fifo), beat, 10), 0.5, fifo)
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # let the abandoned reader thread finish
    os.close(fd)
