"""Quitting while transfers run: ask first, cancel cleanly, never a traceback (issue 13, item 5)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import time
from pathlib import Path

import psutil
import pytest

from djtui.config import parse_config
from djtui.domain.sessions import SessionKey, parse_date
from djtui.services.transfers import rsync_args, run_rsync
from djtui.tui.app import DjtuiApp, QuitScreen

DATE = "20250301"

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")


def slow_lab(tmp_path: Path, sessions: tuple[str, ...] = ("p001", "p002")):
    """Sessions of 3 MB each, copied at 300 KB/s: about 10 s of rsync per session."""
    for pid in sessions:
        d = tmp_path / "source" / pid / DATE
        d.mkdir(parents=True)
        for i in range(3):
            (d / f"cam{i}.mp4").write_bytes(os.urandom(1_000_000))
    (tmp_path / "dest").mkdir()
    return parse_config(f"""
backup:
  source:
    base_path: {tmp_path}/source
    path_structure: "{{participant_id}}/{{session_date}}"
  destinations:
    - name: net
      base_path: {tmp_path}/dest
      path_structure: "{{session_date}}/{{participant_id}}"
      verify_mount: false
  filters:
    participant_prefixes: ["p"]
  rsync:
    flags: "-a --bwlimit=300"
state_dir: {tmp_path}/state
audit_log: {tmp_path}/audit.jsonl
""")


def rsync_children() -> list[psutil.Process]:
    return [c for c in psutil.Process().children(recursive=True) if c.name() == "rsync"]


async def until(pilot, what, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def test_quit_with_transfers_running_asks_then_cancels_them(tmp_path):
    cfg = slow_lab(tmp_path)
    app = DjtuiApp(config=cfg, connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        queue = app.ctx.job_queue()
        first = queue.submit("sync", SessionKey("p001", parse_date(DATE)), "net")
        second = queue.submit("sync", SessionKey("p002", parse_date(DATE)), "net")
        await until(pilot, lambda: first.state == "running" and rsync_children())
        (rsync,) = [p for p in rsync_children() if str(tmp_path) in " ".join(p.cmdline())][:1]

        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, QuitScreen)
        assert app.screen.question == "2 transfers running or queued (1 running, 1 queued): quit and cancel them?"
        await pilot.press("n")  # keep them: nothing stops
        await pilot.pause()
        assert not isinstance(app.screen, QuitScreen)
        assert first.state == "running" and rsync.is_running()

        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: not first.active and not second.active)
    assert (first.state, first.message) == ("cancelled", "cancelled by the operator")
    assert (second.state, second.message) == ("cancelled", "cancelled before it started")
    assert not rsync.is_running() or rsync.status() == psutil.STATUS_ZOMBIE
    assert not rsync_children()


async def test_quit_without_transfers_quits_at_once(tmp_path):
    app = DjtuiApp(config=slow_lab(tmp_path, ()), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert not isinstance(app.screen, QuitScreen)
    assert app.return_code in (0, None)


async def test_rsync_cancelled_with_its_readers_leaves_no_unretrieved_error(tmp_path, caplog):
    """What the event loop does at exit (cancel every task at once) printed
    `_GatheringFuture exception was never retrieved ... CancelledError` under the app."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(3_000_000))
    args = rsync_args("-a --bwlimit=300", src, tmp_path / "dst")
    task = asyncio.ensure_future(run_rsync(args))
    for _ in range(200):
        await asyncio.sleep(0.02)
        if rsync_children():
            break
    await asyncio.sleep(0.3)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in others:  # as asyncio.run's teardown does
        t.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    assert task.cancelled()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        for _ in range(3):
            gc.collect()
            await asyncio.sleep(0.01)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not rsync_children()


def test_the_app_context_refuses_undeclared_attributes(tmp_path):
    """Screens and services share state through declared fields only (issue 14: no ad-hoc attributes)."""
    from djtui.tui.context import AppContext

    ctx = DjtuiApp(config=slow_lab(tmp_path, ()), connect=False).ctx
    assert isinstance(ctx, AppContext)
    with pytest.raises(AttributeError):
        ctx._session_jobs = object()  # type: ignore[attr-defined]
