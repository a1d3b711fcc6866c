"""Services against real files and the real server: hung calls, FIFOs, symlinks, locks, partial imports."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
import time

import pytest

from djtui import labschema
from djtui.domain.sessions import SessionKey
from djtui.services import filesystem
from djtui.services.audit import AuditLog
from djtui.services.database import Database
from djtui.services.locks import exclusive
from djtui.services.sessions import SessionService
from djtui.services.sessions.deletion import delete_session
from djtui.services.transfers import JobQueue, verify_session

KEY = SessionKey("p001", dt.date(2025, 1, 4))


def service(lab) -> SessionService:
    cfg = lab.config
    return SessionService(cfg, Database.from_config(cfg))


def test_a_call_that_blocks_is_reported_hung_without_freezing(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(filesystem.Hung) as info:
        filesystem.with_deadline(lambda beat: open(fifo, "rb"), 0.3, fifo)  # noqa: SIM115 (blocks in the kernel)
    assert time.monotonic() - start < 2
    assert "remount" in str(info.value)
    # unblock the leaked reader thread
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    os.close(fd)


def test_fifo_in_a_tree_is_listed_never_opened_and_blocks_delete(lab):
    src = lab.make_session("p001", "20250104")
    os.mkfifo(src / "stream.fifo")
    listing = filesystem.scan(src, timeout=1)
    assert listing.special == ("stream.fifo",) and listing.count == 5
    lab.import_session("p001", "20250104")
    svc = service(lab)
    svc_dest = svc.destinations[0]
    import asyncio

    async def sync() -> None:
        q = JobQueue(svc)
        job = q.submit("sync", KEY, svc_dest.name)
        await q.wait([job])
        assert job.ok, job.message

    asyncio.run(sync())
    out = verify_session(svc, KEY, svc_dest, checksum=True)  # must not hang on the FIFO
    assert out.ok
    res = delete_session(svc, AuditLog(lab.config.audit_log), KEY)
    assert not res.ok and "stream.fifo" in res.message and src.exists()


def test_probe_reports_missing_and_hung(tmp_path):
    assert filesystem.probe_mount(tmp_path, 1).state == "ok"
    p = filesystem.probe_mount(tmp_path / "nope", 1)
    assert p.state == "missing" and "does not exist" in p.detail


def test_missing_destination_shows_and_blocks_safe(lab):
    lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    (lab.root / "mnt" / "backup").rmdir()
    (lab.root / "mnt").rmdir()
    st = service(lab).status(KEY)
    assert st.destinations[0].mount == "missing" and not st.safe
    assert any("not mounted" in r for r in st.reasons_unsafe())


def test_partial_imports_name_the_missing_part(lab):
    lab.make_session("p001", "20250104")
    lab.make_session("p002", "20250104")
    lab.make_session("p003", "20250104")
    lab.import_session("p001", "20250104", sqlite=False)
    lab.import_session("p002", "20250104", labschema.ImportPlan(recordings=0))
    lab.import_session("p003", "20250104")
    svc = service(lab)
    dj = svc.dj_status([SessionKey(p, dt.date(2025, 1, 4)) for p in ("p001", "p002", "p003")])
    by = {k.participant_id: v for k, v in dj.items()}
    assert by["p001"].missing == ("SQLite imported flag",)
    assert "Recording" in by["p002"].missing and "Session" not in by["p002"].missing
    assert by["p003"].imported


def test_queries_are_batched_per_table_not_per_session(lab):
    from djtui.services import commandlog
    for i in range(30):
        lab.make_session(f"p{i:03d}", "20250104", files=1)
    svc = service(lab)
    commandlog.clear()
    svc.status_range()
    sql = [e for e in commandlog.entries() if e.kind == "sql"]
    assert 0 < len(sql) <= 5


def test_symlinked_session_folder_is_refused(lab, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "precious.mp4").write_bytes(b"x" * 10)
    (lab.source / "p001").mkdir()
    (lab.source / "p001" / "20250104").symlink_to(elsewhere)
    res = delete_session(service(lab), AuditLog(lab.config.audit_log), KEY)
    assert not res.ok and "symbolic link" in res.message
    assert (elsewhere / "precious.mp4").exists()


def test_a_held_lock_refuses_delete_and_names_the_holder(lab):
    src = lab.make_session("p001", "20250104")
    svc = service(lab)
    with exclusive(lab.config.state_dir, f"source:{svc.source_path(KEY)}", purpose="another operator"):
        res = delete_session(svc, AuditLog(lab.config.audit_log), KEY)
    assert not res.ok and "another operator" in res.message and src.exists()


def test_file_changed_between_check_and_unlink_is_kept(lab):
    import asyncio
    src = lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    svc = service(lab)

    async def sync() -> None:
        q = JobQueue(svc)
        await q.wait([q.submit("sync", KEY, "net")])

    asyncio.run(sync())

    def sneak() -> None:
        with open(src / "cam3.mp4", "ab") as fh:
            fh.write(b"more")

    res = delete_session(svc, AuditLog(lab.config.audit_log), KEY, before_unlink=sneak)
    assert not res.ok and res.left_behind == ("cam3.mp4",)
    assert (src / "cam3.mp4").exists() and not (src / "cam0.mp4").exists()
    assert AuditLog(lab.config.audit_log).entries()[-1]["status"] == "partial"


def test_jobs_cancel_and_continue(lab):
    import asyncio
    lab.make_session("p001", "20250104", files=2, size=30_000_000)
    svc = service(lab)

    async def go() -> None:
        q = JobQueue(svc, verify_after_sync=False)
        seen = threading.Event()
        q.listeners.append(lambda j: seen.set() if j.state == "running" else None)
        j1 = q.submit("sync", KEY, "net")
        j2 = q.submit("verify", KEY, "net")
        while j1.state != "running":
            await asyncio.sleep(0.01)
        q.cancel(j1)
        await q.wait()
        assert j1.state == "cancelled"
        assert j2.state == "failed"  # nothing (or a part) was copied
        assert seen.is_set()

    asyncio.run(go())


def test_sqlite_missing_file_is_named(lab):
    lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    lab.sqlite.unlink()
    dj = service(lab).dj_status([KEY])[KEY]
    assert not dj.imported and "not found" in dj.missing[0]
    with sqlite3.connect(lab.sqlite):
        pass


def test_every_enabled_destination_is_required_for_safe(lab, make_lab_config):
    import asyncio

    lab.config_path.write_text(make_lab_config(lab.server, lab.root, lab.schemas, dest2=True))
    lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    svc = service(lab)
    assert [d.name for d in svc.destinations] == ["net", "second"]

    async def sync(dest: str) -> None:
        q = JobQueue(svc)
        job = q.submit("sync", KEY, dest)
        await q.wait([job])
        assert job.ok, job.message

    asyncio.run(sync("net"))
    st = svc.status(KEY)
    assert st.destinations[0].verified and not st.destinations[1].backup and not st.safe
    asyncio.run(sync("second"))
    assert (lab.dest2 / "p001" / "20250104" / "cam0.mp4").exists()  # its own path_structure
    assert svc.status(KEY).safe


def test_batch_scan_with_find_equals_the_python_scan(tmp_path):
    root = tmp_path / "s"
    (root / "a" / "deep").mkdir(parents=True)
    (root / "a" / "x.mp4").write_bytes(b"1" * 10)
    (root / "a" / "deep" / "name with\ttab and ü.mp4").write_bytes(b"2" * 7)
    (root / "a" / "skip.tmp").write_bytes(b"3")
    os.mkfifo(root / "a" / "pipe")
    (root / "a" / "link").symlink_to(root / "a" / "x.mp4")
    (root / "b").mkdir()
    roots = [root / "a", root / "b", root / "missing"]
    many = filesystem.scan_many(roots, exclude=["*.tmp"])
    one = [filesystem.scan(r, exclude=["*.tmp"]) for r in roots]
    assert many == one
    assert many[0].special == ("pipe",) and many[0].symlinks == ("link",) and many[0].count == 2
    assert many[1].exists and many[1].count == 0 and not many[2].exists
