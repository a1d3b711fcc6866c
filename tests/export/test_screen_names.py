"""Issue 16, the Export screen as people use it on a DataJoint lab: tables by class name, internal
tables hidden, parts marked and repeats folded in the tree, the CLI's leaf parser (JSON keys), and a
check line that says what the server said about the text typed (0 rows, coerced values, whole errors)."""

from __future__ import annotations

from textual.widgets import DataTable, Input, OptionList, Static, Tree

from djtui.config import parse_config
from djtui.tui.app import DjtuiApp
from tests.export.conftest import config_text
from tests.export.test_screen import _highlight, _open_export, _settle


def _lab(admin_conn, schema: str) -> None:
    """A small DataJoint-shaped schema: Session, IntervalList, LFPBand (computed) referencing both
    (so Session shows twice in its ancestry), Probe with parts Shank and Electrode (Electrode -> Shank),
    Electrode -> Probe.Electrode, and DataJoint's internal ~log and ~external_raw."""
    s = f"`{schema}`"
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {s}")
        for ddl in (
            "session (session_id INT PRIMARY KEY, session_date DATE NOT NULL)",
            "interval_list (session_id INT, interval_list_name VARCHAR(64), PRIMARY KEY (session_id, "
            "interval_list_name), FOREIGN KEY (session_id) REFERENCES {s}.session (session_id))",
            "__l_f_p_band (session_id INT, interval_list_name VARCHAR(64), PRIMARY KEY (session_id, "
            "interval_list_name), FOREIGN KEY (session_id) REFERENCES {s}.session (session_id), "
            "FOREIGN KEY (session_id, interval_list_name) REFERENCES {s}.interval_list (session_id, "
            "interval_list_name))",
            "probe (probe_id INT PRIMARY KEY)",
            "probe__shank (probe_id INT, shank INT, PRIMARY KEY (probe_id, shank), "
            "FOREIGN KEY (probe_id) REFERENCES {s}.probe (probe_id))",
            "probe__electrode (probe_id INT, shank INT, electrode_id INT, PRIMARY KEY (probe_id, shank, "
            "electrode_id), FOREIGN KEY (probe_id, shank) REFERENCES {s}.probe__shank (probe_id, shank))",
            "_electrode (session_id INT, probe_id INT, shank INT, electrode_id INT, nwb_file_name VARCHAR(64), "
            "PRIMARY KEY (session_id, electrode_id), FOREIGN KEY (session_id) REFERENCES {s}.session (session_id), "
            "FOREIGN KEY (probe_id, shank, electrode_id) REFERENCES {s}.probe__electrode "
            "(probe_id, shank, electrode_id))",
            "`~log` (ts INT PRIMARY KEY)",
            "`~external_raw` (hash BINARY(16) PRIMARY KEY)",
        ):
            cur.execute(f"CREATE TABLE {s}.{ddl.format(s=s)} ENGINE=InnoDB")
        cur.execute(f"INSERT INTO {s}.session VALUES (1, '2025-01-01'), (2, '2026-03-01')")
        cur.execute(f"INSERT INTO {s}.interval_list VALUES (1, 'raw'), (2, 'raw')")
        cur.execute(f"INSERT INTO {s}.__l_f_p_band VALUES (1, 'raw'), (2, 'raw')")
        cur.execute(f"INSERT INTO {s}.probe VALUES (1)")
        cur.execute(f"INSERT INTO {s}.probe__shank VALUES (1, 0)")
        cur.execute(f"INSERT INTO {s}.probe__electrode VALUES (1, 0, 0), (1, 0, 1)")
        cur.execute(f"INSERT INTO {s}._electrode VALUES (1, 1, 0, 0, 'a_.nwb'), (1, 1, 0, 1, 'a_.nwb')")
    admin_conn.commit()


def _app(server, tmp_path, schema):
    return DjtuiApp(config=parse_config(config_text(server, tmp_path) + f"export:\n  schema_prefixes: [{schema}]\n"))


def _shown(opts: OptionList) -> list[str]:
    return [str(opts.get_option_at_index(i).prompt) for i in range(opts.option_count)]


async def test_tables_by_class_name_internal_hidden_and_names_never_broken_mid_word(
        server, admin_conn, schema, tmp_path):
    _lab(admin_conn, schema)
    app = _app(server, tmp_path, schema)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_export(app, pilot)
        opts = screen.query_one("#export-tables", OptionList)
        assert _shown(opts) == [f"{schema}.Electrode", f"{schema}.IntervalList", f"{schema}.LFPBand",
                                f"{schema}.Probe", f"{schema}.Probe.Electrode", f"{schema}.Probe.Shank",
                                f"{schema}.Session"]  # no ~log, no ~external_raw
        assert "2 internal ~ tables hidden" in str(screen.query_one("#export-summary", Static).render())
        search = screen.query_one("#export-search", Input)
        for text, found in (("IntervalList", ["IntervalList"]), ("LFPBand", ["LFPBand"]),
                            ("l_f_p_band", ["LFPBand"]), ("interval_list", ["IntervalList"]),
                            ("probe electrode", ["Probe.Electrode"])):
            search.value = text
            await pilot.pause()
            assert _shown(opts) == [f"{schema}.{c}" for c in found], text
        search.value = ""
        await pilot.pause()
        opts.focus()
        await pilot.press("i")  # the internal tables, on demand
        await pilot.pause()
        assert _shown(opts)[-2:] == [f"{schema}.~external_raw", f"{schema}.~log"]
        await pilot.press("i")
        await pilot.pause()
        assert len(_shown(opts)) == 7
        # every name is on screen whole, or broken after a dot: never inside a word
        from djtui.domain.djnames import fit_name

        width = opts.scrollable_content_region.width - 2  # the option's padding
        rendered = [opts.render_line(y).text.strip() for y in range(opts.virtual_size.height)]
        expected = [line.strip() for name in _shown(opts) for line in fit_name(name, width)]
        assert rendered[:len(expected)] == expected[:len(rendered)], (width, rendered)
        await pilot.resize_terminal(160, 50)
        await pilot.pause(0.3)
        assert opts.virtual_size.height == opts.option_count  # one line each at 160 columns


async def test_tree_marks_parts_and_folds_repeats(server, admin_conn, schema, tmp_path):
    _lab(admin_conn, schema)
    app = _app(server, tmp_path, schema)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await _open_export(app, pilot, f"{schema}.__l_f_p_band")
        tree = screen.query_one("#export-tree", Tree)
        assert str(tree.root.label) == f"{schema}.LFPBand  ({schema}.__l_f_p_band)"
        up = tree.root.children[0]
        assert [str(c.label) for c in up.children] == [f"{schema}.IntervalList", f"{schema}.Session"]
        interval = up.children[0]
        assert [str(c.label) for c in interval.children] == [f"{schema}.Session  … (shown above)"]
        assert not interval.children[0].allow_expand
        _highlight(screen.query_one("#export-tables", OptionList), f"{schema}._electrode")
        await pilot.pause()
        up = tree.root.children[0]
        labels = [str(c.label) for c in up.children]
        assert labels == [f"◆ {schema}.Probe.Electrode (part)", f"{schema}.Session"]
        assert [str(c.label) for c in up.children[0].children] == [f"◆ {schema}.Probe.Shank (part)"]


async def _type(screen, pilot, app, text: str) -> Static:
    field = screen.query_one("#export-restriction", Input)
    field.focus()
    field.value = text
    await pilot.pause(0.6)
    await _settle(app, pilot)
    return screen.query_one("#export-restriction-status", Static)


async def _electrode_screen(server, admin_conn, schema, tmp_path, app, pilot):
    screen = await _open_export(app, pilot, f"{schema}._electrode")
    notes: list[tuple[str, str]] = []
    app.notify = lambda message, **kw: notes.append((str(message), kw.get("severity", "")))  # type: ignore
    return screen, notes


async def test_json_keys_as_the_cli_takes_them_and_rows_per_leaf(server, admin_conn, schema, tmp_path):
    _lab(admin_conn, schema)
    app = _app(server, tmp_path, schema)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, _ = await _electrode_screen(server, admin_conn, schema, tmp_path, app, pilot)
        leaves = screen.query_one("#export-leaves", DataTable)
        status = await _type(screen, pilot, app, '{"nwb_file_name": "a_.nwb", "electrode_id": 0}')
        assert str(status.render()) == "✓ 1 rows" and status.has_class("good")
        await pilot.press("enter")
        await _settle(app, pilot)
        assert [lf.restriction for lf in screen.leaves] == ["(`nwb_file_name` = 'a_.nwb' AND `electrode_id` = 0)"]
        assert [str(c) for c in leaves.get_row_at(0)] == ["1", "1", f"{schema}.Electrode",
                                                         "(`nwb_file_name` = 'a_.nwb' AND `electrode_id` = 0)"]


async def test_no_count_under_an_empty_field(server, admin_conn, schema, tmp_path):
    _lab(admin_conn, schema)
    app = _app(server, tmp_path, schema)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, _ = await _electrode_screen(server, admin_conn, schema, tmp_path, app, pilot)
        status = await _type(screen, pilot, app, "electrode_id = 0")
        assert str(status.render()) == "✓ 1 rows"
        await pilot.press("enter")
        await _settle(app, pilot)
        assert len(screen.leaves) == 1 and screen.query_one("#export-restriction", Input).value == ""
        assert str(status.render()) == ""  # not the whole table's count, read as the new leaf's
        status = await _type(screen, pilot, app, "electrode_id >= 0")
        assert str(status.render()) == "✓ 2 rows"
        status = await _type(screen, pilot, app, "")
        assert str(status.render()) == ""  # no stale count


async def test_an_error_is_whole_and_names_the_text_typed(server, admin_conn, schema, tmp_path):
    _lab(admin_conn, schema)
    app = _app(server, tmp_path, schema)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, notes = await _electrode_screen(server, admin_conn, schema, tmp_path, app, pilot)
        status = await _type(screen, pilot, app, "electrode_id = 0")
        await pilot.press("enter")
        await _settle(app, pilot)
        status = await _type(screen, pilot, app, "nocol = 1 AND electrode_id IN (1, 2, 3)")
        text = str(status.render())
        assert status.has_class("bad") and "Unknown column 'nocol'" in text and "leaf 1" not in text, text
        assert f"{schema}.Electrode" in text
        assert status.region.height >= 2  # the whole message, not its first line
        await pilot.press("enter")
        await _settle(app, pilot)
        assert any("not added" in m and "nocol" in m and "leaf 1" not in m for m, _ in notes), notes


async def test_a_leaf_of_zero_rows_warns_and_is_still_added(server, admin_conn, schema, tmp_path):
    _lab(admin_conn, schema)
    app = _app(server, tmp_path, schema)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, notes = await _electrode_screen(server, admin_conn, schema, tmp_path, app, pilot)
        status = await _type(screen, pilot, app, "electrode_id = 99")
        assert status.has_class("warn") and "0 rows" in str(status.render()) and "Enter adds" in str(status.render())
        await pilot.press("enter")
        await _settle(app, pilot)
        assert len(screen.leaves) == 1
        assert any("0 rows" in m and sev == "warning" for m, sev in notes), notes
        assert str(screen.query_one("#export-leaves", DataTable).get_row_at(0)[1]) == "0"


async def test_a_value_the_server_coerced_is_said(server, admin_conn, schema, tmp_path):
    """`session_date > '2026-13-45'` matches every row on MariaDB/MySQL (a warning, not an error)."""
    _lab(admin_conn, schema)
    app = _app(server, tmp_path, schema)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_export(app, pilot, f"{schema}.session")
        status = await _type(screen, pilot, app, "session_date > '2026-13-45'")
        text = str(status.render())
        assert status.has_class("warn") and "coerced" in text and "2026-13-45" in text, text


async def test_leaves_from_a_papers_export_log_or_a_leaves_file(server, admin_conn, schema, tmp_path):
    """`l` opens a dialog: a paper of Spyglass's export log, or a leaves file, read by the CLI's services."""
    import json

    from djtui.tui.widgets.export_load import ExportLoadDialog

    _lab(admin_conn, schema)
    log = f"{schema}_usage"
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{log}`")
        cur.execute(f"CREATE TABLE `{log}`.`export_selection` (export_id int NOT NULL, paper_id varchar(32), "
                    "analysis_id varchar(32), PRIMARY KEY (export_id))")
        cur.execute(f"CREATE TABLE `{log}`.`export_selection__table` (export_id int NOT NULL, table_id int NOT NULL,"
                    f" table_name varchar(128), restriction mediumblob, PRIMARY KEY (export_id, table_id), "
                    f"FOREIGN KEY (export_id) REFERENCES `{log}`.`export_selection` (export_id))")
        cur.execute(f"INSERT INTO `{log}`.`export_selection` VALUES (1, 'p1', 'fig1')")
        cur.executemany(f"INSERT INTO `{log}`.`export_selection__table` VALUES (%s, %s, %s, %s)", [
            (1, 1, f"`{schema}`.`__l_f_p_band`", b"session_id = 1"),
            (1, 2, f"`{schema}`.`_electrode`", b"electrode_id = 7")])
    admin_conn.commit()
    leaves_file = tmp_path / "leaves.json"
    leaves_file.write_text(json.dumps({"leaves": [{"table": f"{schema}.session", "restriction": "session_id = 2"}]}))
    app = _app(server, tmp_path, schema)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_export(app, pilot)
        notes: list[tuple[str, str]] = []
        app.notify = lambda message, **kw: notes.append((str(message), kw.get("severity", "")))  # type: ignore
        screen.query_one("#export-tables", OptionList).focus()
        await pilot.press("l")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportLoadDialog)
        for wid in ("#load-paper", "#load-file", "#load-ok"):
            w = dialog.query_one(wid)
            assert w.region.bottom <= 24 and w.region.right <= 80 and w.region.width > 0, wid
        dialog.query_one("#load-paper", Input).value = "p1"
        dialog.query_one("#load-log", Input).value = log
        await pilot.click("#load-ok")
        await _settle(app, pilot)
        assert app.screen is screen
        assert [(lf.table, lf.restriction) for lf in screen.leaves] == [
            (f"{schema}.__l_f_p_band", "session_id = 1"), (f"{schema}._electrode", "electrode_id = 7")]
        table = screen.query_one("#export-leaves", DataTable)
        assert [str(table.get_row_at(i)[1]) for i in range(2)] == ["1", "0"]
        assert any("loaded 2 leaves from paper p1; 1 matches 0 rows" in m for m, _ in notes), notes
        await pilot.press("l")
        await pilot.pause()
        app.screen.query_one("#load-file", Input).value = str(leaves_file)
        await pilot.click("#load-ok")
        await _settle(app, pilot)
        assert [lf.table for lf in screen.leaves][-1] == f"{schema}.session" and len(screen.leaves) == 3
        counts = screen.query_one("#export-counts", DataTable)
        assert {str(counts.get_row_at(i)[1]) for i in range(counts.row_count)} >= {f"{schema}.session"}


async def test_enter_and_down_in_search_enter_the_list(server, admin_conn, schema, tmp_path):
    _lab(admin_conn, schema)
    app = _app(server, tmp_path, schema)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_export(app, pilot)
        opts = screen.query_one("#export-tables", OptionList)
        for key in ("enter", "down"):
            await pilot.press("slash")
            await pilot.pause()
            assert screen.focused is screen.query_one("#export-search", Input)
            await pilot.press(*"probe", key)
            await pilot.pause()
            assert screen.focused is opts, key
            assert opts.highlighted is not None and screen.selected == f"{schema}.probe", key
            screen.query_one("#export-search", Input).value = ""
            await pilot.pause()
