"""Terminal habits on every screen and the user's key map (issue 16).

The habits act on whatever list is focused, so they are tested on a small screen of our own holding a
real DataTable and a text field (the app, its bindings and Textual's key dispatch are the real ones).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from textual.app import ComposeResult
from textual.binding import Binding
from textual.dom import DOMNode
from textual.widgets import DataTable, Input

import djtui.tui
from djtui.config import parse_config
from djtui.errors import ConfigError
from djtui.tui.app import DjtuiApp
from djtui.tui.keys import check_keymap, key_label, known_binding_ids, source_binding_ids
from djtui.tui.screens.base import DjtuiScreen

TUI = Path(djtui.tui.__file__).parent
NAMES = ["ada", "bob", "cy", "dora", "eve", "fay", "gus", "hal", "ivy", "jo", "kim", "lou"]


class ListScreen(DjtuiScreen):
    SCREEN_TITLE = "Test list"
    BINDINGS = [Binding("d", "delete", "Delete", id="sessions.delete")]  # a write key, for read-only

    def __init__(self, *, wide: bool = False):
        super().__init__()
        self.wide = wide
        self.deleted = 0

    def compose_body(self) -> ComposeResult:
        yield Input(id="field")
        yield DataTable(id="table", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("n", "name", *([f"wide column {i}" for i in range(12)] if self.wide else []))
        for i, name in enumerate(NAMES):
            table.add_row(str(i), name, *(["x" * 20] * 12 if self.wide else []), key=name)
        table.focus()

    def action_delete(self) -> None:
        self.deleted += 1


def _config(tmp_path, extra: str = ""):
    return parse_config(f"state_dir: {tmp_path}/state\naudit_log: {tmp_path}/audit.jsonl\n{extra}")


async def _open(app, pilot, **kw) -> ListScreen:
    screen = ListScreen(**kw)
    await app.push_screen(screen)
    await pilot.pause()
    return screen


def _row(screen: ListScreen) -> str:
    table = screen.query_one(DataTable)
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


async def test_j_k_g_G_move_the_cursor_of_the_focused_table(tmp_path):
    app = DjtuiApp(config=_config(tmp_path), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        assert _row(screen) == "ada"
        await pilot.press("j", "j", "j")
        assert _row(screen) == "dora"
        await pilot.press("k")
        assert _row(screen) == "cy"
        await pilot.press("G")
        assert _row(screen) == "lou"
        await pilot.press("g")
        assert _row(screen) == "ada"
        await pilot.press("k")  # stays on the first row
        assert _row(screen) == "ada"


async def test_home_and_end_go_to_the_first_and_last_row_not_sideways(tmp_path):
    app = DjtuiApp(config=_config(tmp_path), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot, wide=True)
        table = screen.query_one(DataTable)
        assert table.max_scroll_x > 0  # the table is wider than the screen: End could scroll sideways
        await pilot.press("end")
        assert _row(screen) == "lou"
        assert table.scroll_x == 0
        await pilot.press("home")
        assert _row(screen) == "ada"


async def test_slash_search_then_n_and_N_find_the_next_and_previous_match(tmp_path):
    app = DjtuiApp(config=_config(tmp_path), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        await pilot.press("slash")
        await pilot.pause()
        bar = screen.query_one("#search-input", Input)
        assert screen.focused is bar
        await pilot.press("o")  # as typed, the cursor goes to the first match: b-o-b
        assert _row(screen) == "bob"
        await pilot.press("enter")
        await pilot.pause()
        assert not screen.query("#search-bar")
        assert screen.focused is screen.query_one(DataTable)
        await pilot.press("n")
        assert _row(screen) == "dora"
        await pilot.press("n")
        assert _row(screen) == "jo"
        await pilot.press("n")
        assert _row(screen) == "lou"
        await pilot.press("n")  # wraps round
        assert _row(screen) == "bob"
        await pilot.press("N")  # backwards, wrapping too
        assert _row(screen) == "lou"


async def test_escape_cancels_a_search_back_where_it_started(tmp_path):
    app = DjtuiApp(config=_config(tmp_path), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        await pilot.press("j", "slash", "i", "v")
        assert _row(screen) == "ivy"
        await pilot.press("escape")
        await pilot.pause()
        assert _row(screen) == "bob"
        assert not screen.query("#search-bar")
        await pilot.press("n")  # nothing kept to repeat: the cursor stays
        assert _row(screen) == "bob"


async def test_O_reverses_the_order_of_the_focused_table_keeping_the_cursor_row(tmp_path):
    app = DjtuiApp(config=_config(tmp_path), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        table = screen.query_one(DataTable)
        await pilot.press("j")
        await pilot.press("O")
        assert [r.key.value for r in table.ordered_rows] == NAMES[::-1]
        assert _row(screen) == "bob"
        await pilot.press("g")
        assert _row(screen) == "lou"
        await pilot.press("O")
        assert [r.key.value for r in table.ordered_rows] == NAMES


async def test_O_flips_the_sort_of_a_screen_that_keeps_its_own(tmp_path):
    class Sorted(ListScreen):
        def __init__(self):
            super().__init__()
            self.sort_reverse = False

        def render_rows(self) -> None:
            table = self.query_one(DataTable)
            table.clear()
            for i, name in enumerate(sorted(NAMES, reverse=self.sort_reverse)):
                table.add_row(str(i), name, key=name)

    app = DjtuiApp(config=_config(tmp_path), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = Sorted()
        await app.push_screen(screen)
        await pilot.pause()
        await pilot.press("O")
        assert screen.sort_reverse is True
        assert [r.key.value for r in screen.query_one(DataTable).ordered_rows] == sorted(NAMES, reverse=True)


async def test_keys_typed_into_a_text_field_are_text(tmp_path):
    app = DjtuiApp(config=_config(tmp_path), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        field = screen.query_one("#field", Input)
        field.focus()
        await pilot.press("j", "k", "g", "G", "n", "N", "O", "slash", "d", "q")
        assert field.value == "jkgGnNO/dq"
        assert _row(screen) == "ada"
        assert screen.deleted == 0
        assert not screen.query("#search-bar")
        assert app.screen is screen  # q typed, not quit


async def test_a_screen_binding_wins_over_a_habit_on_the_same_key(tmp_path):
    class Own(ListScreen):
        BINDINGS = [Binding("j", "mine", "Mine", id="test.mine")]
        hits = 0

        def action_mine(self) -> None:
            self.hits += 1

    app = DjtuiApp(config=_config(tmp_path), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = Own()
        await app.push_screen(screen)
        await pilot.pause()
        await pilot.press("j", "k")
        assert screen.hits == 1
        assert _row(screen) == "ada"  # j was the screen's; k still moves (nowhere, from the top)


async def test_a_key_remapped_in_the_config_works_and_the_old_one_does_not(tmp_path):
    cfg = _config(tmp_path, "keys:\n  nav.down: ctrl+n\n  app.help: f1\n  sessions.delete: x\n")
    app = DjtuiApp(config=cfg, connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        await pilot.press("j")
        assert _row(screen) == "ada"
        await pilot.press("ctrl+n", "ctrl+n")
        assert _row(screen) == "cy"
        await pilot.press("d")
        assert screen.deleted == 0
        await pilot.press("x")
        assert screen.deleted == 1
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("f1")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"


async def test_read_only_refuses_a_write_key_under_its_remapped_key(tmp_path):
    cfg = _config(tmp_path, "readonly: true\nkeys:\n  sessions.delete: x\n")
    app = DjtuiApp(config=cfg, connect=False)
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot)
        await pilot.press("x")
        await pilot.pause()
    assert screen.deleted == 0
    assert any("refused: delete writes" in n for n in notes)


def test_an_unknown_binding_id_is_refused_at_start_naming_the_close_ones(tmp_path):
    cfg = _config(tmp_path, "keys:\n  nav.dwn: x\n  sessions.delete: y\n")
    with pytest.raises(ConfigError) as err:
        DjtuiApp(config=cfg, connect=False)
    text = err.value.render()
    assert err.value.exit_code == 2
    assert "`nav.dwn`" in text and "`nav.down`" in text
    assert text.startswith("(no config file): keys:")  # where: the config file (here none) and its section
    assert "sessions.delete" not in text.split("hint")[0]  # the known id is not reported


def test_check_keymap_lists_ids_of_the_same_group_when_none_is_close():
    with pytest.raises(ConfigError) as err:
        check_keymap({"orphans.zzzzzzzz": "x"}, ["orphans.rescan", "orphans.purge", "sessions.sync"])
    assert "`orphans.rescan`" in str(err.value) and "`orphans.purge`" in str(err.value)
    assert "sessions.sync" not in str(err.value).split("hint")[0]


def test_key_labels_are_what_a_person_types():
    assert key_label("question_mark") == "?"
    assert key_label("slash") == "/"
    assert key_label("g,home") == "g Home"
    assert key_label("escape,q") == "Esc q"
    assert key_label("ctrl+x") == "ctrl+x"
    assert key_label("G") == "G"


def _binding_calls() -> list[tuple[str, ast.Call]]:
    out = []
    for path in sorted(TUI.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Binding":
                out.append((f"{path.relative_to(TUI)}:{node.lineno}", node))
    return out


def test_every_binding_has_an_id():
    missing = [where for where, call in _binding_calls() if not any(kw.arg == "id" for kw in call.keywords)]
    assert missing == []


def _runtime_binding_ids() -> set[str]:
    """The ids the classes of djtui/tui really hold (every module imported)."""
    ids: set[str] = set()
    for mod in pkgutil.walk_packages([str(TUI)], "djtui.tui."):
        module = importlib.import_module(mod.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, DOMNode) and cls.__module__.startswith("djtui."):
                ids |= {b.id for b in cls.BINDINGS if isinstance(b, Binding) and b.id}
    return ids


def test_the_ids_read_from_the_source_are_the_ids_the_classes_hold():
    assert known_binding_ids(DjtuiApp.BINDINGS) == _runtime_binding_ids()
    assert {"nav.down", "nav.search", "nav.reverse", "app.help", "screen.sessions"} <= known_binding_ids(
        DjtuiApp.BINDINGS)
    assert source_binding_ids() <= _runtime_binding_ids()


def test_docs_keys_lists_every_binding_id_and_no_other():
    import re
    doc = (TUI.parents[1] / "docs" / "keys.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(\w+\.[\w.]+)` \|", doc, re.M))
    known = known_binding_ids(DjtuiApp.BINDINGS)
    assert known - listed == set(), "add these ids to docs/keys.md"
    assert listed - known == set(), "docs/keys.md names ids no binding has"


async def test_a_key_map_clash_on_a_screen_is_reported_and_the_map_wins(tmp_path):
    class Two(ListScreen):
        BINDINGS = [Binding("r", "refresh", "Refresh", id="sessions.refresh")]
        refreshed = 0

        def action_refresh(self) -> None:
            self.refreshed += 1

    cfg = _config(tmp_path, "keys:\n  sessions.delete: r\n")
    app = DjtuiApp(config=cfg, connect=False)
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        screen = Two()
        await app.push_screen(screen)
        await pilot.pause()
        await pilot.press("r", "r")
        await pilot.pause()
        assert (screen.deleted, screen.refreshed) == (2, 0)
    clashes = [n for n in notes if "sessions.refresh" in n]
    # once per screen that has the clash (Sessions, shown first, and this one), not once per key press
    assert len(clashes) == 2 and all("no key on this screen" in n and "`r`" in n for n in clashes)


async def test_the_habits_work_on_an_option_list_and_a_tree_too(tmp_path):
    from textual.widgets import OptionList, Tree

    class Lists(DjtuiScreen):
        def compose_body(self) -> ComposeResult:
            yield OptionList(*NAMES, id="opts")
            tree: Tree[str] = Tree("root", id="tree")
            tree.root.expand()
            for name in NAMES[:5]:
                tree.root.add_leaf(name)
            yield tree

    app = DjtuiApp(config=_config(tmp_path), connect=False)
    async with app.run_test(size=(80, 40)) as pilot:
        screen = Lists()
        await app.push_screen(screen)
        await pilot.pause()
        opts = screen.query_one(OptionList)
        screen.set_focus(None)
        await pilot.press("j")  # nothing focused: the first list takes the focus and the key
        assert screen.focused is opts and opts.highlighted == 0
        await pilot.press("G")
        assert opts.highlighted == len(NAMES) - 1
        await pilot.press("slash", *"ev", "enter")
        await pilot.pause()
        assert opts.highlighted == NAMES.index("eve")
        await pilot.press("g")
        assert opts.highlighted == 0
        tree = screen.query_one(Tree)
        tree.focus()
        await pilot.press("G")
        assert tree.cursor_line == 5
        await pilot.press("k", "k")
        assert str(tree.cursor_node.label) == "cy"
        await pilot.press("home")
        assert tree.cursor_line == 0
        await pilot.press("end")
        assert tree.cursor_line == 5


async def test_the_habits_work_on_the_orphans_item_list(tmp_path):
    import gc

    from djtui.domain import stores as ds
    from djtui.tui.widgets.orphans_list import OrphanList

    class Items(DjtuiScreen):
        def compose_body(self) -> ComposeResult:
            yield OrphanList(id="items")

    app = DjtuiApp(config=_config(tmp_path), connect=False)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = Items()
            await app.push_screen(screen)
            await pilot.pause()
            items = screen.query_one(OrphanList)
            items.set_items([ds.OrphanItem("external:lab:main", ds.UNTRACKED_OBJECT, path=f"raw/{name}.dat",
                                           size=i, mtime=0.0) for i, name in enumerate(NAMES)])
            items.focus()
            await pilot.press("j", "j")
            assert items.cursor == 2
            await pilot.press("G")
            assert items.cursor == len(NAMES) - 1
            await pilot.press("slash", *"ivy", "enter")
            await pilot.pause()
            assert items.cursor == NAMES.index("ivy")
            await pilot.press("g", "k")
            assert items.cursor == 0
    finally:
        gc.unfreeze()  # set_items freezes what it loads


async def test_O_reverses_a_table_whose_rows_have_no_keys(tmp_path):
    class Keyless(DjtuiScreen):
        def compose_body(self) -> ComposeResult:
            yield DataTable(id="t", cursor_type="row")

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_column("name")
            for name in NAMES[:4]:
                table.add_row(name)
            table.focus()

    app = DjtuiApp(config=_config(tmp_path), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = Keyless()
        await app.push_screen(screen)
        await pilot.pause()
        table = screen.query_one(DataTable)
        await pilot.press("j", "O")
        assert [str(table.get_row_at(i)[0]) for i in range(4)] == NAMES[:4][::-1]
        assert str(table.get_row_at(table.cursor_row)[0]) == "bob"
        table.sort(key=lambda cells: cells[0][-1])  # an order that is not the order the rows were added in
        assert [str(table.get_row_at(i)[0]) for i in range(4)] == ["ada", "dora", "bob", "cy"]
        await pilot.press("O")
        assert [str(table.get_row_at(i)[0]) for i in range(4)] == ["cy", "bob", "dora", "ada"]


async def test_a_long_list_is_searched_in_a_thread_on_enter_and_n(tmp_path):
    import gc

    from djtui.domain import stores as ds
    from djtui.tui.navigation import SEARCH_INLINE_ROWS
    from djtui.tui.widgets.orphans_list import OrphanList

    class Items(DjtuiScreen):
        def compose_body(self) -> ComposeResult:
            yield OrphanList(id="items")

    n = SEARCH_INLINE_ROWS + 1000
    app = DjtuiApp(config=_config(tmp_path), connect=False)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = Items()
            await app.push_screen(screen)
            await pilot.pause()
            items = screen.query_one(OrphanList)
            items.set_items([ds.OrphanItem("external:lab:main", ds.UNTRACKED_OBJECT,
                                           path=f"raw/{'needle' if i % 2500 == 7 else 'hay'}{i}.dat", size=i,
                                           mtime=0.0) for i in range(n)])
            items.focus()
            await pilot.press("slash", *"needle")
            await pilot.pause()
            assert items.cursor == 0  # not searched as typed: a long list is searched on Enter
            await pilot.press("enter")
            await _until(lambda: items.cursor == 7)
            await pilot.press("n")
            await _until(lambda: items.cursor == 2507)
            await pilot.press("N")
            await _until(lambda: items.cursor == 7)
            await pilot.press("N")  # backwards from the first: round to the last needle
            await _until(lambda: items.cursor == 2 * 2500 + 7)
    finally:
        gc.unfreeze()


async def _until(cond, timeout: float = 20.0) -> None:
    import asyncio
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.02)


def test_djtui_in_a_terminal_exits_2_on_an_unknown_binding_id(tmp_path):
    """The whole way a person meets it: `djtui` in a terminal, a typo under keys:, exit 2 naming it."""
    import os
    import subprocess
    import sys

    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(f"state_dir: {tmp_path}/state\nkeys:\n  sessions.delte: x\n")
    main_fd, term_fd = os.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg)], stdin=term_fd, stdout=term_fd,
                              stderr=subprocess.PIPE, text=True, timeout=60,
                              env={**os.environ, "TERM": "xterm-256color"})
    finally:
        os.close(term_fd)
        os.close(main_fd)
    assert proc.returncode == 2, proc.stderr
    assert f"{cfg}: keys" in proc.stderr
    assert "`sessions.delte`" in proc.stderr and "`sessions.delete`" in proc.stderr
