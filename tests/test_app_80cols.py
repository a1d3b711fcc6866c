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


async def test_long_user_name_leaves_every_matrix_column_in_view(server, tmp_path: Path) -> None:
    """Before: the user column took the whole name (``…@%``) and the last module columns needed a sideways
    scroll at 80 columns; a long name also pushed the Users table's drift column out of view."""
    from textual.widgets import DataTable, Static

    from djtui.config import AccountSettings
    from djtui.services.accounts import AccountsService
    from djtui.services.database import Database
    from djtui.tui.screens.accounts import AccountsScreen
    from tests.names import unique

    name = unique("averyveryverylongname_")  # about 30 characters (32 at most)
    db = Database(server.settings)
    try:
        service = AccountsService(db, AccountSettings())
        service.apply(service.plan_roles_init())
        plan, _ = service.plan_add_user(name, "user")
        service.apply(plan)
        cfg = parse_config(f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
                           f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
                           f"state_dir: {tmp_path}/state\n")
        app = DjtuiApp(config=cfg)
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(100):
                await app.workers.wait_for_complete()
                await pilot.pause(0.1)
                if app.ctx.db is not None:
                    break
            await pilot.press("5")
            screen = app.screen
            assert isinstance(screen, AccountsScreen)
            for _ in range(100):
                await app.workers.wait_for_complete()
                await pilot.pause(0.1)
                if screen.state is not None:
                    break
            modules = screen.state.modules
            assert len(modules) == 11  # Spyglass's shared modules: the widest case the screen knows
            matrix = screen.query_one("#acct-matrix", DataTable)
            users = screen.query_one("#acct-users", DataTable)
            await pilot.pause(0.3)
            for table in (matrix, users):  # every column in view: nothing to scroll sideways to
                assert table.max_scroll_x == 0, (table.id, table.virtual_size, table.size)
            account = f"{name}@%"
            shown = str(matrix.get_row(account)[0])
            assert shown.endswith("…") and name.startswith(shown[:-1]), shown
            assert len(matrix.columns) == 3 + len(modules)
            matrix.focus()
            await pilot.pause(0.1)
            matrix.move_cursor(row=matrix.get_row_index(account))
            await pilot.pause(0.3)
            lines = _lines(app)
            row = next(line for line in lines if line.startswith(f" {shown} "))
            assert len(row.split()) == 3 + len(modules) and row.split()[1] == "ALL", row  # own ALL, then R...
            detail = str(screen.query_one("#acct-detail", Static).render())
            assert detail.startswith(f"{account}: roles dj_user"), detail  # the full name, under the tables
            assert any(line.startswith(f" {account}: roles") for line in lines), lines
            assert screen._highlighted_key() == account  # the keys act on the row the matrix moved to
            footer = _footer(app)
            assert "p Reset password" in footer and footer.rstrip().endswith("^p palette"), footer
            assert users.max_scroll_x == 0
    finally:
        conn = server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("DROP USER IF EXISTS %s@'%%'", (name,))
        finally:
            conn.close()
            db.close()
