"""Small, colourless and dumb terminals: the app stays usable, or says what it needs.

Operators reach acquisition machines over ssh from whatever they have: a 40x10 split pane, a
terminal with NO_COLOR set, a console that reports TERM=dumb. Pilot tests drive every screen at
40x10 (with and without NO_COLOR); a tmux run checks the real binary on a demo lab.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.command import CommandPalette

from djtui.config import load_config
from djtui.demo import build_lab
from djtui.tui.app import SCREENS, CommandLogScreen, DjtuiApp
from djtui.tui.widgets.help import HelpScreen

# what each screen must show at 40x10 besides its title: proof it drew its content, not just chrome
CONTENT = {"sessions": "Participant", "transfers": "State", "orphans": "source",
           "export": "Tables", "accounts": "Users", "backups": "Backups"}


@pytest.fixture(scope="module")
def demo_config(server, tmp_path_factory: pytest.TempPathFactory):
    prefix = f"r2t{os.getpid()}_"
    base = tmp_path_factory.mktemp("r2demo")
    summary = build_lab(base, server.connect, server.settings, prefix=prefix)
    try:
        yield summary.config_path
    finally:
        conn = server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SET FOREIGN_KEY_CHECKS = 0")
                cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                            (prefix.replace("_", "\\_") + "%",))
                for (db,) in cur.fetchall():
                    cur.execute(f"DROP DATABASE `{db}`")
        finally:
            conn.close()


def screen_text(app: DjtuiApp) -> str:
    """The characters on screen, row by row, read from Textual's own screenshot."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', app.export_screenshot()):
        text = html.unescape(m.group(3)).replace("\xa0", " ")
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), text))
    return "\n".join("".join(t for _, t in sorted(v)) for _, v in sorted(rows.items()))


@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
async def test_every_screen_at_40x10_is_reachable_readable_and_q_quits(demo_config, monkeypatch, no_color):
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    app = DjtuiApp(config=load_config(demo_config, warn=lambda _: None))
    assert app.no_color is no_color
    problems: list[str] = []
    notify = app.notify

    def note(message, **kw):
        if kw.get("severity") == "error":
            problems.append(str(message))
        return notify(message, **kw)

    app.notify = note  # type: ignore[method-assign]
    async with app.run_test(size=(40, 10)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        for name, (key, cls) in SCREENS.items():
            app.screen.set_focus(None)  # a focused input would take the digit as text
            await pilot.press(key)
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
            assert isinstance(app.screen, cls), name
            text = screen_text(app)
            assert cls.SCREEN_TITLE in text.splitlines()[0], (name, text)
            assert CONTENT[name] in text, (name, text)
            assert "^p" in text.splitlines()[-1], (name, text)  # the footer keeps the palette key in sight
            if name == "transfers":
                assert app.screen.query_one("#xfer-table").region.height >= 3  # the job list keeps rows
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen) and "djtui keys" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("L")
        await pilot.pause()
        assert isinstance(app.screen, CommandLogScreen) and "Command log" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await pilot.pause()
        app.screen.set_focus(None)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    assert problems == []
    assert app.return_code == 0


# ---------------------------------------------------------------------------
# the real binary in tmux

DJTUI = [sys.executable, "-m", "djtui"]
_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _colours(ansi: str) -> set[tuple[int, ...]]:
    """Every colour an SGR sequence sets: truecolor as (r, g, b), 256-colour as (n,), basic as (code,)."""
    out: set[tuple[int, ...]] = set()
    for m in _SGR.finditer(ansi):
        params = [int(p) if p else 0 for p in m.group(1).split(";")]
        i = 0
        while i < len(params):
            p = params[i]
            if p in (38, 48) and i + 1 < len(params) and params[i + 1] == 2:
                out.add(tuple(params[i + 2:i + 5]))
                i += 5
            elif p in (38, 48) and i + 1 < len(params) and params[i + 1] == 5:
                out.add((params[i + 2],))
                i += 3
            else:
                if 30 <= p <= 37 or 40 <= p <= 47 or 90 <= p <= 97 or 100 <= p <= 107:
                    out.add((p,))
                i += 1
    return out


def _grey(colour: tuple[int, ...]) -> bool:
    if len(colour) == 3:
        return colour[0] == colour[1] == colour[2]
    n = colour[0]  # 256-colour greys, black/white, and the basic black/white/grey codes
    return n in (0, 7, 8, 15, 30, 37, 40, 47, 90, 97, 100, 107) or 232 <= n <= 255 or n in (16, 231)


class Tmux:
    def __init__(self, name: str):
        self.base = ["tmux", "-L", name, "-f", "/dev/null"]

    def __call__(self, *args: str, check: bool = True) -> str:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, check=check, timeout=30).stdout

    def start(self, session: str, command: str, width: int = 40, height: int = 10) -> None:
        self("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), command)
        self("set-option", "-t", session, "remain-on-exit", "on")

    def wait_for(self, session: str, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self("capture-pane", "-p", "-J", "-S", "-50", "-t", session)  # joined, with history
            if needle in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} never appeared; the pane shows:\n{screen}")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    d = tmp_path_factory.mktemp("r2tmux") / "lab"
    out = subprocess.run([*DJTUI, "demo", "--setup-only", "--dir", str(d)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    try:
        yield d
    finally:
        subprocess.run([*DJTUI, "demo", "--stop", "--dir", str(d)], capture_output=True, timeout=120)


@pytest.fixture
def tmux():
    t = Tmux(f"r2-{os.getpid()}")
    try:
        yield t
    finally:
        t("kill-server", check=False)  # only this private socket's server


def _cmd(env: str, demo_dir: Path) -> str:
    # COLUMNS/LINES inherited from the test run would override the pane's real size (40x10)
    return f"env -u COLUMNS -u LINES {env} {' '.join(DJTUI)} --config {demo_dir / 'djtui.yaml'}; echo EXIT=$?"


def test_tmux_term_dumb_says_what_the_app_needs(tmux: Tmux, demo_dir: Path):
    tmux.start("dumb", _cmd("TERM=dumb NO_COLOR=1", demo_dir), width=200, height=20)
    screen = tmux.wait_for("dumb", "EXIT=")
    assert "EXIT=2" in screen
    flat = " ".join(screen.split())
    assert "TERM=dumb" in flat and "TERM=xterm-256color djtui" in flat and "djtui status-range" in flat
    assert "Traceback" not in screen


def test_tmux_40x10_no_color_every_mode_then_q(tmux: Tmux, demo_dir: Path):
    tmux.start("small", _cmd("TERM=xterm-256color NO_COLOR=1", demo_dir))
    tmux.wait_for("small", "of 64 sessions")
    colours: set[tuple[int, ...]] = set()
    for name, (key, cls) in SCREENS.items():
        tmux("send-keys", "-t", "small", "Escape")  # leave any text field, so digits are screen keys
        time.sleep(0.4)  # an Escape directly followed by a key reads as Alt+key
        tmux("send-keys", "-t", "small", key)
        screen = tmux.wait_for("small", f"djtui · {cls.SCREEN_TITLE}")
        tmux.wait_for("small", CONTENT[name])
        colours |= _colours(tmux("capture-pane", "-p", "-e", "-t", "small"))
        assert "Traceback" not in screen
    assert colours, "the capture held no SGR sequences at all"
    assert all(_grey(c) for c in colours), sorted(c for c in colours if not _grey(c))
    tmux("send-keys", "-t", "small", "Escape")
    time.sleep(0.4)
    tmux("send-keys", "-t", "small", "q")
    assert "EXIT=0" in tmux.wait_for("small", "EXIT=")


def test_without_a_terminal_the_app_refuses_instead_of_writing_escape_codes(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"state_dir: {tmp_path}/state\n")
    out = subprocess.run([*DJTUI, "--config", str(cfg)], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert "needs a terminal" in out.stderr and "djtui status-range" in out.stderr
    assert "\x1b[" not in out.stdout


async def test_typed_confirmation_keeps_its_field_visible_at_40x10(tmp_path):
    """The delete dialog in a 10-row pane: the word to type and the field stay on screen (the plan scrolls)."""
    from textual.widgets import Input

    from djtui.config import parse_config
    from djtui.tui.widgets.confirm import ConfirmTyped

    plan = ["Session p111 20260828: 7 files, 303284 bytes", "  will be deleted from /data/p111/20260828",
            "Preserved in:", "  DataJoint tables (participant 111)", "  Lab NAS: /mnt/nas/20260828/p111 (7 files)"]
    app = DjtuiApp(config=parse_config(f"state_dir: {tmp_path}/state\n"), connect=False)
    answers: list[bool | None] = []
    for size, tall in (((40, 10), False), ((80, 24), True)):
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            app.push_screen(ConfirmTyped("Delete the local copy of p111 20260828?", plan, "DELETE"), answers.append)
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ConfirmTyped)
            field = dialog.query_one("#confirm-input", Input)
            assert field.region.height > 0 and dialog.region.contains_region(field.region), (size, field.region)
            text = screen_text(app)
            assert "Type DELETE" in text, text
            assert ("Lab NAS" in text) is tall  # at 40x10 the plan scrolls; at 80x24 it is all there
            await pilot.press(*"DELETE")
            await pilot.press("enter")
            await pilot.pause()
        app = DjtuiApp(config=parse_config(f"state_dir: {tmp_path}/state\n"), connect=False)
    assert answers == [True, True]


async def test_a_long_confirmation_scrolls_its_plan_and_keeps_prompt_field_and_buttons(tmp_path):
    """The bulk delete lists every safe session: at 80x24 (and 40x10) the list scrolls, while the prompt,
    the field and both buttons stay on screen (A.md #5: they were pushed below the dialog)."""
    from textual.containers import VerticalScroll
    from textual.widgets import Button, Input, Label

    from djtui.config import parse_config
    from djtui.tui.widgets.confirm import ConfirmTyped

    plan = ["27 sessions, 29.5 MB will be deleted locally (33 not safe, kept):", ""]
    plan += [f"  202609{i:02d}  p1{i:02d}  7 files  296.2 KB" for i in range(1, 28)]
    plan += ["", "Preserved in DataJoint and in: Lab NAS"]
    answers: list[bool | None] = []
    for size in ((80, 24), (40, 10), (200, 50)):
        app = DjtuiApp(config=parse_config(f"state_dir: {tmp_path}/state\n"), connect=False)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            app.push_screen(ConfirmTyped("Bulk delete", plan, "DELETE ALL"), answers.append)
            await pilot.pause()
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ConfirmTyped)
            box = dialog.children[0]
            prompt = next(w for w in dialog.query(Label) if "Type" in str(w.render()))
            for widget in (prompt, dialog.query_one("#confirm-input", Input),
                           dialog.query_one("#cancel", Button), dialog.query_one("#ok", Button)):
                assert widget.region.height > 0 and box.region.contains_region(widget.region), (size, widget)
                assert dialog.region.contains_region(widget.region), (size, widget)
            scroll = dialog.query_one(VerticalScroll)
            text = screen_text(app)
            tall = size == (200, 50)
            assert scroll.region.height >= 1 and (scroll.max_scroll_y > 0) is not tall, size  # the list scrolls
            assert ("Lab NAS" in text) is tall, (size, text)
            assert "Type DELETE ALL" in text and "Cancel" in text and "Confirm" in text, (size, text)
            await pilot.press(*"DELETE ALL")
            await pilot.pause()
            assert not dialog.query_one("#ok", Button).disabled
            await pilot.click("#ok")
            await pilot.pause()
    assert answers == [True, True, True]
