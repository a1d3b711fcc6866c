"""The Export screen on a lab Spyglass 0.6 built itself (tests/conformance/spyglass_lab.py): the names
people use find their tables, internal tables stay out of the list, LFPBand's ancestry shows Session once,
and the JSON key leaf `export plan --leaf` takes is taken by the screen too."""

from __future__ import annotations

import re

import pytest
from textual.widgets import Input, OptionList, Static, Tree

from djtui.config import load_config
from djtui.tui.app import DjtuiApp
from tests.conformance.spyglass_lab import PASSWORD_ENV, SpyglassLab
from tests.export.test_screen import _highlight, _open_export, _settle

pytestmark = pytest.mark.conformance


def _pieces(line: str, pieces: set[str]) -> bool:
    """``line`` is a run of whole dot-separated pieces of the names (or one middle-truncated piece)."""
    if not line:
        return True
    if "…" in line:  # a piece longer than the line: middle-truncated, its head and tail whole words
        head, tail = line.split("…", 1)
        return any(p.startswith(head) and p.endswith(tail) for p in pieces)
    return any(line.startswith(p) and _pieces(line[len(p):], pieces) for p in pieces)


def _walk(node):
    yield node
    for child in node.children:
        yield from _walk(child)


async def test_the_export_screen_on_a_spyglass_lab(spyglass_lab: SpyglassLab, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, spyglass_lab.server.password.reveal())
    app = DjtuiApp(config=load_config(spyglass_lab.config))
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await _open_export(app, pilot)
        opts = screen.query_one("#export-tables", OptionList)
        shown = [str(opts.get_option_at_index(i).prompt) for i in range(opts.option_count)]
        internal = [n for n in screen.names if n.internal]
        assert internal and not any("~" in s for s in shown)
        assert len(shown) + len(internal) == len(screen.names)
        assert {"common_interval.IntervalList", "common_ephys.LFPBand", "common_nwbfile.AnalysisNwbfile",
                "common_device.Probe.Electrode"} <= set(shown)
        search = screen.query_one("#export-search", Input)
        for text, want in (("IntervalList", "common_interval.IntervalList"), ("LFPBand", "common_ephys.LFPBand"),
                           ("AnalysisNwbfile", "common_nwbfile.AnalysisNwbfile"),
                           ("interval_list", "common_interval.IntervalList")):
            search.value = text
            await pilot.pause()
            found = [str(opts.get_option_at_index(i).prompt) for i in range(opts.option_count)]
            assert want in found, (text, found)
        search.value = ""
        await pilot.pause()
        # every line on screen is a whole name or whole pieces of one, broken after a dot: never inside a word
        pieces = {p for name in shown for p in re.split(r"(?<=\.)", name) if p}
        rendered = [opts.render_line(y).text.strip() for y in range(opts.size.height)]
        assert [line for line in rendered if not _pieces(line, pieces)] == [], rendered
        assert opts.virtual_size.height < 1.3 * opts.option_count  # most names on one line at 160 columns
        opts.focus()
        _highlight(opts, "common_ephys.__l_f_p_band")
        await pilot.pause()
        tree = screen.query_one("#export-tree", Tree)
        up = tree.root.children[0]
        for node in list(_walk(up)):  # open everything once: a repeat does not open again
            if node.allow_expand:
                node.expand()
                await pilot.pause()
        sessions = [n for n in _walk(up) if str(n.label).startswith("common_session.Session")]
        assert len(sessions) >= 2
        assert sum(1 for n in sessions if n.allow_expand) == 1
        assert all("(shown above)" in str(n.label) for n in sessions if not n.allow_expand)
        _highlight(opts, "common_ephys._electrode")
        await pilot.pause()
        field = screen.query_one("#export-restriction", Input)
        field.value = '{"nwb_file_name": "alpha_.nwb", "electrode_id": 0}'
        await pilot.pause(0.6)
        await _settle(app, pilot)
        status = str(screen.query_one("#export-restriction-status", Static).render())
        assert status.startswith("✓ 1 rows"), status
