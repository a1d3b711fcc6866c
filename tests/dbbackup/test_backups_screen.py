"""The Backups screen with the Pilot: run a backup, see it listed, restore-verify it."""

from __future__ import annotations

import json
import time

from djtui.config import parse_config
from djtui.tui.app import DjtuiApp
from djtui.tui.screens.backups import BackupsScreen
from tests.dbbackup.conftest import config_text


def _cfg(server, tmp_path, readonly: bool = False):
    return parse_config(f"""
database:
  host: 127.0.0.1
  port: {server.port}
  user: djadmin
  password: "{server.password.reveal()}"
dbbackup:
  out_dir: "{tmp_path / 'backups'}"
audit_log: "{tmp_path / 'audit.jsonl'}"
state_dir: "{tmp_path / 'state'}"
readonly: {str(readonly).lower()}
""")


async def _settle(app, pilot, until, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        await pilot.pause(0.1)
    assert until()


def _text(screen, wid: str) -> str:
    return str(screen.query_one(wid).render())


async def test_run_then_verify(lab, tmp_path):
    """On each backend (issue 15: the screen on PostgreSQL too)."""
    app = DjtuiApp(config=parse_config(config_text(lab.server, tmp_path)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, BackupsScreen)
        await _settle(app, pilot, lambda: "no backups yet" in _text(screen, "#backups-status"))
        await pilot.press("b")
        await _settle(app, pilot, lambda: "Backup done" in _text(screen, "#backups-last"))
        await _settle(app, pilot, lambda: screen.query_one("#backups-table").row_count == 1)
        (info,) = screen.backups
        assert (info.path / "manifest.json").is_file() and info.verified is None
        manifest = json.loads((info.path / "manifest.json").read_text())
        assert manifest["backend"] == lab.backend and lab.schema in {s["name"] for s in manifest["schemas"]}
        # issue 16: the progress counted [n/16] dumps beside "15 schemas"; the result says what each counts
        n = info.schemas
        what = "the whole server" if lab.backend == "mysql" else "the roles"  # PostgreSQL: pg_dumpall --globals-only
        assert f"{n} schema(s) + {what} ({n + 1} dumps)" in _text(screen, "#backups-last")
        screen.query_one("#backups-table").focus()
        await pilot.press("v")
        await _settle(app, pilot, lambda: "Verified" in _text(screen, "#backups-last"))
        await _settle(app, pilot, lambda: bool(screen.backups) and screen.backups[0].verified is not None)
        assert (info.path / "verified.json").is_file()
        cells = screen.query_one("#backups-table").get_row_at(0)
        assert cells[0] == info.path.name and str(cells[4]).startswith("yes")


async def test_readonly_refuses_run(server, tmp_path):
    app = DjtuiApp(config=_cfg(server, tmp_path, readonly=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, BackupsScreen)
        await pilot.press("b")
        await pilot.pause(0.3)
        assert not screen.busy
        assert not (tmp_path / "backups").exists()
        assert "none in this session" in _text(screen, "#backups-last")


def _cfg_remote(server, tmp_path, remote):
    return parse_config(f"""
database:
  host: 127.0.0.1
  port: {server.port}
  user: djadmin
  password: "{server.password.reveal()}"
dbbackup:
  out_dir: "{tmp_path / 'backups'}"
  remote: "{remote}"
  keep_daily: 2
  keep_weekly: 1
  keep_monthly: 1
audit_log: "{tmp_path / 'audit.jsonl'}"
state_dir: "{tmp_path / 'state'}"
""")


async def _open(app, pilot) -> BackupsScreen:
    await pilot.press("6")
    screen = app.screen
    assert isinstance(screen, BackupsScreen)
    return screen


async def _type(pilot, text: str) -> None:
    for ch in text:
        await pilot.press("space" if ch == " " else ch)


async def test_run_copies_to_remote_like_the_cli(server, lab_schema, tmp_path):
    remote = tmp_path / "offsite"
    remote.mkdir()
    app = DjtuiApp(config=_cfg_remote(server, tmp_path, remote))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(app, pilot)
        await _settle(app, pilot, lambda: "no backups yet" in _text(screen, "#backups-status"))
        await pilot.press("b")
        await _settle(app, pilot, lambda: "Backup done" in _text(screen, "#backups-last"))
        assert f"copied to {remote}" in _text(screen, "#backups-last")
        await _settle(app, pilot, lambda: bool(screen.backups))
        (info,) = screen.backups
        copy = remote / info.path.name
        assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in info.path.iterdir())
        assert (copy / "manifest.json").read_bytes() == (info.path / "manifest.json").read_bytes()


def _fake(out, name):
    d = out / name
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps({"schemas": []}))
    return d


async def test_prune_from_the_app_plan_then_typed_word(server, tmp_path):
    out = tmp_path / "backups"
    names = ["2026-01-05_020000", "2026-02-10_020000", "2026-03-01_020000", "2026-03-02_020000",
             "2026-03-03_020000"]
    for n in names:
        _fake(out, n)
    app = DjtuiApp(config=_cfg_remote(server, tmp_path, tmp_path / "unused"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        await _settle(app, pilot, lambda: len(screen.backups) == 5)
        await pilot.press("p")
        await _settle(app, pilot, lambda: type(app.screen).__name__ == "ConfirmTyped")
        dialog = app.screen
        assert dialog.expected == "PRUNE"
        plan = "\n".join(dialog.lines)
        assert "REMOVES 3:" in plan and "keeps 2:" in plan
        removes, keeps = plan.split("keeps 2:")
        assert all(n in removes for n in names[:3]) and all(n in keeps for n in names[3:])
        await _type(pilot, "PRUN")
        await pilot.press("enter")  # not the word: nothing happens
        await pilot.pause(0.2)
        assert isinstance(app.screen, type(dialog)) and all((out / n).exists() for n in names)
        await _type(pilot, "E")
        await pilot.press("enter")
        await _settle(app, pilot, lambda: "Pruned" in _text(screen, "#backups-last"))
        assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == names[3:]
        await _settle(app, pilot, lambda: len(screen.backups) == 2)
    log = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    ev = [e for e in log if e["action"] == "dbbackup-prune"]
    assert [e["event"] for e in ev] == ["intent", "outcome"]
    assert sorted(ev[0]["details"]["backups"]) == names[:3]


async def test_restore_from_the_app_overwrites_after_typed_word(lab, tmp_path):
    """On each backend: the rows deleted after the backup are back, what was overwritten was dumped first."""
    from djtui.services import dbbackup

    dbbackup.run_backup(lab.db, tmp_path / "backups", schemas=[lab.schema], full_server=False)
    before = lab.rows(lab.schema, lab.odd)
    lab.sql(f"DELETE FROM {lab.db.dialect.table(lab.schema, lab.odd)} WHERE id >= 1")
    app = DjtuiApp(config=parse_config(config_text(lab.server, tmp_path)))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        await _settle(app, pilot, lambda: len(screen.backups) == 1)
        screen.query_one("#backups-table").focus()
        await pilot.press("R")
        await _settle(app, pilot, lambda: type(app.screen).__name__ == "RestoreOptions")
        await pilot.press("enter")  # blank prefix: over the same names
        await _settle(app, pilot, lambda: type(app.screen).__name__ == "ConfirmTyped")
        dialog = app.screen
        assert dialog.expected == "OVERWRITE 1 SCHEMA"
        plan = "\n".join(dialog.lines)
        assert f"OVERWRITES {lab.schema}" in plan and f"{lab.odd}: 5 (now 1)" in plan
        assert f"dumped as they are now to {tmp_path / 'backups' / 'pre-restore'}" in plan
        await _type(pilot, "OVERWRITE 1 SCHEMA")
        await pilot.press("enter")
        await _settle(app, pilot, lambda: "Restored" in _text(screen, "#backups-last"))
    assert lab.rows(lab.schema, lab.odd) == before
    (safety,) = (tmp_path / "backups" / "pre-restore").iterdir()  # what it overwrote, kept
    assert json.loads((safety / "manifest.json").read_text())["schemas"][0]["tables"][lab.odd] == 1
    log = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log if e["action"] == "dbbackup-restore"] == ["intent", "outcome"]


async def test_restore_cancelled_loads_nothing(server, lab_schema, admin_conn, tmp_path):
    from djtui.services import dbbackup
    from djtui.services.database import Database

    db = Database(server.settings)
    try:
        dbbackup.run_backup(db, tmp_path / "backups", schemas=[lab_schema], full_server=False)
    finally:
        db.close()
    with admin_conn.cursor() as cur:
        cur.execute(f"DELETE FROM `{lab_schema}`.`odd``name`")
    admin_conn.commit()
    app = DjtuiApp(config=_cfg(server, tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        await _settle(app, pilot, lambda: len(screen.backups) == 1)
        screen.query_one("#backups-table").focus()
        await pilot.press("R")
        await _settle(app, pilot, lambda: type(app.screen).__name__ == "RestoreOptions")
        await pilot.press("enter")
        await _settle(app, pilot, lambda: type(app.screen).__name__ == "ConfirmTyped")
        await pilot.press("escape")
        await _settle(app, pilot, lambda: "cancelled: nothing loaded" in _text(screen, "#backups-last"))
        assert not screen.busy
    admin_conn.commit()
    with admin_conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{lab_schema}`.`odd``name`")
        assert cur.fetchone()[0] == 0
