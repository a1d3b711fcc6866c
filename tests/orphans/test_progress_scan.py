"""Orphan scans report how far they are (objects listed, rows read, per source) and stop when cancelled.

The service hears a walk and a streamed 0.14 comparison through its ``progress`` callback; the
Orphans screen shows it live in its status line (Pilot), and ``c`` stops the walk mid-way.
"""

from __future__ import annotations

import threading
import time

import pytest
from orphans_lab import make_config, put
from test_scale_store import build

from djtui.services.database import Database
from djtui.services.orphans import OrphanService, ScanCancelled, ScanProgress
from djtui.services.orphans import directories as directories_mod
from djtui.services.orphans import service as service_mod
from djtui.tui.app import DjtuiApp
from djtui.tui.screens.orphans import OrphansScreen

FILES = 2500


@pytest.fixture
def db(server):
    d = Database(server.settings)
    yield d
    d.close()


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tmpdir"
    for n in range(FILES):  # one file a folder: the walk asks whether to stop every 256 folders
        put(root, f"d{n:04d}/f", b"x")
    return root


def test_a_walk_reports_the_objects_it_listed(server, db, tmp_path, tree, monkeypatch):
    monkeypatch.setattr(service_mod, "PROGRESS_EVERY_S", 0.0)
    svc = OrphanService(make_config(server, tmp_path, f"orphans:\n  temp_directories: [{tree}]\n"), db)
    seen: list[ScanProgress] = []
    result = svc.scan(svc.resolve(f"dir:{tree}"), progress=seen.append)
    assert result.total == FILES
    listed = [p.listed for p in seen]
    assert listed == sorted(listed) and listed[0] == 1000, listed  # counted as it goes, not once at the end
    assert seen[-1] == ScanProgress(f"dir:{tree}", listed=FILES, rows=0, done=True)
    assert all(not p.done for p in seen[:-1])
    # no callback after the scan: the next scan without one hears nothing and costs nothing
    svc.scan(svc.resolve(f"dir:{tree}"))
    assert len(seen) == len(listed)


def test_the_streamed_scan_reports_rows_and_objects(server, db, admin_conn, schema_name, tmp_path, monkeypatch):
    monkeypatch.setattr(service_mod, "PROGRESS_EVERY_S", 0.0)
    root = tmp_path / "store"
    build(admin_conn, root, schema_name, (2, 2), n=1500)
    svc = OrphanService(make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: {root}\n"),
                        db)
    seen: list[ScanProgress] = []
    result = svc.scan(svc.resolve(f"external:{schema_name}:main"), progress=seen.append)
    (blob_rows,) = admin_conn_count(admin_conn, schema_name)
    last = seen[-1]
    assert last.done and last.source == f"external:{schema_name}:main"
    assert last.listed == result.total and last.rows == result.rows
    # during the merge: the blob rows the server handed over, all of them by the last merged chunk
    during = [p for p in seen if not p.done]
    assert during and max(p.rows for p in during) == blob_rows
    assert max(p.listed for p in during) > 0


def admin_conn_count(conn, schema: str) -> tuple[int]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{schema}`.`~external_main` "
                    "WHERE attachment_name IS NULL AND filepath IS NULL")
        return (int(cur.fetchone()[0]),)


async def _settle(pilot, until, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        await pilot.pause(0.05)
    assert until()


async def test_the_screen_shows_progress_live_and_c_stops_the_walk(server, tmp_path, tree, monkeypatch):
    monkeypatch.setattr(service_mod, "PROGRESS_EVERY_S", 0.0)
    real = directories_mod.list_files
    hold, walked = threading.Event(), []
    hold.set()

    def held(*args, **kwargs):
        """The real walk, paused after 1,200 files until released or cancelled (a store that lists slowly)."""
        cancelled = kwargs["cancelled"]
        for n, o in enumerate(real(*args, **kwargs), 1):
            walked.append(o)
            if n == 1200:
                deadline = time.monotonic() + 15
                while hold.is_set() and not cancelled() and time.monotonic() < deadline:
                    time.sleep(0.01)
            yield o

    monkeypatch.setattr(directories_mod, "list_files", held)
    src = f"dir:{tree}"
    app = DjtuiApp(config=make_config(server, tmp_path, f"orphans:\n  temp_directories: [{tree}]\n"))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, OrphansScreen)
        await _settle(pilot, lambda: screen.progress is not None and screen.progress.listed >= 1000)
        status = str(screen.query_one("#orphans-status").render())
        assert f"scanning {src} (1 of 1): 1,000 object(s) listed, 0 row(s) read" in status, status
        assert screen.scanning and not screen.results

        await pilot.press("c")
        await _settle(pilot, lambda: screen.scan_cancelled and not screen.scanning)
        assert "cancelled" in str(screen.query_one("#orphans-status").render())
        assert screen.results == {}
        stopped_at = len(walked)
        assert 1200 <= stopped_at < FILES, "the walk itself stopped, not only the worker"
        time.sleep(0.2)
        assert len(walked) == stopped_at

        hold.clear()  # now at full speed: the scan ends, and its last report says all it listed
        walked.clear()
        await pilot.press("r")
        await _settle(pilot, lambda: src in screen.results and not screen.scanning)
        await _settle(pilot, lambda: screen.progress is not None and screen.progress.done)
        assert screen.progress.listed == screen.results[src].total == FILES
        status = str(screen.query_one("#orphans-status").render())
        assert "scanning" not in status and f"{FILES} checked" in status, status  # no late report over the end


def test_a_cancelled_scan_reports_no_end(server, db, tmp_path, tree):
    svc = OrphanService(make_config(server, tmp_path, f"orphans:\n  temp_directories: [{tree}]\n"), db)
    seen: list[ScanProgress] = []
    ev = threading.Event()
    ev.set()
    with pytest.raises(ScanCancelled):
        svc.scan(svc.resolve(f"dir:{tree}"), ev, progress=seen.append)
    assert not any(p.done for p in seen)
