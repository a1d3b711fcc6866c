"""The Export screen driven by Pilot against the real server."""

from __future__ import annotations

import json

from textual.widgets import Checkbox, DataTable, Input, OptionList, RadioButton, Static, Tree

from djtui.config import parse_config
from djtui.tui.app import DjtuiApp
from djtui.tui.screens.export import ExportScreen
from djtui.tui.widgets.export_write import ExportWriteDialog
from tests.export import randgraph
from tests.export.conftest import config_text
from tests.export.test_cascade import _fixed_schema


async def _settle(app, pilot):
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause(0.5)
    await app.workers.wait_for_complete()


async def _open_export(app, pilot, table: str | None = None) -> ExportScreen:
    await _settle(app, pilot)
    await pilot.press("4")
    await _settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, ExportScreen)
    if table is not None:
        opts = screen.query_one("#export-tables", OptionList)
        opts.focus()
        _highlight(opts, table)
        await pilot.pause()
    return screen


def _highlight(opts: OptionList, table: str) -> None:
    """Move the picker's highlight to ``table``."""
    opts.highlighted = [opts.get_option_at_index(i).id for i in range(opts.option_count)].index(table)


async def test_pick_tree_leaves_counts_and_write(server, admin_conn, schema, tmp_path):
    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    cfg = parse_config(config_text(server, tmp_path) +
                       f"export:\n  schema_prefixes: [{schema}]\n  out_dir: {tmp_path}/exports\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_export(app, pilot)
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
        # by class name; the second foreign key to Subject folds its (same) subtree
        assert labels == [f"{schema}.Subject", f"{schema}.Subject  [r1_0_c0→c0]  … (shown above)"], labels
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
        got = {str(counts.get_row_at(i)[1]): int(counts.get_row_at(i)[0]) for i in range(counts.row_count)}
        # session 1,1 -> subject 1 and 3 (renamed FK); its parts (2) -> probe types 2, 3
        assert got == {f"{schema}.session": 1, f"{schema}.subject": 2, f"{schema}.session__probe": 2,
                       f"{schema}.probe_type": 2}
        assert "4 tables, 7 rows; 0 stored files" in str(screen.query_one("#export-summary", Static).render())
        counts.focus()
        await pilot.press("w")  # the write dialog: sql in a new directory under out_dir by default
        await pilot.pause()
        assert isinstance(app.screen, ExportWriteDialog)
        await pilot.press("enter")  # the Write button has the focus
        await _settle(app, pilot)
        assert app.screen is screen
        manifests = list((tmp_path / "exports").glob("*/manifest.json"))
        assert len(manifests) == 1
        written = {t["table"]: t["rows"] for t in json.loads(manifests[0].read_text())["tables"]}
        assert written == got
        assert (manifests[0].parent / "export.sql").is_file()
        await pilot.press("m")  # the graph goes next to the export it describes (B.md #9)
        await _settle(app, pilot)
        assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == [manifests[0].parent.name]
        assert (manifests[0].parent / "export-graph.mmd").is_file()
        assert (manifests[0].parent / "export-graph.dot").is_file()


async def test_a_restriction_the_server_rejects_is_not_added(server, admin_conn, schema, tmp_path):
    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    cfg = parse_config(config_text(server, tmp_path) + f"export:\n  schema_prefixes: [{schema}]\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_export(app, pilot)
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
        screen = await _open_export(app, pilot)
        opts = screen.query_one("#export-tables", OptionList)
        opts.focus()
        _highlight(opts, f"{schema}.rec")
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
        screen = await _open_export(app, pilot)
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        opts = screen.query_one("#export-tables", OptionList)
        opts.focus()
        _highlight(opts, f"{schema}.session")
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


async def test_write_dialog_format_directory_strip_and_result(server, admin_conn, schema, tmp_path):
    """`w` opens a dialog (format, directory, strip switch); a non-empty directory is refused in it;
    docker turns strip on; the result names the directory and the counts (B.md #9)."""
    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    cfg = parse_config(config_text(server, tmp_path) +
                       f"export:\n  schema_prefixes: [{schema}]\n  out_dir: {tmp_path}/exports\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_export(app, pilot, f"{schema}.session")
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
        screen.query_one("#export-restriction", Input).focus()
        await pilot.press(*"c1 = 1", "enter")
        await _settle(app, pilot)
        screen.query_one("#export-counts", DataTable).focus()
        await pilot.press("w")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportWriteDialog)
        strip = dialog.query_one("#write-strip", Checkbox)
        assert strip.value is False  # the config's default
        # every part of the dialog is on screen at 80x24
        for wid in ("#write-format", "#write-dir", "#write-strip", "#write-ok", "#write-cancel"):
            w = dialog.query_one(wid)
            assert w.region.y >= 0 and w.region.bottom <= 24 and w.region.right <= 80, wid
        dialog.query_one("#write-docker", RadioButton).value = True
        await pilot.pause()
        assert dialog.fmt == "docker" and strip.value is True
        busy = tmp_path / "busy"
        busy.mkdir()
        (busy / "x").write_text("x")
        field = dialog.query_one("#write-dir", Input)
        field.value = str(busy)
        await pilot.click("#write-ok")
        await pilot.pause()
        assert app.screen is dialog
        assert "not empty" in str(dialog.query_one("#write-error", Static).render())
        out = tmp_path / "bundle"
        field.value = str(out)
        await pilot.pause(0.3)  # a button ignores clicks during its 0.2 s press effect
        await pilot.click("#write-ok")
        await _settle(app, pilot)
        assert app.screen is screen, (str(dialog.query_one("#write-error", Static).render()),
                                      dialog.query_one("#write-ok").region)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["format"] == "docker" and (out / "db" / "export.sql").is_file()
        assert any(f"wrote the docker export to {out}: 4 tables, 7 rows, " in n for n in notes), notes
        assert screen.last_export == out
        await pilot.press("m")
        await _settle(app, pilot)
        assert (out / "export-graph.mmd").is_file() and (out / "export-graph.dot").is_file()
        # Cancel writes nothing
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, ExportWriteDialog)
        await pilot.press("escape")
        await _settle(app, pilot)
        assert app.screen is screen and not (tmp_path / "exports").exists()
    bindings = {b.id: b.description for b in ExportScreen.BINDINGS}
    assert bindings["export.mermaid"] == "Save graph"


def _chain(admin_conn, schema: str) -> None:
    """a <- b <- c <- d (c references b through a renamed column), and e references itself."""
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema}`")
        cur.execute(f"CREATE TABLE `{schema}`.a (a_id INT PRIMARY KEY) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{schema}`.b (b_id INT PRIMARY KEY, a_id INT NOT NULL, "
                    f"FOREIGN KEY (a_id) REFERENCES `{schema}`.a (a_id)) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{schema}`.c (c_id INT PRIMARY KEY, upstream_b INT NOT NULL, "
                    f"FOREIGN KEY (upstream_b) REFERENCES `{schema}`.b (b_id)) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{schema}`.d (d_id INT PRIMARY KEY, c_id INT NOT NULL, "
                    f"FOREIGN KEY (c_id) REFERENCES `{schema}`.c (c_id)) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{schema}`.e (id INT PRIMARY KEY, parent_id INT NULL, "
                    f"FOREIGN KEY (parent_id) REFERENCES `{schema}`.e (id)) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO `{schema}`.a VALUES (1)")
        cur.execute(f"INSERT INTO `{schema}`.b VALUES (1, 1)")
        cur.execute(f"INSERT INTO `{schema}`.e VALUES (1, NULL), (2, 1)")
    admin_conn.commit()


def _labels(node) -> list[str]:
    return [str(c.label) for c in node.children]


async def test_tree_shows_ancestors_and_descendants_transitively(server, admin_conn, schema, tmp_path):
    """B.md #10: the whole chain, each edge labelled with its renamed columns; cycles end; big fan-outs are cut."""
    from djtui.domain.cascade import ForeignKey, TableInfo, build_graph
    from djtui.tui.widgets.export_tree import TREE_MAX_CHILDREN

    _chain(admin_conn, schema)
    cfg = parse_config(config_text(server, tmp_path) + f"export:\n  schema_prefixes: [{schema}]\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_export(app, pilot, f"{schema}.d")
        tree = screen.query_one("#export-tree", Tree)
        up, down = tree.root.children
        assert str(up.label) == "ancestors (3 tables)" and str(down.label) == "descendants (0 tables)"
        assert _labels(up) == [f"{schema}.C"]
        assert _labels(up.children[0]) == [f"{schema}.B  [upstream_b→b_id]"]
        assert _labels(up.children[0].children[0]) == [f"{schema}.A"]
        assert up.children[0].children[0].is_expanded
        # from the top: the descendants
        opts = screen.query_one("#export-tables", OptionList)
        _highlight(opts, f"{schema}.a")
        await pilot.pause()
        up, down = tree.root.children
        assert str(down.label) == "descendants (3 tables)"
        assert _labels(down.children[0].children[0]) == [f"{schema}.D"]
        # a self-reference is shown once and does not expand
        _highlight(opts, f"{schema}.e")
        await pilot.pause()
        up, down = tree.root.children
        assert [c.allow_expand for c in up.children] == [False]
        assert "cycle" in str(up.children[0].label)
        # a cycle through several tables and a huge fan-out, on a graph made here
        fks = [ForeignKey("k1", "x.p", "x.q", (("i", "i"),)), ForeignKey("k2", "x.q", "x.p", (("i", "i"),))]
        fks += [ForeignKey(f"f{i}", f"x.z{i:04d}", "x.p", (("i", "i"),)) for i in range(TREE_MAX_CHILDREN + 50)]
        names = {fk.child for fk in fks} | {"x.p", "x.q"}
        screen.graph = build_graph([TableInfo(n, ("i",)) for n in names], fks)
        screen._show_tree("x.p")
        await pilot.pause()
        up, down = tree.root.children
        assert _labels(up) == ["x.Q"]
        assert not up.children[0].children  # the 250 children used up the nodes opened at once
        up.children[0].expand()  # on demand
        await pilot.pause()
        assert _labels(up.children[0]) == ["x.P  (cycle: already above)"]
        assert not up.children[0].children[0].allow_expand
        assert len(down.children) == TREE_MAX_CHILDREN + 1
        assert str(down.children[-1].label) == "… 51 more foreign keys not shown"  # x.q and 250 x.z…
        # lazily: a node not opened yet has no children until it is expanded
        q_under_p = next(c for c in down.children if str(c.label) == "x.Q")
        assert q_under_p.allow_expand and not q_under_p.children
        q_under_p.expand()
        await pilot.pause()
        assert _labels(q_under_p) == ["x.P  (cycle: already above)"]


def _sleeping(server, marker: str) -> list[str]:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT info FROM information_schema.processlist WHERE info LIKE %s "
                        "AND info NOT LIKE %s", (f"%{marker}%", "%information_schema%"))
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


async def _wait_for(pred, pilot, seconds: float) -> bool:
    for _ in range(int(seconds / 0.05)):
        if pred():
            return True
        await pilot.pause(0.05)
    return pred()


async def test_a_superseded_check_stops_its_query_on_the_server(server, admin_conn, schema, tmp_path):
    """B.md #11: newer typing kills the older check's query within a second, one check runs at a time,
    and leaving the screen stops the last one."""
    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    cfg = parse_config(config_text(server, tmp_path) + f"export:\n  schema_prefixes: [{schema}]\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_export(app, pilot, f"{schema}.subject")
        screen.query_one("#export-restriction", Input).focus()
        await pilot.press(*"SLEEP(5)=0")
        assert await _wait_for(lambda: len(_sleeping(server, "SLEEP(5)=0)")) == 1, pilot, 3)
        await pilot.press(*" AND 1")
        # the first query is gone within a second of the newer check starting; only the newer one runs
        assert await _wait_for(lambda: _sleeping(server, "SLEEP(5)") == [
            f"SELECT COUNT(*) FROM `{schema}`.`subject` WHERE (SLEEP(5)=0 AND 1)"], pilot, 1.5), \
            _sleeping(server, "SLEEP(5)")
        status = screen.query_one("#export-restriction-status", Static)
        assert "checking" in str(status.render())
        await pilot.press("escape", "1")  # leave the screen: its check stops too
        assert await _wait_for(lambda: _sleeping(server, "SLEEP(5)") == [], pilot, 1.0), _sleeping(server, "SLEEP")
        await app.workers.wait_for_complete()


def test_leaf_count_cancel_kills_the_query(server, admin_conn, schema, db):
    """The service: LeafCount.cancel from another thread ends run() at once and the query on the server."""
    import threading
    import time

    import pytest

    from djtui.domain.cascade import Leaf
    from djtui.services.export import CountCancelled, LeafCount

    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    check = LeafCount(db, Leaf(f"{schema}.subject", "SLEEP(3)=0"))
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(check.run())
        except Exception as exc:
            outcome.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 3
    while not _sleeping(server, "SLEEP(3)=0)") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sleeping(server, "SLEEP(3)=0)")
    started = time.monotonic()
    check.cancel()
    t.join(5)
    assert time.monotonic() - started < 1.0
    assert len(outcome) == 1 and isinstance(outcome[0], CountCancelled), outcome
    assert _sleeping(server, "SLEEP(3)=0)") == []
    # cancelled before it ran: nothing is sent at all
    early = LeafCount(db, Leaf(f"{schema}.subject", "SLEEP(3)=0"))
    early.cancel()
    with pytest.raises(CountCancelled):
        early.run()
    assert LeafCount(db, Leaf(f"{schema}.subject", "c0 > 1")).run() == 3


async def test_layout_at_80x24_and_200x50(server, admin_conn, schema, tmp_path):
    """B.md #16: at 80x24 the row counts are on screen, table names fit on one line and the footer shows
    the screen's keys, Help and Quit; at 200x50 the renamed-column labels of the tree are not cut."""
    from textual.widgets._footer import FooterKey

    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    cfg = parse_config(config_text(server, tmp_path) + f"export:\n  schema_prefixes: [{schema}]\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_export(app, pilot, f"{schema}.session__probe")
        screen.query_one("#export-restriction", Input).focus()
        await pilot.press("enter")  # every row
        await _settle(app, pilot)
        counts = screen.query_one("#export-counts", DataTable)
        counts.focus()
        await pilot.pause()
        assert counts.row_count == 4
        rows_col = counts.ordered_columns[0]
        assert str(rows_col.label) == "rows"
        assert counts.region.right <= 80 and counts.region.bottom <= 23 and counts.region.height >= 4
        opts = screen.query_one("#export-tables", OptionList)
        longest = max(len(str(opts.get_option_at_index(i).prompt)) for i in range(opts.option_count))
        assert opts.scrollable_content_region.width >= longest
        assert opts.virtual_size.height == opts.option_count  # one line each
        keys = {k.key: k for k in screen.query(FooterKey)}
        palette = screen.query_one(".-command-palette", FooterKey)  # ^p stays in sight (test_terminal)
        assert palette.region.right <= 80 and palette.region.width > 0, palette.region
        # every key shown is whole, left of the palette; Save graph (m) is in help (?) at this width
        for key in ("r", "f", "x", "w", "v", "question_mark", "q"):
            assert key in keys, sorted(keys)
            assert keys[key].region.right <= palette.region.x and keys[key].region.width > 0, (key, keys[key].region)
        assert "m" not in keys
        await pilot.resize_terminal(200, 50)
        await pilot.pause(0.3)
        tree = screen.query_one("#export-tree", Tree)
        screen._show_tree(f"{schema}.session__probe")
        await pilot.pause(0.3)
        labels = []
        todo = [tree.root]
        while todo:
            node = todo.pop()
            labels.append(str(node.label))
            todo.extend(node.children)
        assert any("r2_0_c0→c3" in lab for lab in labels) and any("r1_0_c0→c0" in lab for lab in labels)
        assert tree.virtual_size.width <= tree.scrollable_content_region.width
        # the demo's deepest renamed label (B.md #16): nine levels up, 70 characters
        from djtui.domain.cascade import ForeignKey, TableInfo, build_graph

        chain = [f"demo_ephys.level_{i}_selection_table" for i in range(9)] + ["common_interval.interval_list"]
        fks = [ForeignKey(f"k{i}", chain[i], chain[i + 1], (("id", "id"),)) for i in range(8)]
        fks.append(ForeignKey("k8", chain[8], chain[9], (("sort_interval_name", "interval_list_name"),)))
        screen.graph = build_graph([TableInfo(t, ("id",)) for t in chain], fks)
        screen._show_tree(chain[0])
        await pilot.pause(0.3)
        node = tree.root.children[0]
        for _ in range(9):
            node = node.children[0]
        assert str(node.label) == "common_interval.IntervalList  [sort_interval_name→interval_list_name]"
        assert tree.virtual_size.width <= tree.scrollable_content_region.width, (
            tree.virtual_size, tree.scrollable_content_region)
