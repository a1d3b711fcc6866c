"""Scans stop when asked: the service between batches, the screen on `c` and when left."""

from __future__ import annotations

import threading
import time

import pytest
from orphans_lab import make_config, put

from djtui.services.database import Database
from djtui.services.orphans import OrphanService, ScanCancelled
from djtui.services.orphans import reads as orphans_mod
from djtui.tui.app import DjtuiApp
from djtui.tui.screens.orphans import OrphansScreen


class AfterN:
    """A cancel flag that turns on at its n-th question: proves the work asked in between."""

    def __init__(self, n: int):
        self.n, self.asked = n, 0

    def is_set(self) -> bool:
        self.asked += 1
        return self.asked >= self.n


@pytest.fixture
def db(server):
    d = Database(server.settings)
    yield d
    d.close()


def test_service_scans_stop_between_batches(server, db, tmp_path, legacy_lab, monkeypatch):
    tree = tmp_path / "tmpdir"
    for n in range(700):
        put(tree, f"d{n:03d}/f", b"x")
    cfg = make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n"
                                        f"orphans:\n  temp_directories: [{tree}]\n")
    svc = OrphanService(cfg, db)
    walk = AfterN(3)  # the start check, then the walk's check every 256 directories
    with pytest.raises(ScanCancelled):
        svc.scan(svc.resolve(f"dir:{tree}"), walk)
    assert walk.asked == 3
    # rows are streamed in batches; the flag is asked after each
    monkeypatch.setattr(orphans_mod, "FETCH_BATCH", 1)
    rows = AfterN(4)
    with pytest.raises(ScanCancelled):
        svc.scan(svc.resolve(f"external:{legacy_lab.schema}:main"), rows)
    assert rows.asked >= 4
    # the flag is the caller's for one scan only: the next scan runs to the end
    assert svc.scan(svc.resolve(f"dir:{tree}")).total == 700
    ev = threading.Event()
    ev.set()
    with pytest.raises(ScanCancelled):
        svc.scan(svc.resolve(f"external:{legacy_lab.schema}:main"), ev)


async def _settle(app, pilot, until, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        await pilot.pause(0.05)
    assert until()


async def test_screen_cancels_on_key_and_when_left(server, tmp_path, legacy_lab, monkeypatch):
    cfg = make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n")
    src = f"external:{legacy_lab.schema}:main"
    real = OrphanService._scan
    hold = threading.Event()
    hold.set()
    started, finished = threading.Event(), []

    def slow(self, source):
        # a listing that takes long: the thread waits until the screen asks it to stop
        started.set()
        deadline = time.monotonic() + 15
        while hold.is_set() and not self.cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            return real(self, source)
        except ScanCancelled:
            finished.append(source.name)
            raise

    monkeypatch.setattr(OrphanService, "_scan", slow)
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, OrphansScreen)
        await _settle(app, pilot, started.is_set)
        assert screen.scanning
        await pilot.press("c")
        await _settle(app, pilot, lambda: screen.scan_cancelled and not screen.scanning)
        assert finished, "the scan thread itself stopped, not only the worker"
        assert "cancelled" in str(screen.query_one("#orphans-status").render())
        assert screen.results == {}

        # leaving the screen cancels a running scan; coming back scans again
        started.clear()
        finished.clear()
        await pilot.press("r")
        await _settle(app, pilot, started.is_set)
        await pilot.press("1")
        await _settle(app, pilot, lambda: bool(finished) and not screen.scanning)
        assert screen.scan_cancelled
        hold.clear()  # from now on scans run at full speed
        await pilot.press("3")
        await _settle(app, pilot, lambda: src in screen.results and not screen.scanning)
        assert not screen.scan_cancelled
