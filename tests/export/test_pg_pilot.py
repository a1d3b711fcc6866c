"""The Export screen on PostgreSQL, driven by Pilot: pick a table, type a restriction (checked on the
server as it is typed), plan, write the SQL file, verify it in a private PostgreSQL."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Input, OptionList, Static

from djtui.config import parse_config
from djtui.tui.app import DjtuiApp
from djtui.tui.widgets.export_write import ExportWriteDialog
from tests.export.pglab import build_lab, drop_lab, lab_prefix
from tests.export.test_screen import _highlight, _open_export, _settle


async def test_export_screen_on_postgresql(pg_server, tmp_path):
    p = lab_prefix()
    conn = pg_server.connect()
    build_lab(conn, p)
    cfg = parse_config(f"database:\n  backend: postgresql\n  name: postgres\n  host: 127.0.0.1\n"
                       f"  port: {pg_server.port}\n  user: djadmin\n  password: {pg_server.password.reveal()}\n"
                       f"  use_datajoint_config: false\nstate_dir: {tmp_path}/state\n"
                       f"export:\n  schema_prefixes: [{p}]\n  out_dir: {tmp_path}/exports\n")
    app = DjtuiApp(config=cfg)
    notes: list[str] = []
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open_export(app, pilot)
            opts = screen.query_one("#export-tables", OptionList)
            ids = {opts.get_option_at_index(i).id for i in range(opts.option_count)}
            assert {f"{p}_acq.trace", f"{p}_lab.session", f"{p}_lab.probe"} <= ids
            opts.focus()
            _highlight(opts, f"{p}_acq.trace")
            await pilot.pause()
            app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
            screen.query_one("#export-restriction", Input).focus()
            await pilot.press(*"nope = 1")
            await pilot.pause(0.6)
            await _settle(app, pilot)
            status = screen.query_one("#export-restriction-status", Static)
            assert status.has_class("bad") and "nope" in str(status.render())  # PostgreSQL's own message
            for _ in range(len("nope = 1")):
                await pilot.press("backspace")
            await pilot.press(*'{"session_id": [5, 7]}')  # key values: quoted as PostgreSQL quotes names
            await pilot.pause(0.6)
            await _settle(app, pilot)
            assert status.has_class("good") and "6 rows" in str(status.render()), str(status.render())
            await pilot.press("enter")
            await _settle(app, pilot)
            counts = screen.query_one("#export-counts", DataTable)
            got = {str(counts.get_row_at(i)[1]): int(counts.get_row_at(i)[0]) for i in range(counts.row_count)}
            assert got == {f"{p}_acq.trace": 6, f"{p}_lab.session": 2, f"{p}_lab.subject": 2,
                           f"{p}_lab.session__file": 4, f"{p}_lab.probe": 4}
            counts.focus()
            await pilot.press("w")
            await pilot.pause()
            assert isinstance(app.screen, ExportWriteDialog)
            await pilot.press("enter")
            await _settle(app, pilot)
            assert app.screen is screen
            manifests = list((tmp_path / "exports").glob("*/manifest.json"))
            assert len(manifests) == 1
            manifest = json.loads(manifests[0].read_text())
            assert manifest["backend"] == "postgresql"
            assert {t["table"]: t["rows"] for t in manifest["tables"]} == got
            await pilot.press("v")
            for _ in range(40):
                await _settle(app, pilot)
                if any("verified" in n or "cannot verify" in n or "differ" in n for n in notes):
                    break
            assert any("✓ verified" in n and "5 table(s) match" in n for n in notes), notes
    finally:
        drop_lab(conn, p)
        conn.close()
