"""The Orphans screen with the Pilot: sources scanned, items listed, quarantine with typed confirmation."""

from __future__ import annotations

import time

from orphans_lab import make_config

from djtui.domain import stores as ds
from djtui.tui.app import DjtuiApp
from djtui.tui.screens.orphans import OrphansScreen
from djtui.tui.widgets.confirm import ConfirmTyped
from djtui.tui.widgets.orphans_list import OrphanList


async def _settle(app, pilot, until, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)
    assert until()


async def test_screen_scans_selects_and_quarantines(server, tmp_path, legacy_lab):
    cfg = make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n")
    src = f"external:{legacy_lab.schema}:main"
    (untracked,) = legacy_lab.expected[ds.UNTRACKED_OBJECT]
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, OrphansScreen)
        await _settle(app, pilot, lambda: src in screen.results and screen.current is not None)
        screen.show_source(src)
        await pilot.pause()
        listing = screen.query_one(OrphanList)
        assert {(i.reason, i.path) for i in listing.items} == {
            (r, p) for r, paths in legacy_lab.expected.items() for p in paths}
        # select the untracked object only, then quarantine it
        listing.focus()
        target = next(n for n, i in enumerate(listing.items) if i.path == untracked)
        listing.action_jump(target)
        await pilot.press("space")
        assert listing.selected_items()[0].path == untracked
        await pilot.press("Q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmTyped)
        await pilot.press(*"QUARANTIN")
        await pilot.press("enter")  # not yet the word: nothing happens
        assert isinstance(app.screen, ConfirmTyped)
        await pilot.press("E", "enter")
        await _settle(app, pilot, lambda: not (legacy_lab.location / untracked).exists())
        await _settle(app, pilot, lambda: screen.query_one("#batches").row_count == 1)
        await pilot.press("z")
        await pilot.pause()
        assert screen.query_one("#orphans-tabs").active == "quarantine"


async def test_screen_refuses_quarantine_when_readonly(server, tmp_path, legacy_lab):
    cfg = make_config(server, tmp_path, f"readonly: true\nstores:\n  main:\n    protocol: file\n"
                                        f"    location: {legacy_lab.location}\n")
    src = f"external:{legacy_lab.schema}:main"
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("3")
        screen = app.screen
        await _settle(app, pilot, lambda: src in screen.results)
        screen.show_source(src)
        await pilot.press("Q")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmTyped)
        (untracked,) = legacy_lab.expected[ds.UNTRACKED_OBJECT]
        assert (legacy_lab.location / untracked).exists()


async def test_screen_deletes_an_unused_row_after_typed_confirmation(server, tmp_path, legacy_lab, admin_conn):
    cfg = make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n")
    src = f"external:{legacy_lab.schema}:main"
    unused = legacy_lab.hashes["unused"]

    def row_exists() -> bool:
        with admin_conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{legacy_lab.schema}`.`~external_main` WHERE hash = %s",
                        (unused.bytes,))
            return cur.fetchone()[0] == 1

    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("3")
        screen = app.screen
        await _settle(app, pilot, lambda: src in screen.results and not screen.scanning)
        screen.show_source(src)
        await pilot.pause()
        listing = screen.query_one(OrphanList)
        listing.focus()
        listing.action_jump(next(n for n, i in enumerate(listing.items) if i.reason == ds.UNUSED_ROW))
        await pilot.press("space")
        await pilot.press("Q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmTyped)
        lines = app.screen.lines
        assert lines[0].startswith("1 of ") and " rows (" in lines[0]  # the share guard's view, rows only
        assert any(line.startswith("1 row(s)") for line in lines)
        assert not any("file(s)" in line or " files (" in line for line in lines)  # rows only, no files
        await pilot.press(*"QUARANTINE", "enter")
        await _settle(app, pilot, lambda: not row_exists())
        # the other orphans of the source were not selected, so they are all still there
        for reason in (ds.UNTRACKED_OBJECT, ds.ZERO_BYTE):
            (p,) = legacy_lab.expected[reason]
            assert (legacy_lab.location / p).exists()
