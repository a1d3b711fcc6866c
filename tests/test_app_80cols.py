"""The app at 80 columns: every footer key whole, and a long user name that leaves the grant matrix in view.

What is asserted is what the terminal shows: the rendered lines of the screen (the compositor's strips).
"""

from __future__ import annotations

from pathlib import Path

from djtui.config import parse_config
from djtui.tui.app import DjtuiApp
from djtui.tui.screens.export import ExportScreen


def _lines(app: DjtuiApp) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


def _footer(app: DjtuiApp) -> str:
    return _lines(app)[-1]


def _offline(tmp_path: Path) -> DjtuiApp:
    return DjtuiApp(config=parse_config(f"state_dir: {tmp_path}/state\n"), connect=False)


async def test_export_footer_keys_are_whole_at_80_columns(tmp_path: Path) -> None:
    """Before: '... w Write m Save graph v Ver▏^p palette' (Verify cut off)."""
    app = _offline(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, ExportScreen)
        screen.set_focus(None)
        await pilot.pause(0.3)
        footer = _footer(app)
        for key in ("? Help", "q Quit", "r Restrict", "f Files", "x Remove", "w Write", "v Verify", "^p palette"):
            assert key in footer, footer
        assert "m Save graph" not in footer  # in help (?) and the palette at this width
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        await pilot.press("m")  # still bound: no leaf yet, and it says so
        await pilot.pause(0.2)
        assert any("add a leaf first" in n for n in notes), notes

        # while a database wait runs, Cancel wait comes first: the keys that no longer fit leave whole
        app._wait_running = lambda: True  # the state a long wait puts the footer in (the key is the app's)
        screen.refresh_bindings()
        await pilot.pause(0.3)
        footer = _footer(app)
        assert footer.startswith("^x Cancel wait ? Help q Quit"), footer
        assert "v Verify" in footer and "w Write" in footer and "^p palette" in footer, footer
        # the Leaves table focused: Remove (what acts there) takes Restrict's place, nothing is cut
        screen.query_one("#export-leaves").focus()
        await pilot.pause(0.3)
        footer = _footer(app)
        assert "x Remove" in footer and "v Verify" in footer and "r Restrict" not in footer, footer
        app._wait_running = lambda: False
        screen.refresh_bindings()
        await pilot.pause(0.3)

        await pilot.resize_terminal(160, 50)  # room for every key again
        await pilot.pause(0.5)
        footer = _footer(app)
        for key in ("r Restrict", "f Files", "x Remove", "w Write", "m Save graph", "v Verify"):
            assert key in footer, footer
