"""`?` on each screen explains what a person needs there (meanings, not only keys), with keys as typed."""

from __future__ import annotations

import pytest

from djtui.config import parse_config
from djtui.domain.sessions import DjStatus, FileEntry, Listing, SessionKey, SessionStatus, parse_date
from djtui.tui.app import SCREEN_TABLE, DjtuiApp
from djtui.tui.help import SESSIONS
from djtui.tui.widgets.help import HelpScreen

MEANINGS = {
    "sessions": ["DJ", "Backup", "Verified", "Safe", "⚠", "The Safe rule", "special files", "symbolic links",
                 "partial backup"],
    "transfers": ["Cancel", "Retry", "retry of #N", "ETA"],
    "orphans": ["Quarantine", "Restore", "Purge", "share guard", "max_share", "row batch"],
    "export": ["A leaf", "db.table:RESTRICTION", "A restriction", '{"a": 1}', "IN (1, 2)", "sql", "script",
               "docker"],
    "accounts": ["dj_guest", "dj_collab", "dj_user", "dj_admin", "Drift"],
    "backups": ["Verify", "Restore", "Prune", "verified.json", "PRUNE"],
}
RAW_KEY_NAMES = ["slash", "question_mark", "escape", "(sessions)", "(orphans)"]


def _config(tmp_path, extra: str = ""):
    return parse_config(f"state_dir: {tmp_path}/state\naudit_log: {tmp_path}/audit.jsonl\n{extra}")


async def _help_of(app, pilot, name: str) -> str:
    app.screen.set_focus(None)
    await pilot.press(SCREEN_TABLE[name].key)
    await pilot.pause()
    app.screen.set_focus(None)
    await pilot.press("question_mark")
    await pilot.pause()
    assert isinstance(app.screen, HelpScreen), name
    text = app.screen.body()
    await pilot.press("escape")
    await pilot.pause()
    return text


@pytest.mark.parametrize("name", list(MEANINGS))
async def test_help_of_each_screen_explains_its_meanings_with_keys_as_typed(tmp_path, name):
    app = DjtuiApp(config=_config(tmp_path), connect=False)
    async with app.run_test(size=(100, 30)) as pilot:
        text = await _help_of(app, pilot, name)
    for word in MEANINGS[name]:
        assert word in text, (name, word)
    assert SCREEN_TABLE[name].title in text
    for raw in RAW_KEY_NAMES:
        assert raw not in text, (name, raw)
    assert "[b]?[/b]" in text.replace(" ", "") or "?  Help" in text


async def test_help_shows_remapped_keys_and_the_ids_to_remap(tmp_path):
    app = DjtuiApp(config=_config(tmp_path, "keys:\n  sessions.delete: x\n  nav.down: ctrl+n\n"), connect=False)
    async with app.run_test(size=(100, 30)) as pilot:
        text = await _help_of(app, pilot, "sessions")
    lines = text.splitlines()
    delete = next(line for line in lines if "sessions.delete" in line)
    assert "[b]x[/b]" in delete.replace(" ", "") and "Delete" in delete
    down = next(line for line in lines if "nav.down" in line)
    assert "ctrl+n" in down and "[b]j" not in down
    # on Sessions `/` filters: the help says the habit's key does something else here
    search = next(line for line in lines if "nav.search" in line)
    assert "Filter" in search


async def test_help_under_read_only_leaves_out_the_write_keys(tmp_path):
    app = DjtuiApp(config=_config(tmp_path, "readonly: true\n"), connect=False)
    async with app.run_test(size=(100, 30)) as pilot:
        text = await _help_of(app, pilot, "sessions")
    assert "sessions.delete" not in text and "sessions.sync" not in text
    assert "sessions.verify" in text  # verifying writes nothing in the lab
    assert "djtui is read-only now" in text


def _status(**kw) -> SessionStatus:
    from djtui.domain.sessions import DestinationStatus, compare_sizes
    files = kw.pop("files", (FileEntry("a.mp4", 10, 1),))
    src = Listing(exists=True, files=files, special=kw.pop("special", ()), symlinks=kw.pop("symlinks", ()))
    dst = DestinationStatus("nas", "/nas", listing=src, comparison=compare_sizes(src, src), drift=())
    return SessionStatus(SessionKey("p1", parse_date("20240101")), "p1", "/data/p1/20240101", src,
                         DjStatus(imported=kw.pop("dj", True)), (dst,))


def test_the_safe_rule_in_the_help_is_the_rule_the_code_applies():
    """Each condition the help names makes a safe session unsafe when it alone fails."""
    assert _status().safe
    assert "DJ ✓" in SESSIONS and not _status(dj=False).safe
    assert "at least one file" in SESSIONS and not _status(files=()).safe
    assert "special files" in SESSIONS and not _status(special=("sock",)).safe
    assert "symbolic links" in SESSIONS and not _status(symlinks=("link",)).safe


def test_the_orphans_help_explains_every_reason_the_scan_can_give():
    from djtui.domain.stores import REASONS
    from djtui.tui.help import ORPHANS
    missing = [r for r in REASONS if f"[b]{r}[/b]" not in ORPHANS and f"[b]{r.rsplit('-', 1)[0]}-*[/b]" not in ORPHANS]
    assert missing == []
