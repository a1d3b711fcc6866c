"""The Orphans screen acts on what it shows (issue 13, items 3 and 7).

What is highlighted in the sources table is what the items pane, the status line and ``Q`` refer
to, after any rescan or restore; the share guard is shown before the word is typed and can be
overridden in the dialog with a typed percentage, which reaches the service as ``max_share``.
"""

from __future__ import annotations

import time
from pathlib import Path

from orphans_lab import make_config, put

from djtui.tui.app import DjtuiApp
from djtui.tui.screens.orphans import OrphansScreen, middle_truncate
from djtui.tui.widgets.confirm import ConfirmTyped
from djtui.tui.widgets.orphans_list import OrphanList

STALE = time.time() - 8 * 86400
FRESH = time.time() - 3600


async def _settle(app, pilot, until, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)
    assert until()


def _temp_dirs(tmp_path: Path, names: tuple[str, ...], files: int) -> list[Path]:
    """Temp directories with one stale file and ``files - 1`` fresh ones each."""
    out = []
    for name in names:
        d = tmp_path / name
        put(d, "old.tmp", b"stale " + name.encode(), mtime=STALE)
        for n in range(files - 1):
            put(d, f"new{n}.tmp", b"fresh", mtime=FRESH)
        out.append(d)
    return out


def _cursor(screen: OrphansScreen) -> str | None:
    """The source under the sources table's cursor, read from the table itself."""
    table = screen.query_one("#sources")
    if not table.row_count:
        return None
    return str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)


def _pane_sources(screen: OrphansScreen) -> set[str]:
    return {i.source for i in screen.query_one(OrphanList).items}


async def _open(app, pilot, dirs: list[Path]) -> OrphansScreen:
    await app.workers.wait_for_complete()
    await pilot.press("3")
    screen = app.screen
    assert isinstance(screen, OrphansScreen)
    await _settle(app, pilot, lambda: all(f"dir:{d}" in screen.results for d in dirs) and not screen.scanning)
    return screen


async def test_rescan_and_restore_keep_cursor_pane_status_and_q_on_one_source(server, tmp_path):
    a, b = _temp_dirs(tmp_path, ("atmp", "btmp"), files=10)
    cfg = make_config(server, tmp_path, f"orphans:\n  temp_directories: [{a}, {b}]\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(app, pilot, [a, b])
        table = screen.query_one("#sources")
        table.focus()
        await pilot.press("down")
        await pilot.pause()
        assert _cursor(screen) == f"dir:{b}"
        assert _pane_sources(screen) == {f"dir:{b}"}

        # quarantine b's stale file from the highlighted row
        await pilot.press("Q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmTyped) and f"dir:{b}" in app.screen.title_text
        await pilot.press(*"QUARANTINE", "enter")
        await _settle(app, pilot, lambda: not (b / "old.tmp").exists())
        await _settle(app, pilot, lambda: not screen.scanning and screen.query_one("#batches").row_count == 1)
        # the rescan after the quarantine kept the cursor on b, and the pane and the status agree
        assert _cursor(screen) == f"dir:{b}"
        assert screen.query_one(OrphanList).items == ()  # b has no orphan left
        assert str(screen.query_one("#orphans-status").render()).startswith(f"dir:{b}")

        # restore it from the quarantine tab: the restore's rescan must not move the sources cursor
        await pilot.press("z")
        screen.query_one("#batches").focus()
        await pilot.press("R")
        await pilot.pause()
        await pilot.press(*"RESTORE", "enter")
        await _settle(app, pilot, lambda: (b / "old.tmp").exists())
        await _settle(app, pilot, lambda: not screen.scanning and f"dir:{b}" in screen.results)
        assert _cursor(screen) == f"dir:{b}"
        assert _pane_sources(screen) == {f"dir:{b}"}
        assert str(screen.query_one("#orphans-status").render()).startswith(f"dir:{b}")

        # and Q after the restore acts on b, not on a
        await pilot.press("o")
        table.focus()
        await pilot.press("Q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmTyped)
        assert app.screen.title_text.endswith(f"of dir:{b}") or "btmp" in app.screen.title_text
        assert "atmp" not in app.screen.title_text
        await pilot.press(*"QUARANTINE", "enter")
        await _settle(app, pilot, lambda: not (b / "old.tmp").exists())
        assert (a / "old.tmp").exists()


async def test_items_pane_follows_the_cursor_to_an_unscanned_or_rescanned_source(server, tmp_path):
    a, b = _temp_dirs(tmp_path, ("atmp", "btmp"), files=10)
    cfg = make_config(server, tmp_path, f"orphans:\n  temp_directories: [{a}, {b}]\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(app, pilot, [a, b])
        screen.query_one("#sources").focus()
        await pilot.press("down")
        await pilot.pause()
        assert _pane_sources(screen) == {f"dir:{b}"}
        # a rescan: every step of it shows what is highlighted, never a pane of another source
        await pilot.press("r")
        await _settle(app, pilot, lambda: not screen.scanning and f"dir:{b}" in screen.results)
        assert _cursor(screen) == f"dir:{b}" == screen.current
        assert _pane_sources(screen) == {f"dir:{b}"}
        # b's directory goes away: after a rescan the cursor is still on b (the source is configured)
        # and the pane shows b's (empty) findings, not a's
        for f in b.iterdir():
            f.unlink()
        await pilot.press("r")
        await _settle(app, pilot, lambda: not screen.scanning and f"dir:{b}" in screen.results)
        assert _cursor(screen) == f"dir:{b}"
        assert screen.query_one(OrphanList).items == ()
        await pilot.press("Q")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmTyped)  # nothing to act on in b; a is not touched
        assert (a / "old.tmp").exists()


async def test_q_without_selection_names_its_scope_truncated_to_80_columns(server, tmp_path):
    (long,) = _temp_dirs(tmp_path, ("very_long_directory_name_" * 4 + "analysis",), files=10)
    cfg = make_config(server, tmp_path, f"orphans:\n  temp_directories: [{long}]\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot, [long])
        screen.query_one("#sources").focus()
        await pilot.press("Q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmTyped)
        title = app.screen.title_text
        assert title.startswith("Quarantine all 1 item of dir:/")
        assert "…" in title and title.endswith("_analysis")
        assert len(title) <= 68  # the dialog's inner width at 80 columns
        assert app.screen.query_one(".title").region.width >= len(title)


def test_middle_truncate():
    assert middle_truncate("dir:/a/b", 20) == "dir:/a/b"
    t = middle_truncate("dir:/" + "x" * 50 + "/analysis", 24)
    assert len(t) == 24 and t.startswith("dir:/") and t.endswith("/analysis") and "…" in t


async def test_share_guard_shown_before_typing_and_overridden_by_a_typed_percentage(server, tmp_path):
    (t,) = _temp_dirs(tmp_path, ("tmp",), files=4)  # one stale file of four: 25% > the default 20%
    cfg = make_config(server, tmp_path, f"orphans:\n  temp_directories: [{t}]\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot, [t])
        screen.query_one("#sources").focus()
        await pilot.press("Q")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmTyped)
        plan = "\n".join(dialog.lines)
        assert f"1 of 4 files (25%) of dir:{t}; the guard allows 20%." in plan
        assert dialog.expected == "QUARANTINE 25%"
        # the plain word does not confirm an over-the-guard run
        await pilot.press(*"QUARANTINE", "enter")
        await pilot.pause()
        assert app.screen is dialog and (t / "old.tmp").exists()
        await pilot.press(" ", "2", "5", "%", "enter")
        await _settle(app, pilot, lambda: not (t / "old.tmp").exists())
        assert all((t / f"new{n}.tmp").exists() for n in range(3))


async def test_share_within_the_guard_is_shown_and_needs_the_plain_word(server, tmp_path):
    (t,) = _temp_dirs(tmp_path, ("tmp",), files=10)
    cfg = make_config(server, tmp_path, f"orphans:\n  temp_directories: [{t}]\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await _open(app, pilot, [t])
        screen.query_one("#sources").focus()
        await pilot.press("Q")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmTyped)
        assert f"1 of 10 files (10%) of dir:{t}; the guard allows 20%." in dialog.lines
        assert dialog.expected == "QUARANTINE"
