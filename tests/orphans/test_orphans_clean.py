"""Cleaning every reason a scan reports: unused and missing-object rows, zero-byte objects.

Rows are deleted in one transaction after a re-check (still unreferenced, past the grace
age, the object still missing); empty objects go through the quarantine like untracked ones.
All on the private server and real files.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from orphans_lab import config_text, make_config, put

from djtui.cli import main
from djtui.domain import stores as ds
from djtui.errors import UserError
from djtui.services.database import Database
from djtui.services.locks import LockBusy, exclusive
from djtui.services.orphans import OrphanService


@pytest.fixture
def db(server):
    d = Database(server.settings)
    yield d
    d.close()


def service(server, db, tmp_path, lab, extra: str = "") -> OrphanService:
    return OrphanService(make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n"
                                                      f"    location: {lab.location}\n{extra}"), db)


def ext_hashes(conn, db: str) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT LOWER(HEX(hash)) FROM `{db}`.`~external_main`")
        return {r[0] for r in cur.fetchall()}


def add_row(conn, db: str, h: uuid.UUID, *, age_h: float = 3.0) -> None:
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{db}`.`~external_main` (hash, size, timestamp) "
                    "VALUES (%s, 7, NOW() - INTERVAL %s SECOND)", (h.bytes, int(age_h * 3600)))


def test_unused_rows_are_deleted_after_a_recheck_and_logged_in_full(server, db, tmp_path, legacy_lab, admin_conn):
    s = legacy_lab.schema
    svc = service(server, db, tmp_path, legacy_lab)
    src = f"external:{s}:main"
    young, late = uuid.uuid4(), uuid.uuid4()
    add_row(admin_conn, s, young, age_h=0)  # inserted a moment ago: its referencing row may be on its way
    add_row(admin_conn, s, late)  # will be referenced between the preview and the action
    before = ext_hashes(admin_conn, s)

    # a scan calls no row younger than the grace age an orphan; one whose clock runs two hours ahead
    # does, so the transaction's own re-check (on the server's clock) is what keeps the young row
    ahead = OrphanService(svc.config, db, now=lambda: time.time() + 2 * 3600)
    assert str(young) not in {i.key["hash"] for i in svc.scan(svc.resolve(src)).items if i.reason == ds.UNUSED_ROW}
    preview = ahead.quarantine_source(src, dry_run=True, reasons=[ds.UNUSED_ROW], max_share=0.5)
    assert preview.dry_run and preview.rows == 3 and preview.files == 0
    assert ext_hashes(admin_conn, s) == before
    with admin_conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{s}`.rec VALUES (9, %s, NULL, NULL)", (late.bytes,))
    done = ahead.quarantine_source(src, dry_run=False, reasons=[ds.UNUSED_ROW], max_share=0.5,
                                   only=[i.ref for i in preview.items])
    assert (done.rows, done.files, done.skipped) == (1, 0, 2)
    # the re-scan drops the row referenced meanwhile; the transaction's own re-check keeps the young one
    assert dict(done.why_skipped) == {"referenced again or younger than the grace age": 1,
                                      "no longer an orphan at the re-scan": 1}
    unused = legacy_lab.hashes["unused"]
    assert ext_hashes(admin_conn, s) == before - {unused.hex}
    # the object of the deleted row stays, and is an untracked object now (the next run's business)
    obj = ds.legacy_blob_path(s, unused)
    assert (legacy_lab.location / obj).exists()
    assert obj in {i.path for i in svc.scan(svc.resolve(src)).items if i.reason == ds.UNTRACKED_OBJECT}
    # the audit log holds the deleted row in full, enough to put it back by hand
    entries = [e for e in svc.audit.entries() if e["action"] == "orphans-delete-rows"]
    assert [e["event"] for e in entries] == ["intent", "detail", "outcome"]  # the rows are logged before DELETE
    assert entries[2]["status"] == "ok" and entries[2]["details"]["deleted"] == 1
    assert entries[1]["rows"] == [{"hash": str(unused), "size": 6, "attachment_name": None, "filepath": None,
                                   "contents_hash": None}]
    # the schema_v2 store table is untouched
    assert len(ext_hashes(admin_conn, legacy_lab.schema_v2)) == 1


def test_missing_object_rows(server, db, tmp_path, legacy_lab, admin_conn):
    s = legacy_lab.schema
    svc = service(server, db, tmp_path, legacy_lab)
    src = f"external:{s}:main"
    gone, back = uuid.uuid4(), uuid.uuid4()
    add_row(admin_conn, s, gone)  # unreferenced, object missing: deletable
    add_row(admin_conn, s, back)  # unreferenced, object missing at the scan, back at the action
    result = svc.scan(svc.resolve(src))
    missing = {i.path for i in result.items if i.reason == ds.MISSING_OBJECT}
    assert {ds.legacy_blob_path(s, gone), ds.legacy_blob_path(s, back)} <= missing

    preview = svc.quarantine_source(src, dry_run=True, reasons=[ds.MISSING_OBJECT], max_share=0.5)
    # the lab's referenced row with a missing object cannot go: the row naming it would break
    assert preview.rows == 2 and preview.reported_only == 1
    assert ds.legacy_blob_path(s, legacy_lab.hashes["missing"]) not in {i.path for i in preview.items}
    put(legacy_lab.location, ds.legacy_blob_path(s, back), b"restored from tape")
    done = svc.quarantine_source(src, dry_run=False, reasons=[ds.MISSING_OBJECT], max_share=0.5,
                                 only=[i.ref for i in preview.items])
    assert done.rows == 1 and dict(done.why_skipped) == {"no longer an orphan at the re-scan": 1}
    left = ext_hashes(admin_conn, s)
    assert gone.hex not in left and back.hex in left and legacy_lab.hashes["missing"].hex in left
    assert "reported only" in preview.describe()


def test_zero_byte_objects_go_to_the_quarantine_and_come_back(server, db, tmp_path, legacy_lab):
    s = legacy_lab.schema
    svc = service(server, db, tmp_path, legacy_lab)
    src = f"external:{s}:main"
    (zero,) = legacy_lab.expected[ds.ZERO_BYTE]
    path = legacy_lab.location / zero
    mtime = path.stat().st_mtime
    done = svc.quarantine_source(src, dry_run=False, reasons=[ds.ZERO_BYTE])
    assert (done.files, done.rows) == (1, 0) and done.batch_id and not path.exists()
    (entry,) = svc.quarantine().read_manifest(done.batch_id)["items"]
    assert entry["reason"] == ds.ZERO_BYTE and entry["size"] == 0
    scan = svc.scan(svc.resolve(src))
    assert path.as_posix().endswith(zero) and zero in {i.path for i in scan.items if i.reason == ds.MISSING_OBJECT}
    svc.restore(done.batch_id)
    assert path.read_bytes() == b"" and path.stat().st_mtime == mtime

    # written between the preview and the action: no longer empty, kept
    preview = svc.quarantine_source(src, dry_run=True, reasons=[ds.ZERO_BYTE])
    path.write_bytes(b"late data")
    again = svc.quarantine_source(src, dry_run=False, only=[i.ref for i in preview.items])
    assert not again.dry_run and again.files == 0 and again.skipped == 1 and path.read_bytes() == b"late data"


def test_share_guard_and_lock_cover_rows_too(server, db, tmp_path, legacy_lab, admin_conn):
    s = legacy_lab.schema
    svc = service(server, db, tmp_path, legacy_lab)
    src = f"external:{s}:main"
    before = ext_hashes(admin_conn, s)
    with pytest.raises(UserError, match=r"1 of 6 rows .* more than the allowed 10%"):
        svc.quarantine_source(src, dry_run=False, reasons=[ds.UNUSED_ROW], max_share=0.1)
    with exclusive(svc.config.state_dir, f"orphans:{src}", purpose="another cleaner"), \
            pytest.raises(LockBusy, match="another cleaner"):
        svc.quarantine_source(src, dry_run=False, reasons=[ds.UNUSED_ROW])
    with pytest.raises(UserError, match="unknown reason"):
        svc.quarantine_source(src, reasons=["stale"])
    assert ext_hashes(admin_conn, s) == before


def test_cli_cleans_every_reason_with_a_typed_confirmation(server, tmp_path, legacy_lab, admin_conn, capsys):
    s = legacy_lab.schema
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path, f"stores:\n  main:\n    protocol: file\n"
                                                 f"    location: {legacy_lab.location}\n"))
    cfg.chmod(0o600)
    base = ["--config", str(cfg), "orphans", "quarantine", "--source", f"external:{s}:main"]
    before = ext_hashes(admin_conn, s)
    assert main([*base, "--max-share", "0.4"]) == 2  # no terminal, no --confirm: nothing happens
    assert "--confirm" in capsys.readouterr().err and ext_hashes(admin_conn, s) == before

    assert main([*base, "--max-share", "0.4", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["rows"], dry["files"], dry["reported_only"]) == (1, 2, 1)
    assert {(w["reason"], w["path"]) for w in dry["would"]} == {
        (r, p) for r in (ds.UNUSED_ROW, ds.UNTRACKED_OBJECT, ds.ZERO_BYTE) for p in legacy_lab.expected[r]}

    assert main([*base, "--max-share", "0.4", "--confirm", "QUARANTINE", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert (done["rows"], done["files"], done["skipped"]) == (1, 2, 0) and done["batch"]
    assert ext_hashes(admin_conn, s) == before - {legacy_lab.hashes["unused"].hex}
    for r in (ds.UNTRACKED_OBJECT, ds.ZERO_BYTE):
        (p,) = legacy_lab.expected[r]
        assert not (legacy_lab.location / p).exists()
