"""One object, one orphan; sources that apply to the lab; a plan runs once (issues 14 and 16)."""

from __future__ import annotations

import uuid

import pytest
from orphans_lab import config_text, make_config, put

from djtui.cli import main
from djtui.domain import stores as ds
from djtui.errors import UserError
from djtui.services.database import Database
from djtui.services.orphans import OrphanService, ScanResult, SourceInfo
from djtui.tui.widgets.orphans_list import OrphanList, line_of


@pytest.fixture
def db(server):
    d = Database(server.settings)
    yield d
    d.close()


def service(server, db, tmp_path, lab, extra: str = "") -> OrphanService:
    cfg = make_config(server, tmp_path, f"stores:\n  main:\n    protocol: file\n    location: {lab.location}\n"
                      + extra)
    return OrphanService(cfg, db)


def test_an_unused_row_whose_object_is_missing_is_one_orphan_with_both_reasons(server, db, tmp_path, legacy_lab,
                                                                                 admin_conn, capsys):
    both = uuid.uuid4()
    with admin_conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{legacy_lab.schema}`.`~external_main` (hash, size, timestamp) "
                    "VALUES (%s, 2048, NOW() - INTERVAL 3 HOUR)", (both.bytes,))
    svc = service(server, db, tmp_path, legacy_lab)
    result = svc.scan(svc.resolve(f"external:{legacy_lab.schema}:main"))
    path = ds.legacy_blob_path(legacy_lab.schema, both)
    assert {i.reason for i in result.items if i.path == path} == {ds.UNUSED_ROW, ds.MISSING_OBJECT}
    assert len(result.items) == 6 and result.orphans == 5  # the four of the lab, and this one once
    lines, more = result.listing
    (at,) = [n for n, i in enumerate(lines) if i.path == path]
    assert {i.reason for i in more[at]} == {ds.UNUSED_ROW, ds.MISSING_OBJECT}
    # the source's size is the sum of its lines: each object once, at the size its line shows
    reason, size, _shown = line_of(lines[at], more[at])
    assert set(reason.split("+")) == {ds.UNUSED_ROW, ds.MISSING_OBJECT} and size == 2048
    assert result.bytes == sum(line_of(i, more.get(n))[1] for n, i in enumerate(lines))
    assert result.bytes == 6 + 9 + 0 + len(b"orphan object bytes") + 2048
    # selecting the line selects every reason of the object
    widget = OrphanList()
    widget.items, widget.more, widget.selected = lines, more, {at}
    assert {i.ref for i in widget.selected_items()} == {f"{ds.UNUSED_ROW}:{path}", f"{ds.MISSING_OBJECT}:{path}"}
    # the line's cells, as search (/ then n) reads them: the path first, then size, age and both reasons
    ident, shown, _age, reasons = widget.line(at)
    assert (ident, shown, reasons) == (path, "2.0K", reason)
    # the CLI prints the same one line, with both reasons
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path,
                               f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n"))
    cfg.chmod(0o600)
    assert main(["--config", str(cfg), "orphans", "scan", "--source", f"external:{legacy_lab.schema}:main"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith(path)]
    assert line.split()[1:] == ["2048", f"{ds.UNUSED_ROW}+{ds.MISSING_OBJECT}"]


def test_a_row_item_shows_no_size():
    src = SourceInfo("table:a.b", "table")
    result = ScanResult(src, (ds.OrphanItem(src.name, ds.ORPHAN_ROW, key={"id": 1}),), 3)
    lines, more = result.listing
    assert line_of(lines[0], more.get(0)) == (ds.ORPHAN_ROW, 0, "-")


def test_store_sources_only_for_stores_no_014_table_names(server, db, tmp_path, legacy_lab):
    new = tmp_path / "v2store"
    new.mkdir()
    svc = service(server, db, tmp_path, legacy_lab, f"  new:\n    protocol: file\n    location: {new}\n")
    names = {s.name for s in svc.sources()}
    assert "store:main" not in names  # main is a 0.14 store here: its objects are the external: sources'
    assert "store:new" in names and f"external:{legacy_lab.schema}:main" in names
    assert svc.resolve("store:main").kind == "store"  # still scannable when asked for by name


def test_scan_prints_how_many_objects_an_external_source_checked(server, tmp_path, legacy_lab, capsys):
    path = tmp_path / "djtui.yaml"
    path.write_text(config_text(server, tmp_path,
                                f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n"))
    path.chmod(0o600)
    src = f"external:{legacy_lab.schema}:main"
    assert main(["--config", str(path), "orphans", "scan"]) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith(src)]
    # under S/: blob, attachment, unused, zero, untracked, in-flight; and the file a filepath row names
    assert line.split()[-1] == "7"


def test_a_plan_runs_once_and_says_what_it_will_do(server, db, tmp_path, legacy_lab):
    svc = service(server, db, tmp_path, legacy_lab)
    src = f"external:{legacy_lab.schema}:main"
    with pytest.raises(UserError, match="more than the allowed 20%"):  # 2 of 6 objects
        svc.plan(src, reasons=[ds.UNTRACKED_OBJECT, ds.ZERO_BYTE])
    plan = svc.plan(src, max_share=1.0, reasons=[ds.UNTRACKED_OBJECT, ds.ZERO_BYTE])
    assert (plan.rows, plan.files) == (0, 2) and plan.confirm_word() == "QUARANTINE"
    assert plan.summary() == f"{src}: 2 file(s), 19 B will be moved into the quarantine."
    assert plan.to_json()["items"] == [i.to_json() for i in plan.items]
    done = svc.execute(plan)  # under the guard the plan was made with (1.0), not the config's 20%
    assert done.files == 2 and done.batch_id
    with pytest.raises(UserError, match="executed already"):
        svc.execute(plan, max_share=1.0)
    # the screen's plan for the same scan says the same things in its dialog
    put(legacy_lab.location, ds.legacy_blob_path(legacy_lab.schema, uuid.uuid4()), b"another orphan")
    result = svc.scan(svc.resolve(src))
    screen_plan = svc.plan_for(result, [i for i in result.items if i.reason == ds.UNTRACKED_OBJECT])
    assert screen_plan.files == 1 and screen_plan.selected
    assert any(line.startswith("1 file(s)") for line in screen_plan.confirmation_lines())


async def test_at_80_columns_source_names_and_keys_keep_their_start_and_end(server, tmp_path):
    from orphans_lab import make_config as make_cfg

    from djtui.tui.app import DjtuiApp
    from djtui.tui.screens.orphans import OrphansScreen
    from djtui.tui.widgets.orphans_list import row_text

    deep = tmp_path / ("a_rather_long_directory_name_" * 3) / "analysis"
    put(deep, "old.tmp", b"stale", mtime=1.0)
    app = DjtuiApp(config=make_cfg(server, tmp_path, f"orphans:\n  temp_directories: [{deep}]\n"))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, OrphansScreen)
        for _ in range(100):
            await app.workers.wait_for_complete()
            await pilot.pause(0.05)
            if screen.results:
                break
        table = screen.query_one("#sources")
        shown = str(table.get_cell(f"dir:{deep}", "source"))
        # the kind whole and the end of the path (its last part first), never the start of a long path only
        assert shown.startswith("dir:…") and f"dir:{deep}".endswith(shown[len("dir:…"):]) and len(shown) >= 12
        assert len(shown) <= screen._source_room()
    # two keys that differ at the start and share a long tail read apart
    tail = "_name=artifact removed " * 4
    a, b = row_text(60, "id=1" + tail, "-", "1d", "orphan-row"), row_text(60, "id=2" + tail, "-", "1d", "orphan-row")
    assert a != b and a.startswith("id=1")


async def test_space_or_enter_on_a_source_goes_to_its_items(server, tmp_path):
    from djtui.tui.app import DjtuiApp
    from djtui.tui.screens.orphans import OrphansScreen

    tmp = tmp_path / "tmpdir"
    put(tmp, "old.tmp", b"stale", mtime=1.0)
    app = DjtuiApp(config=make_config(server, tmp_path, f"orphans:\n  temp_directories: [{tmp}]\n"))
    async with app.run_test(size=(120, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, OrphansScreen)
        for _ in range(100):
            await app.workers.wait_for_complete()
            await pilot.pause(0.05)
            if screen.results:
                break
        listing = screen.query_one(OrphanList)
        for key in ("space", "enter"):
            screen.query_one("#sources").focus()
            await pilot.pause()
            await pilot.press(key)
            await pilot.pause()
            assert screen.focused is listing, key
        await pilot.press("space")  # in the list, space selects the item under the cursor
        assert [i.path for i in listing.selected_items()] == ["old.tmp"]


def test_cli_dry_run_prints_the_plan_it_would_confirm(server, tmp_path, legacy_lab, capsys):
    import json

    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path,
                               f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n"))
    cfg.chmod(0o600)
    src = f"external:{legacy_lab.schema}:main"
    assert main(["--config", str(cfg), "orphans", "quarantine", "--source", src, "--max-share", "1",
                 "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    plan = out["plan"]
    assert plan["source"] == src and plan["confirm"] == "QUARANTINE" and not plan["over_guard"]
    assert plan["items"] == out["would"] and (plan["rows"], plan["files"]) == (out["rows"], out["files"])
    # the missing object's row is still referenced: reported, not in the plan
    assert plan["reported_only"] == out["reported_only"] == 1
    assert ds.MISSING_OBJECT not in {i["reason"] for i in plan["items"]}
