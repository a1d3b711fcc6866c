"""Scans find exactly the known orphans; quarantine, restore and purge are exact and guarded."""

from __future__ import annotations

import json
import os
import time

import pytest
from orphans_lab import OLD, make_config, put

from djtui.domain import stores as ds
from djtui.errors import UserError
from djtui.services.database import Database
from djtui.services.orphans import OrphanService
from djtui.services.stores.quarantine import Quarantine, file_hash


def by_reason(items) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for i in items:
        out.setdefault(i.reason, set()).add(i.path)
    return out


@pytest.fixture
def db(server):
    d = Database(server.settings)
    yield d
    d.close()


def legacy_service(server, db, tmp_path, lab) -> OrphanService:
    cfg = make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: {lab.location}\n")
    return OrphanService(cfg, db)


def test_legacy_store_scan_is_exact_and_ignores_schema_v2(server, db, tmp_path, legacy_lab):
    svc = legacy_service(server, db, tmp_path, legacy_lab)
    names = {s.name for s in svc.sources()}
    src, src_v2 = f"external:{legacy_lab.schema}:main", f"external:{legacy_lab.schema_v2}:main"
    assert {src, src_v2} <= names
    result = svc.scan(svc.resolve(src))
    assert by_reason(result.items) == legacy_lab.expected
    assert svc.scan(svc.resolve(src_v2)).items == ()


def test_legacy_quarantine_restore_purge(server, db, tmp_path, legacy_lab):
    svc = legacy_service(server, db, tmp_path, legacy_lab)
    src = f"external:{legacy_lab.schema}:main"
    (untracked,) = legacy_lab.expected[ds.UNTRACKED_OBJECT]
    path = legacy_lab.location / untracked
    before = (path.read_bytes(), path.stat().st_mtime)

    only_untracked = [ds.UNTRACKED_OBJECT]
    dry = svc.quarantine_source(src, dry_run=True, reasons=only_untracked)
    assert dry.dry_run and {i.path for i in dry.items} == {untracked} and path.exists()

    done = svc.quarantine_source(src, dry_run=False, reasons=only_untracked)
    assert done.acted == 1 and done.batch_id and not path.exists()
    manifest = svc.quarantine().read_manifest(done.batch_id)
    (entry,) = manifest["items"]
    assert entry["original"] == str(path) and entry["size"] == len(before[0])
    assert entry["reason"] == ds.UNTRACKED_OBJECT and entry["source"] == src and entry["hash"]
    # every other file of the store is untouched, and a new scan finds no untracked object
    assert ds.UNTRACKED_OBJECT not in by_reason(svc.scan(svc.resolve(src)).items)

    svc.restore(done.batch_id)
    assert (path.read_bytes(), path.stat().st_mtime) == before
    with pytest.raises(UserError):
        svc.restore(done.batch_id)

    again = svc.quarantine_source(src, dry_run=False, reasons=only_untracked)
    assert [b.batch_id for b in svc.purge(7)] == []  # too young to purge
    purged = svc.purge(0)
    assert again.batch_id in [b.batch_id for b in purged]
    assert not (svc.quarantine().root / again.batch_id / "files").exists()
    assert svc.quarantine().read_manifest(again.batch_id)["state"] == "purged"
    actions = [e["action"] for e in svc.audit.entries() if e["event"] == "outcome" and e["status"] == "ok"]
    assert actions.count("orphans-quarantine") == 2 and "orphans-restore" in actions and "orphans-purge" in actions


def test_share_guard_refuses_a_misconfigured_store(server, db, tmp_path, legacy_lab):
    # the store's real location holds other schemas' objects: pointing at a copy with only strays
    stray_root = tmp_path / "wrong"
    for n in range(3):
        put(stray_root, f"{legacy_lab.schema}/aa/bb/{n:032x}", b"x")
    cfg = make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: {stray_root}\n")
    svc = OrphanService(cfg, db)
    with pytest.raises(UserError, match="more than the allowed 20%"):
        svc.quarantine_source(f"external:{legacy_lab.schema}:main", dry_run=False)
    assert len([p for p in stray_root.rglob("*") if p.is_file()]) == 3
    assert not (tmp_path / "state" / "quarantine").exists()


def test_table_orphans_follow_renamed_foreign_keys_across_schemas(server, db, tmp_path, table_lab, admin_conn):
    cfg = make_config(server, tmp_path, f"orphans:\n  tables: [{table_lab.schema}.interval_list]\n")
    svc = OrphanService(cfg, db)
    src = f"table:{table_lab.schema}.interval_list"
    result = svc.scan(svc.resolve(src))
    assert {i.key["interval_list_name"] for i in result.items} == table_lab.orphans
    assert all(i.reason == ds.ORPHAN_ROW for i in result.items)
    children = dict(result.children)
    assert children[f"{table_lab.schema}.lfp(nwb_file_name, interval_list_name)"] == 2
    assert children[f"{table_lab.schema_v2}.sorting(nwb_file_name, sort_interval_name)"] == 2

    assert result.warnings == ()
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE TRIGGER `{table_lab.schema}`.block_lfp BEFORE INSERT ON `{table_lab.schema}`.lfp "
                    "FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'cleanup running'")
    (warning,) = svc.scan(svc.resolve(src)).warnings
    assert "block_lfp" in warning and "INSERT" in warning
    with admin_conn.cursor() as cur:
        cur.execute(f"DROP TRIGGER `{table_lab.schema}`.block_lfp")
    with pytest.raises(UserError, match=r"more than the allowed"):
        svc.quarantine_source(src, dry_run=False)  # 2 of 5 rows is over 20%
    # a child row appears between the scan and the action: the re-check keeps that parent
    keys = [i.ident for i in result.items]
    with admin_conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{table_lab.schema}`.lfp VALUES ('f.nwb', 'orphan2')")
    done = svc.quarantine_source(src, dry_run=False, max_share=0.5, only=keys)
    assert done.acted == 1
    with admin_conn.cursor() as cur:
        cur.execute(f"SELECT interval_list_name FROM `{table_lab.schema}`.interval_list")
        left = {r[0] for r in cur.fetchall()}
    assert left == {"by_lfp", "by_renamed", "by_both", "orphan2"}


def test_unknown_table_is_a_user_error(server, db, tmp_path, schema_name):
    cfg = make_config(server, tmp_path, f"orphans:\n  tables: [{schema_name}.nope]\n")
    svc = OrphanService(cfg, db)
    with pytest.raises(UserError, match="does not exist"):
        svc.scan(svc.resolve(f"table:{schema_name}.nope"))
    with pytest.raises(UserError, match="no source"):
        svc.resolve("table:other.thing")


@pytest.fixture
def dir_lab(server, admin_conn, schema_name, tmp_path):
    """One analysis directory shared by two tables, a temp directory, and a symlink out."""
    d, t = tmp_path / "analysis", tmp_path / "tmp"
    outside = tmp_path / "outside"
    put(outside, "secret.nwb", b"keep me")
    put(d, "s1/s1_A.nwb", b"aaa")  # named by file name in table one, in Spyglass's folder
    put(d, "s2/b.nwb", b"bbb")  # named by absolute path in table two
    put(d, "s2/c.nwb", b"orphan")
    put(d, "young.nwb", b"new", mtime=time.time())
    put(d, "s1/s1_Z.nwb", b"")  # tracked, but empty
    os.symlink(outside, d / "link")
    put(t, "old.tmp", b"old", mtime=time.time() - 8 * 86400)
    put(t, "new.tmp", b"new", mtime=OLD)
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema_name}`")
        cur.execute(f"CREATE TABLE `{schema_name}`.analysis_nwbfile (analysis_file_name VARCHAR(255) PRIMARY KEY)")
        cur.execute(f"CREATE TABLE `{schema_name}`.custom_analysis (id INT PRIMARY KEY, path VARCHAR(255))")
        cur.execute(f"INSERT INTO `{schema_name}`.analysis_nwbfile VALUES ('s1_A.nwb'), ('s1_Z.nwb')")
        cur.execute(f"INSERT INTO `{schema_name}`.custom_analysis VALUES (1, %s)", (str(d / "s2/b.nwb"),))
    extra = (f"orphans:\n  directories:\n"
             f"    - {{path: {d}, table: {schema_name}.analysis_nwbfile, column: analysis_file_name}}\n"
             f"    - {{path: {d}, table: {schema_name}.custom_analysis, column: path}}\n"
             f"  temp_directories: [{t}]\n")
    return d, t, outside, extra


def test_managed_directories_and_temp(server, db, tmp_path, dir_lab):
    d, t, outside, extra = dir_lab
    svc = OrphanService(make_config(server, tmp_path, extra), db)
    assert {s.name for s in svc.sources() if s.kind == "dir"} == {f"dir:{d}", f"dir:{t}"}
    r = svc.scan(svc.resolve(f"dir:{d}"))
    assert by_reason(r.items) == {ds.UNTRACKED_FILE: {"s2/c.nwb"}, ds.ZERO_BYTE: {"s1/s1_Z.nwb"}}
    assert by_reason(svc.scan(svc.resolve(f"dir:{t}")).items) == {ds.STALE_TEMP: {"old.tmp"}}
    done = svc.quarantine_source(f"dir:{d}", dry_run=False, max_share=0.5)
    assert (done.acted, done.files, done.rows) == (2, 2, 0)  # the untracked file and the empty one
    assert not (d / "s2/c.nwb").exists() and not (d / "s1/s1_Z.nwb").exists() and (outside / "secret.nwb").exists()
    svc.restore(done.batch_id)
    assert (d / "s2/c.nwb").read_bytes() == b"orphan" and (d / "s1/s1_Z.nwb").read_bytes() == b""


def test_move_in_rechecks_and_never_leaves_the_store(tmp_path):
    root = tmp_path / "store"
    put(root, "keep.bin", b"changed later")
    put(root, "go.bin", b"go")
    (tmp_path / "out").mkdir()
    put(tmp_path / "out", "x.bin", b"outside")
    os.symlink(tmp_path / "out", root / "sub")
    q = Quarantine(tmp_path / "q")

    def verify(rel, st):
        return "changed since the scan" if rel == "keep.bin" else None

    batch, moved = q.move_in("dir:x", root, [("keep.bin", "untracked-file", verify),
                                             ("go.bin", "untracked-file", verify),
                                             ("sub/x.bin", "untracked-file", verify),
                                             ("gone.bin", "untracked-file", verify)])
    assert [e["original"] for e in moved] == [str(root / "go.bin")]
    assert (root / "keep.bin").exists() and (tmp_path / "out/x.bin").exists()
    m = json.loads((tmp_path / "q" / batch / "manifest.json").read_text())
    assert {s["path"] for s in m["skipped"]} == {"keep.bin", "sub/x.bin", "gone.bin"}
    assert moved[0]["hash"] == file_hash(tmp_path / "q" / batch / moved[0]["stored"])
    put(root, "go.bin", b"someone wrote it again")
    from djtui.errors import OperationFailed
    with pytest.raises(OperationFailed, match="exist again"):
        q.restore(batch)
    assert (root / "go.bin").read_bytes() == b"someone wrote it again"


def test_store_2x_orphans(server, db, tmp_path, admin_conn, schema_name):
    loc = tmp_path / "s2"
    live_hash = ds.content_hash(b"live")
    dead_hash = ds.content_hash(b"dead")
    put(loc, ds.hash_path(schema_name, live_hash), b"live")
    put(loc, ds.hash_path(schema_name, dead_hash), b"dead")
    put(loc, ds.schema_path(schema_name, "rec", "id=1", "a.npy"), b"npy")
    put(loc, ds.schema_path(schema_name, "rec", "id=2", "a.npy"), b"npy")
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema_name}`")
        cur.execute(f"CREATE TABLE `{schema_name}`.rec (id INT PRIMARY KEY, obj JSON, payload JSON)")
        cur.execute(f"INSERT INTO `{schema_name}`.rec VALUES (1, %s, %s)", (
            json.dumps({"path": ds.schema_path(schema_name, "rec", "id=1"), "store": "new", "schema": schema_name}),
            json.dumps({"hash": live_hash, "path": ds.hash_path(schema_name, live_hash), "store": "new",
                        "schema": schema_name, "size": 4})))
    svc = OrphanService(make_config(server, tmp_path, f"stores:\n  new:\n    protocol: file\n    location: {loc}\n"),
                        db)
    r = svc.scan(svc.resolve("store:new"))
    assert by_reason(r.items) == {ds.UNTRACKED_OBJECT: {ds.hash_path(schema_name, dead_hash),
                                                        ds.schema_path(schema_name, "rec", "id=2", "a.npy")}}


def test_quarantine_inside_a_managed_directory_is_not_scanned(server, db, tmp_path, dir_lab):
    d, _t, _outside, extra = dir_lab
    extra += f"  quarantine_dir: {d}/.quarantine\n"
    svc = OrphanService(make_config(server, tmp_path, extra), db)
    done = svc.quarantine_source(f"dir:{d}", dry_run=False, max_share=0.5, reasons=[ds.UNTRACKED_FILE])
    assert done.acted == 1 and (d / ".quarantine" / done.batch_id / "files" / "s2/c.nwb").exists()
    after = svc.scan(svc.resolve(f"dir:{d}"))
    assert by_reason(after.items) == {ds.ZERO_BYTE: {"s1/s1_Z.nwb"}}


def test_service_refuses_writes_when_readonly(server, tmp_path, legacy_lab):
    from djtui.errors import ReadOnlyError
    cfg = make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n")
    ro = Database(server.settings, readonly=True)
    try:
        svc = OrphanService(cfg, ro)
        src = f"external:{legacy_lab.schema}:main"
        assert svc.quarantine_source(src, dry_run=True, reasons=[ds.UNTRACKED_OBJECT]).acted == 1
        for act in (lambda: svc.quarantine_source(src, dry_run=False), lambda: svc.purge(0),
                    lambda: svc.restore("x")):
            with pytest.raises(ReadOnlyError):
                act()
        (untracked,) = legacy_lab.expected[ds.UNTRACKED_OBJECT]
        assert (legacy_lab.location / untracked).exists()
    finally:
        ro.close()


def test_store_walk_never_follows_symlinks_and_skips_its_quarantine(server, db, tmp_path, legacy_lab):
    s = legacy_lab.schema
    outside = tmp_path / "elsewhere"
    put(outside, "aa/bb/" + "ab" * 16, b"not ours")
    os.symlink(outside, legacy_lab.location / s / "linked")  # a directory link inside the schema's folder
    os.symlink(outside / "aa/bb" / ("ab" * 16), legacy_lab.location / s / "filelink")
    put(legacy_lab.location, f"{s}/stray.txt", b"top-level stray")
    put(legacy_lab.location, f"{s}/deep/er/still/a.bin", b"deep stray")
    qdir = legacy_lab.location / s / ".quarantine"
    put(qdir, "old-batch/files/x", b"quarantined earlier")
    svc = OrphanService(make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: "
                                                      f"{legacy_lab.location}\norphans:\n  quarantine_dir: {qdir}\n"),
                        db)
    got = by_reason(svc.scan(svc.resolve(f"external:{s}:main")).items)
    expected = dict(legacy_lab.expected)
    expected[ds.UNTRACKED_OBJECT] = expected[ds.UNTRACKED_OBJECT] | {f"{s}/stray.txt", f"{s}/deep/er/still/a.bin"}
    assert got == expected


def test_scan_without_the_empty_check_reads_no_sizes(server, db, tmp_path, legacy_lab, capsys):
    svc = legacy_service(server, db, tmp_path, legacy_lab)
    src = svc.resolve(f"external:{legacy_lab.schema}:main")
    quick = by_reason(svc.scan(src, empty_check=False).items)
    assert quick == {k: v for k, v in legacy_lab.expected.items() if k != ds.ZERO_BYTE}
    assert by_reason(svc.scan(src).items) == legacy_lab.expected  # the flag holds for one scan only



def test_an_unused_row_younger_than_the_grace_age_is_no_orphan_yet(server, db, tmp_path, legacy_lab):
    """DataJoint inserts the ~external row just before the row that references it: not an orphan yet."""
    import uuid
    fresh = uuid.uuid4()
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO `{legacy_lab.schema}`.`~external_main` (hash, size) VALUES (%s, 7)",
                        (fresh.bytes,))
        conn.commit()
    finally:
        conn.close()
    now_svc = legacy_service(server, db, tmp_path, legacy_lab)
    later_svc = OrphanService(now_svc.config, db, now=lambda: time.time() + 2 * 3600)
    src = f"external:{legacy_lab.schema}:main"

    def unused(svc: OrphanService) -> set[str]:
        return {i.key["hash"] for i in svc.scan(svc.resolve(src)).items if i.reason == ds.UNUSED_ROW}

    now_rows, later_rows = unused(now_svc), unused(later_svc)
    assert str(fresh) not in now_rows and str(fresh) in later_rows
    assert now_rows and now_rows == later_rows - {str(fresh)}  # the lab's old unused rows are found either way
