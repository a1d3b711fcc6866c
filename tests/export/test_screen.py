"""The Export screen driven by Pilot against the real server."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Input, OptionList, Static, Tree

from djtui.config import parse_config
from djtui.tui.app import DjtuiApp
from djtui.tui.screens.export import ExportScreen
from tests.export import randgraph
from tests.export.conftest import config_text
from tests.export.test_cascade import _fixed_schema


async def _settle(app, pilot):
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause(0.5)
    await app.workers.wait_for_complete()


async def test_pick_tree_leaves_counts_and_write(server, admin_conn, schema, tmp_path):
    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    cfg = parse_config(config_text(server, tmp_path) +
                       f"export:\n  schema_prefixes: [{schema}]\n  out_dir: {tmp_path}/exports\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("4")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ExportScreen)
        opts = screen.query_one("#export-tables", OptionList)
        assert opts.option_count == 4
        screen.query_one("#export-search", Input).focus()
        await pilot.press(*"sess")
        await pilot.pause()
        assert opts.option_count == 2  # session and session__probe
        opts.focus()
        opts.highlighted = [opts.get_option_at_index(i).id for i in range(2)].index(f"{schema}.session")
        await pilot.pause()
        tree = screen.query_one("#export-tree", Tree)
        labels = [str(n.label) for n in tree.root.children[0].children]
        assert f"{schema}.subject  [r1_0_c0→c0]" in labels and f"{schema}.subject" in labels
        screen.query_one("#export-restriction", Input).focus()
        await pilot.press(*"c1 = 1;")
        await pilot.pause()
        status = screen.query_one("#export-restriction-status", Static)
        assert status.has_class("bad") and "';'" in str(status.render())
        await pilot.press("backspace")
        await pilot.pause(0.6)
        await _settle(app, pilot)
        assert status.has_class("good") and "1 rows" in str(status.render())
        await pilot.press("enter")
        await _settle(app, pilot)
        counts = screen.query_one("#export-counts", DataTable)
        got = {counts.get_row_at(i)[0]: int(counts.get_row_at(i)[1]) for i in range(counts.row_count)}
        # session 1,1 -> subject 1 and 3 (renamed FK); its parts (2) -> probe types 2, 3
        assert got == {f"{schema}.session": 1, f"{schema}.subject": 2, f"{schema}.session__probe": 2,
                       f"{schema}.probe_type": 2}
        assert "4 tables, 7 rows; 0 stored files" in str(screen.query_one("#export-summary", Static).render())
        counts.focus()
        await pilot.press("w")
        await _settle(app, pilot)
        manifests = list((tmp_path / "exports").glob("*/manifest.json"))
        assert len(manifests) == 1
        written = {t["table"]: t["rows"] for t in json.loads(manifests[0].read_text())["tables"]}
        assert written == got
        await pilot.press("m")
        await _settle(app, pilot)
        assert list((tmp_path / "exports").glob("*/export-graph.mmd"))


async def test_a_restriction_the_server_rejects_is_not_added(server, admin_conn, schema, tmp_path):
    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    cfg = parse_config(config_text(server, tmp_path) + f"export:\n  schema_prefixes: [{schema}]\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        await pilot.press("4")
        await _settle(app, pilot)
        screen = app.screen
        opts = screen.query_one("#export-tables", OptionList)
        opts.focus()
        opts.highlighted = 0
        await pilot.pause()
        screen.query_one("#export-restriction", Input).focus()
        await pilot.press(*"nocol = 1")
        await pilot.pause(0.6)
        await _settle(app, pilot)
        status = screen.query_one("#export-restriction-status", Static)
        assert status.has_class("bad") and "nocol" in str(status.render())
        await pilot.press("enter")
        await _settle(app, pilot)
        assert screen.leaves == []
        assert screen.query_one("#export-leaves", DataTable).row_count == 0


async def test_stored_files_and_their_problems_are_shown(server, admin_conn, schema, tmp_path):
    from tests.export.test_files import _lab

    _lab(admin_conn, schema)
    cfg = parse_config(config_text(server, tmp_path) + f"export:\n  schema_prefixes: [{schema}]\n")  # no stores
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        await pilot.press("4")
        await _settle(app, pilot)
        screen = app.screen
        opts = screen.query_one("#export-tables", OptionList)
        opts.focus()
        opts.highlighted = [opts.get_option_at_index(i).id for i in range(opts.option_count)].index(f"{schema}.rec")
        await pilot.pause()
        screen.query_one("#export-restriction", Input).focus()
        await pilot.press(*"id IN (1, 2)")
        await pilot.pause(0.6)
        await _settle(app, pilot)
        await pilot.press("enter")
        await _settle(app, pilot)
        summary = str(screen.query_one("#export-summary", Static).render())
        assert "3 stored files" in summary and "3 not checked" in summary and "f: files" in summary
        files = screen.query_one("#export-files", DataTable)
        problems = screen.query_one("#export-file-problems", Static)
        assert not files.display or not files.is_on_screen
        screen.query_one("#export-counts", DataTable).focus()
        await pilot.press("f")
        await pilot.pause()
        assert screen.has_class("show-files")
        assert files.is_on_screen and problems.is_on_screen
        assert files.row_count == 3
        assert {str(files.get_row_at(i)[0]) for i in range(3)} == {"? [1]"}
        assert str(problems.render()) == ("[1] store 'raw' is not in the config (stores:), "
                                          "so its files were not checked")
        await pilot.press("f")
        await pilot.pause()
        assert screen.query_one("#export-counts", DataTable).is_on_screen and not files.is_on_screen


async def test_enter_before_the_server_check_waits_for_it_and_x_needs_the_leaves_table(
        server, admin_conn, schema, tmp_path):
    """Enter right after typing (before the 0.4 s check): the server decides; a bad restriction is not
    added (B.md #8). `x` removes a leaf only from the focused Leaves table, not from the picker (B.md #17)."""
    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    cfg = parse_config(config_text(server, tmp_path) + f"export:\n  schema_prefixes: [{schema}]\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        await pilot.press("4")
        await _settle(app, pilot)
        screen = app.screen
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        opts = screen.query_one("#export-tables", OptionList)
        opts.focus()
        opts.highlighted = [opts.get_option_at_index(i).id for i in range(opts.option_count)].index(
            f"{schema}.session")
        await pilot.pause()
        field = screen.query_one("#export-restriction", Input)
        field.focus()
        await pilot.press(*"c1 = 1", "enter")  # no pause: the as-you-type check has not run
        await _settle(app, pilot)
        assert [leaf.restriction for leaf in screen.leaves] == ["c1 = 1"] and field.value == ""
        await pilot.press(*"nosuch = 1", "enter")
        await _settle(app, pilot)
        assert [leaf.restriction for leaf in screen.leaves] == ["c1 = 1"]
        assert field.value == "nosuch = 1"  # kept for fixing
        assert any("not added" in n and "nosuch" in n for n in notes), notes
        counts = screen.query_one("#export-counts", DataTable)
        assert counts.row_count == 4  # the counts of leaf 1 stay
        # x in the table picker: the leaf stays, and the user is told where x works
        opts.focus()
        await pilot.press("x")
        await pilot.pause()
        assert len(screen.leaves) == 1 and any("Leaves table" in n for n in notes), notes
        leaves = screen.query_one("#export-leaves", DataTable)
        leaves.focus()
        await pilot.press("x")
        await _settle(app, pilot)
        assert screen.leaves == [] and leaves.row_count == 0
