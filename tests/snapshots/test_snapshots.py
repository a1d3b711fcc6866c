"""SVG snapshots of every screen and dialog at 80x24 and 160x50 (issue 16), on a lab with fixed data.

The lab lives at a fixed path with fixed schema names and fixed session dates, so the pictures do not vary
from run to run; what the private server makes vary (its port) is masked in the SVG text. The module has a
server of its own: the Accounts screen lists every account and role of the server and the Export screen
every schema, so on the suite's shared server what other tests left there (users, dj_* roles, schemas
named after their pid) and the install's account for a non-root user changed those pictures. Update them with
``pytest tests/snapshots --snapshot-update`` and look at every changed picture before committing it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension
from textual._doc import take_svg_screenshot
from textual.screen import ModalScreen
from textual.widgets import Input

from djtui import labschema
from djtui.cli import main
from djtui.config import parse_config
from djtui.services.servers.mariadb import ADMIN_USER, PrivateServer
from djtui.tui.app import DjtuiApp
from tests.sessions.conftest import lab_config

ROOT = Path("/tmp/djtui-snapshot-lab")  # fixed: paths shown on screen keep their length
SCHEMAS = {"sessions": "snap_sess", "multicamera": "snap_mc", "pose": "snap_pose"}
SIZES = [(80, 24), (160, 50)]
SESSIONS = [("p001", "20250301"), ("p002", "20250302"), ("p003_with_a_long_participant_name", "20250303"),
            ("t010", "20250304")]

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")


# accounts a fresh server holds whoever starts it (MariaDB's and MySQL's own, and the suite's admin); the
# install also creates one for the unix user that ran it when that is not root: dropped, so pictures agree
KEEP_ACCOUNTS = {ADMIN_USER, "root", "mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This module's own private server (it shadows the suite's shared one): nothing another test made."""
    srv = PrivateServer(tmp_path_factory.mktemp("snapserver"), buffer_pool_mb=64)
    srv.start()
    try:
        conn = srv.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT user, host FROM mysql.user")
                for user, host in cur.fetchall():
                    if user not in KEEP_ACCOUNTS:
                        cur.execute("DROP USER %s@%s", (user, host))
        finally:
            conn.close()
        yield srv
    finally:
        srv.stop()


def mask(svg: str, server) -> str:
    """The server's port and the time in a default export folder name vary, their length does not; the SVG's
    id prefix is a checksum of the unmasked text, so it is fixed too."""
    svg = svg.replace(str(server.port), "P" * len(str(server.port)))
    svg = re.sub(r"export-\d{8}-\d{6}", "export-YYYYMMDD-HHMMSS", svg)
    return re.sub(r"terminal-\d+", "terminal-svg", svg)


async def steady_cursors(pilot) -> None:
    """A focused field's cursor blinks every 0.5 s: on or off in the picture by chance (the export_load
    dialog differed from run to run). A steady cursor is drawn, so the picture still shows the focus."""
    for screen in pilot.app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
    await pilot.pause()


FAILED = Path("/tmp/djtui-snapshot-failed")  # a picture that differs is kept here, to read its text


@pytest.fixture
def snap(snapshot, server, request):
    snapshot = snapshot.use_extension(SVGImageExtension)

    def compare(app, size, run_before=None, press=()):
        async def steady(pilot) -> None:
            if run_before is not None:
                await run_before(pilot)
            await steady_cursors(pilot)

        svg = mask(take_svg_screenshot(app=app, press=press, terminal_size=size, run_before=steady), server)
        same = svg == snapshot
        if not same:
            FAILED.mkdir(exist_ok=True)
            (FAILED / f"{request.node.name}.svg").write_text(svg)
        return same

    return compare


def _drop(server) -> None:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")  # the three schemas reference each other
            labschema.drop_tables(cur, SCHEMAS.values())
    finally:
        conn.close()


@pytest.fixture
def lab(server):
    import datetime as dt
    import sqlite3
    _drop(server)
    shutil.rmtree(ROOT, ignore_errors=True)
    for sub in ("source", "mnt/backup", "dest2", "state"):
        (ROOT / sub).mkdir(parents=True, exist_ok=True)
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            labschema.create_tables(cur, **SCHEMAS)
            for pid, date in SESSIONS:
                day = dt.datetime.strptime(date, "%Y%m%d").date()
                labschema.insert_session(cur, pid[1:] if pid[1:].isdigit() else pid, day, labschema.ImportPlan(),
                                         sessions=SCHEMAS["sessions"], multicamera=SCHEMAS["multicamera"],
                                         pose=SCHEMAS["pose"])
    finally:
        conn.close()
    with sqlite3.connect(ROOT / "source" / "recordings.db") as sc:
        for pid, date in SESSIONS:
            d = ROOT / "source" / pid / date
            d.mkdir(parents=True)
            for i in range(3):
                (d / f"cam{i}.mp4").write_bytes(bytes([i]) * 1000 * (i + 1))
            day = dt.datetime.strptime(date, "%Y%m%d").date()
            labschema.sqlite_add_session(sc, pid, day, str(d), imported=True)
    now = time.time()
    stale = ROOT / "orphans" / ("a_rather_long_directory_name_" * 3) / "analysis"
    for folder, names in ((ROOT / "orphans" / "tmp", ("old.tmp", "older.tmp")),
                          (stale, ("run_20250301_participant_p003_with_a_long_name_left_over.tmp", "x.tmp"))):
        folder.mkdir(parents=True)
        for i, name in enumerate(names):
            (folder / name).write_bytes(b"s" * 2000 * (i + 1))
            os.utime(folder / name, (now - (30 + i) * 86400 - 3600,) * 2)  # ages of whole days: stable
    text = lab_config(server, ROOT, SCHEMAS, dest2=True,
                      extra=f"export:\n  out_dir: {ROOT}/exports\n"
                            f"orphans:\n  temp_directories: [{ROOT}/orphans/tmp, {stale}]\n")
    setup = ROOT / "setup.yaml"
    setup.write_text(text)
    setup.chmod(0o600)
    for pid, date in SESSIONS[:2]:  # synced and verified to both destinations: safe to delete
        assert main(["--config", str(setup), "sync", pid, date]) == 0
    text = text.replace('flags: "-a"', 'flags: "-a --bwlimit=1"')  # a sync runs long enough to quit over it
    yield parse_config(text)
    _drop(server)
    shutil.rmtree(ROOT, ignore_errors=True)


async def settle(pilot) -> None:
    app = pilot.app
    for _ in range(200):
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)
        if app.ctx.db is not None and not any(w.is_running for w in app.workers):
            break
    await app.workers.wait_for_complete()
    await pilot.pause(0.2)


def on_screen(key: str):
    async def run(pilot) -> None:
        await settle(pilot)
        pilot.app.screen.set_focus(None)
        await pilot.press(key)
        await settle(pilot)
    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", ["1", "2", "3", "4", "5", "6", "question_mark"])
def test_screen(snap, lab, screen, size):
    run = on_screen(screen)
    if screen == "3":  # the status line shows the scan's end or the highlighted source, whichever came last:
        async def run(pilot) -> None:  # move to the first source, so it is that source's line
            await on_screen("3")(pilot)
            screen = pilot.app.screen
            for _ in range(100):
                if not screen.scanning:
                    break
                await pilot.pause(0.1)
            await pilot.pause(0.5)
            screen.query_one("#sources").focus()
            await pilot.press("G", "g")
            await settle(pilot)
    assert snap(DjtuiApp(config=lab), size, run_before=run)


def then(key: str, *presses: str, focus: str | None = None):
    """Open screen ``key``, focus ``focus`` (a selector), press ``presses``, then wait for the dialog they open
    (its worker waits for an answer: the workers do not all end) and for what it loads."""
    async def run(pilot) -> None:
        await on_screen(key)(pilot)
        if focus:
            pilot.app.screen.query_one(focus).focus()
        for press in presses:
            await pilot.pause(0.1)
            await pilot.press(press)
        for _ in range(200):
            if isinstance(pilot.app.screen, ModalScreen):
                break
            await pilot.pause(0.1)
        await pilot.pause(1.0)
    return run


DIALOGS = {
    "delete": then("1", "d", focus="DataTable"),
    "quit_with_transfers": then("1", "down", "down", "s", "q", focus="DataTable"),
    "bulk_delete": then("1", "space", "space", "D", focus="DataTable"),
    "orphans_plan": then("3", "Q", focus="#sources"),
    "accounts_plan": then("5", "i"),
    "export_write": then("4", "down", "enter", "r", "enter", "escape", "w", focus="OptionList"),
    "export_load": then("4", "l"),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dialog", list(DIALOGS))
def test_dialog(snap, lab, dialog, size):
    assert snap(DjtuiApp(config=lab), size, run_before=DIALOGS[dialog])

