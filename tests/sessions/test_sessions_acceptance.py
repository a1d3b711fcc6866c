"""Sessions after the acceptance walk of issue #3: sessions known only to the database or a backup, odd
date folders, one remount hint, hidden selections, the detail pane at 80x24, sessions that exist nowhere.
Real server, real files; Pilot tests drive the Sessions screen at 80x24.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from textual.widgets import DataTable

from djtui.cli import main
from djtui.domain.mounts import mount_points, nearest_mount
from djtui.domain.sessions import (
    MOUNT_HUNG,
    DestinationStatus,
    DjStatus,
    Listing,
    SessionKey,
    SessionStatus,
)
from djtui.services import filesystem
from djtui.services.database import Database
from djtui.services.sessions import SessionService
from djtui.tui.app import DjtuiApp
from djtui.tui.widgets.session_detail import SessionDetail, SessionDetailPane
from tests.sessions.test_sessions_screens import loaded


def run(lab, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(lab.config_path), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def rows(lab, capsys, *extra: str) -> dict[tuple[str, str], dict]:
    code, out, err = run(lab, capsys, "status-range", "--json", *extra)
    assert code == 0, err
    return {(r["participant_id"], r["session_date"]): r for r in json.loads(out)}


# -- #11: date folders that are no date but hold files are warned about -------------------------

def test_odd_date_folders_with_files_are_warned_about(lab, capsys):
    lab.make_session("p001", "20250104")
    for name in ("20230230", "2026-10-05"):
        (lab.source / "p001" / name).mkdir()
        (lab.source / "p001" / name / "a.mp4").write_bytes(b"a")
    (lab.source / "p001" / "20230231").mkdir()  # empty: nothing to lose, no warning
    code, out, err = run(lab, capsys, "status-range")
    assert code == 0
    assert "p001/20230230" in err and "p001/2026-10-05" in err, err
    assert "not a valid date" in err and "rename it" in err
    assert "20230231" not in err
    assert "20250104" in out


async def test_odd_date_folders_are_a_notice_on_the_screen(lab):
    lab.make_session("p001", "20250104")
    (lab.source / "p001" / "2026-10-05").mkdir()
    (lab.source / "p001" / "2026-10-05" / "a.mp4").write_bytes(b"a")
    app = DjtuiApp(config=lab.config)
    notes: list[tuple[str, str]] = []
    async with app.run_test(size=(120, 40)) as pilot:
        app.notify = lambda message, **kw: notes.append((message, kw.get("severity", "")))  # type: ignore
        await loaded(app, pilot)
        assert any("2026-10-05" in m and "not a valid date" in m and sev == "warning" for m, sev in notes), notes


# -- sessions known only to the database or a destination ---------------------------------------

def test_sessions_only_in_the_database_or_at_a_destination_are_listed_not_local(lab, capsys):
    lab.make_session("p001", "20250104")
    lab.import_session("p002", "20250105")  # in the database, not on local disk
    away = lab.dest_dir("p003", "20250106")  # at the destination only
    away.mkdir(parents=True)
    (away / "cam0.mp4").write_bytes(b"x" * 10)
    got = rows(lab, capsys)
    assert set(got) == {("p001", "20250104"), ("p002", "20250105"), ("p003", "20250106")}
    assert got[("p001", "20250104")]["local"] is True
    for k in (("p002", "20250105"), ("p003", "20250106")):
        r = got[k]
        assert (r["local"], r["safe"], r["videos"], r["files"]) == (False, False, 0, 0), r
        assert r["reasons_unsafe"] == ["not on local disk: nothing to delete"]
    assert got[("p002", "20250105")]["dj"] is True
    assert got[("p003", "20250106")]["destinations"][0]["files"] == 1
    # the range applies to them too
    assert set(rows(lab, capsys, "--start-date", "20250105", "--end-date", "20250105")) == {("p002", "20250105")}

    code, out, _ = run(lab, capsys, "status-range")
    line = next(x for x in out.splitlines() if x.startswith("20250105"))
    assert "p002 (not local)" in line and line.split()[-1] == "–", line
    assert "2 sessions are not on local disk" in out, out
    assert line.split()[-3:] == ["✗", "–", "–"], line

    code, out, _ = run(lab, capsys, "status", "p002", "20250105")
    assert code == 0 and "not on local disk" in out and "not applicable" in out, out

    # nothing local to delete: delete refuses, bulk-delete never lists them
    code, out, _ = run(lab, capsys, "delete", "p002", "20250105", "--confirm", "DELETE")
    assert code == 1 and "p002" in out
    code, out, _ = run(lab, capsys, "bulk-delete", "--dry-run", "--json")
    report = json.loads(out)
    assert [(k["participant_id"], k["session_date"]) for k in report["kept_sessions"]] == [("p001", "20250104")]


def test_status_range_stays_one_query_per_table_with_database_only_sessions(lab):
    from djtui.services import commandlog
    for i in range(10):
        lab.make_session(f"p{i:03d}", "20250104", files=1)
    for i in range(10, 15):
        lab.import_session(f"p{i:03d}", "20250104")
    svc = SessionService(lab.config, Database.from_config(lab.config))
    commandlog.clear()
    statuses = svc.status_range()
    assert len(statuses) == 15 and sum(not s.local for s in statuses) == 5
    sql = [e for e in commandlog.entries() if e.kind == "sql"]
    assert 0 < len(sql) <= 5, [e.text[:60] for e in sql]


async def test_database_only_rows_on_the_screen(lab):
    lab.make_session("p001", "20250104")
    lab.import_session("p002", "20250105")
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(app, pilot)
        table = screen.query_one(DataTable)
        assert table.row_count == 2
        row = [str(c) for c in table.get_row_at(1)]
        assert row[2] == "p002" and row[4] == "not local" and row[8] == "–", row
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        table.move_cursor(row=1)
        await pilot.press("d")
        assert any("not on local disk" in n for n in notes), notes
        assert "1 not local" in str(screen.query_one("#sess-summary").render())


# -- #15: a session that exists nowhere; bulk-delete names what it keeps; plurals ----------------

def test_status_of_a_session_that_exists_nowhere_says_so_and_exits_1(lab, capsys):
    lab.make_session("p001", "20250104")
    code, out, err = run(lab, capsys, "status", "p999", "20250104")
    assert code == 1 and out == ""
    assert "no session p999 20250104" in err and "not in the database" in err and "net" in err, err
    code, out, _ = run(lab, capsys, "status", "p999", "20250104", "--json")
    assert code == 1 and json.loads(out)["exists"] is False
    # anything anywhere makes it a session: only in the database
    lab.import_session("p998", "20250104")
    code, out, _ = run(lab, capsys, "status", "p998", "20250104")
    assert code == 0 and "Session p998 20250104" in out


def test_bulk_delete_dry_run_names_the_sessions_it_keeps_and_why(lab, capsys):
    lab.make_session("p001", "20250104")  # not imported, no backup
    lab.make_session("p002", "20250104")
    lab.import_session("p002", "20250104")
    code, out, err = run(lab, capsys, "sync", "p002", "20250104")
    assert code == 0, out + err
    code, out, _ = run(lab, capsys, "bulk-delete", "--dry-run")
    assert code == 0, out
    assert "1 session safe to delete" in out, out
    kept = next(x for x in out.splitlines() if "p001" in x and "20250104" in x)
    assert "not imported into DataJoint" in kept and "no backup" in kept, kept
    code, out, _ = run(lab, capsys, "bulk-delete", "--dry-run", "--json")
    report = json.loads(out)
    assert report["kept"] == 1
    [k] = report["kept_sessions"]
    assert (k["participant_id"], k["session_date"]) == ("p001", "20250104")
    assert any("not imported" in r for r in k["reasons"])
    code, out, _ = run(lab, capsys, "status-range")
    assert "2 sessions, 1 safe to delete" in out
    code, out, _ = run(lab, capsys, "status-range", "--start-date", "20250104", "--end-date", "20250104")
    assert "2 sessions" in out
    (lab.source / "p001" / "20250104").rename(lab.root / "gone")
    code, out, _ = run(lab, capsys, "status-range")
    assert "\n1 session, 1 safe to delete" in out, out


# -- #13: one remount hint, naming the mount point ----------------------------------------------

def test_mount_point_from_mountinfo():
    text = ("22 1 0:21 / / rw - ext4 /dev/sda1 rw\n"
            "40 22 0:40 / /mnt/lab\\040nas rw - nfs srv:/x rw\n"
            "41 40 0:41 / /mnt/lab\\040nas/deep rw - nfs srv:/y rw\n")
    points = mount_points(text)
    assert points == ["/", "/mnt/lab nas", "/mnt/lab nas/deep"]
    assert nearest_mount("/mnt/lab nas/backup/2025", points) == "/mnt/lab nas"
    assert nearest_mount("/mnt/lab nas/deep/x", points) == "/mnt/lab nas/deep"
    assert nearest_mount("/mnt/lab nasty/x", points) is None
    assert nearest_mount("/srv/backup", points) is None  # only "/": not known


def test_hung_destination_gets_one_hint_naming_the_mount_point():
    key = SessionKey("p001", dt.date(2025, 1, 4))
    folder = "/mnt/nas/backup/20250104/p001"
    for mp, want in (("/mnt/nas", "sudo umount -l /mnt/nas && sudo mount /mnt/nas"), (None, "not known")):
        d = DestinationStatus("net", folder, MOUNT_HUNG, detail="did not answer", mount_point=mp)
        st = SessionStatus(key, "1", "/data/p001/20250104", Listing(True), DjStatus(True), (d,))
        reasons = [r for r in st.reasons_unsafe() if r.startswith("net")]
        assert len(reasons) == 1 and want in reasons[0] and folder not in reasons[0], reasons
        from djtui.tui.widgets.session_detail import detail_text
        text = detail_text(st)
        assert want in text and "MOUNT" not in text and text.count("umount") <= 1


def test_hung_destination_in_status_names_the_mount_point_once(lab, capsys, monkeypatch):
    lab.make_session("p001", "20250104")
    real = filesystem.probe_mount

    def hung(path, timeout=5.0, **kw):
        if str(path).startswith(str(lab.root / "mnt")):
            return filesystem.MountProbe(str(path), MOUNT_HUNG, timeout, str(filesystem.Hung(path, timeout)))
        return real(path, timeout, **kw)

    monkeypatch.setattr(filesystem, "probe_mount", hung)
    _, out, _ = run(lab, capsys, "status", "p001", "20250104")
    mnt = str(lab.root / "mnt")
    assert f"sudo umount -l {mnt} && sudo mount {mnt}" in out, out
    assert out.count("umount") == 1 and "<mount>" not in out and "backup/20250104" not in out.split("Safe")[1], out


def test_nearest_mount_point_when_none_is_configured(lab):
    points = mount_points(Path("/proc/self/mountinfo").read_text())
    plain = [p for p in points if p != "/" and re.fullmatch(r"/[A-Za-z0-9/_.-]+", p)]
    assert plain, "no plain mount point besides / in this container"
    base = plain[0].rstrip("/") + "/no-such-backup"
    cfg = lab.config_path.read_text().replace(f"      mount_point: {lab.root}/mnt\n", "")
    cfg = cfg.replace(f"base_path: {lab.root}/mnt/backup", f"base_path: {base}")
    lab.config_path.write_text(cfg)
    svc = SessionService(lab.config, None)
    assert svc.mount_point_of(svc.destinations[0]) == nearest_mount(base, points)


# -- #6: actions skip selected rows the filter hides ----------------------------------------------

async def test_hidden_selected_rows_are_left_alone_and_the_footer_says_so(lab):
    lab.make_session("p001", "20250104")
    lab.make_session("p002", "20250105")
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(app, pilot)
        table = screen.query_one(DataTable)
        table.move_cursor(row=0)
        await pilot.press("space")  # selects p001
        assert screen.selected == {"p001|20250104"}
        await pilot.press("slash", *"p002", "enter")
        assert table.row_count == 1
        summary = str(screen.query_one("#sess-summary").render())
        assert "1 selected (1 hidden by the filter, not acted on)" in summary, summary
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        queue = app.ctx.job_queue()
        await pilot.press("v")
        await pilot.pause()
        labels = [j.key.label for j in queue.jobs]
        assert labels == ["p002 20250105"], labels  # the visible cursor row, not the hidden selection
        assert any("hidden by the filter" in n and "left alone" in n for n in notes), notes
        assert screen.selected == {"p001|20250104"}  # still selected for later


# -- #9: the detail pane at 80x24 -----------------------------------------------------------------

async def test_detail_pane_at_80x24_is_full_width_scrolls_and_says_what_differs(lab, make_lab_config):
    lab.config_path.write_text(make_lab_config(lab.server, lab.root, lab.schemas, dest2=True))
    src = lab.make_session("p001", "20250104")
    for dest in (lab.dest_dir("p001", "20250104"), lab.dest2 / "p001" / "20250104"):
        dest.mkdir(parents=True)
        for f in src.iterdir():
            if f.is_file():
                (dest / f.name).write_bytes(f.read_bytes())
        (dest / "meta").mkdir()
        (dest / "meta" / "info.json").write_bytes((src / "meta" / "info.json").read_bytes())
        (dest / "cam0.mp4").write_bytes(b"short")  # size differs
    app = DjtuiApp(config=lab.config)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        await pilot.press("enter")
        await pilot.pause()
        pane = screen.query_one(SessionDetailPane)
        assert pane.has_focus and pane.region.width >= 76, pane.region
        assert not screen.query_one(DataTable).display or screen.query_one(DataTable).region.width == 0
        text = str(screen.query_one(SessionDetail).render())
        assert "size differs (cam0.mp4)" in text and "Not safe to delete" in text
        assert "✓ net" not in text and "✗ net: no backup" not in text
        assert "net: partial, 4 of 5 files" in text, text
        # the verdict comes first, the rest scrolls
        assert text.index("Not safe to delete") < text.index("DataJoint")
        assert pane.max_scroll_y > 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert pane.scroll_y > 0
        await pilot.press("escape")
        await pilot.pause()
        assert (screen.query_one(DataTable).has_focus and not pane.display) or not screen.has_class("-detail")
