"""HelpScreen: what the screen it was opened on means (its columns, rules and steps), its keys, the keys
of the whole app, and the read-only rule. Keys are shown as a person types them (``/``, ``?``), each
with its binding id, the name to use under ``keys:`` in the config to remap it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from djtui.errors import READONLY_RULE
from djtui.tui.help import help_text
from djtui.tui.keys import key_label
from djtui.tui.navigation import HABIT_BINDINGS, TerminalHabits


@dataclass(frozen=True)
class KeyLine:
    keys: str  # as typed: "/", "?", "g Home"
    what: str
    binding_id: str = ""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 96%; max-width: 110; height: 90%; border: thick $primary;
        background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, screen_keys: Sequence[KeyLine] = (), *, title: str = "", text: str = "",
                 habits: Sequence[KeyLine] = (), app_keys: Sequence[KeyLine] = (), readonly: bool = False):
        """``title``/``text``: the screen's name and what it means (Rich markup); ``screen_keys``: its own
        keys; ``habits``: the moving-around keys; ``app_keys``: the keys of every screen."""
        super().__init__()
        self.screen_keys = list(screen_keys)
        self.title_text = title
        self.text = text
        self.habits = list(habits)
        self.app_keys = list(app_keys)
        self.readonly = readonly

    @staticmethod
    def _key_lines(lines: Sequence[KeyLine]) -> list[str]:
        """Keys right-aligned in a column, so each reads ``key  what`` and the whats line up."""
        width = max((len(k.keys) for k in lines), default=0)
        return [f"[b]{escape(k.keys.rjust(width + 2))}[/b]  {escape(k.what)}"
                + (f"  [dim]{escape(k.binding_id)}[/dim]" if k.binding_id else "") for k in lines]

    def blocks(self) -> list[tuple[str, str]]:
        """The help as ("prose" | "lines", markup) blocks: prose is laid out by ``render_help``, lines as they are."""
        out: list[tuple[str, str]] = []
        title = escape(self.title_text)
        out.append(("lines", (f"[b reverse] {title} [/b reverse]  " if title else "") + "djtui keys and help\n"))
        if self.text:
            out.append(("prose", self.text + "\n"))
        if self.screen_keys:
            out.append(("lines", "\n".join([f"[b]Keys on {title or 'this screen'}[/b]",
                                             *self._key_lines(self.screen_keys), ""])))
        if self.habits:
            out.append(("lines", "\n".join(["[b]Moving around[/b] (in the focused list; in a text field letters "
                                             "are text, Esc leaves it)", *self._key_lines(self.habits), ""])))
        if self.app_keys:
            out.append(("lines", "\n".join(["[b]Everywhere[/b]", *self._key_lines(self.app_keys), ""])))
        state = "djtui is read-only now" if self.readonly else "djtui is not read-only now"
        out.append(("lines", "[dim]Remap a key in the config: keys: {binding id: key}, e.g. keys: {nav.down: ctrl+n}"
                             " (docs/keys.md)[/dim]\n\n"
                             f"[b]Read-only[/b] ({state})\n{escape(READONLY_RULE)}"))
        return out

    def body(self) -> str:
        return "\n".join(markup for _, markup in self.blocks())

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            for kind, markup in self.blocks():
                yield Static(render_help(markup) if kind == "prose" else Text.from_markup(markup))


_ITEM = re.compile(r"^  (\[b\].*?\[/b\](?: \([^)]*\))?)  (.*)$")


def render_help(markup: str) -> Group:
    """The help's markup laid out for any width: items as a two-column grid whose meanings wrap under
    themselves, paragraphs indented by two, examples by four, headings at the margin."""
    parts: list[RenderableType] = []
    grid: Table | None = None
    for line in markup.split("\n"):
        item = _ITEM.match(line)
        if item:
            if grid is None:
                grid = Table.grid(padding=(0, 2))
                grid.add_column(no_wrap=True)
                grid.add_column(ratio=1)
                parts.append(Padding(grid, (0, 0, 0, 2)))
            term = Text.from_markup(item.group(1))
            term.rstrip()
            grid.add_row(term, Text.from_markup(item.group(2)))
            continue
        grid = None
        indent = 4 if line.startswith("    ") else 2 if line.startswith("  ") else 0
        if line.startswith("[b]") and parts and not (isinstance(parts[-1], Text) and not parts[-1].plain):
            parts.append(Text(""))  # air above a heading
        text = Text.from_markup(line.strip())
        parts.append(Padding(text, (0, 0, 0, indent)) if indent else text)
    return Group(*parts)


def _keys_by_id(bindings: Sequence[Binding], keymap: Mapping[str, str]) -> dict[str, list[str]]:
    """binding id -> the keys that reach it now (a key the key map gave to another binding is gone)."""
    bm = BindingsMap(bindings)
    if keymap:
        bm.apply_keymap(keymap)
    out: dict[str, list[str]] = {}
    for key, found in bm.key_to_bindings.items():
        for b in found:
            if b.id:
                out.setdefault(b.id, []).append(key)
    return out


def help_for(screen: Screen, *, app_bindings: Sequence[Binding], keymap: Mapping[str, str],
             readonly: bool) -> HelpScreen:
    """The help of ``screen``: its meaning, its own keys, the habits it keeps, the app's keys."""
    merged = [b for bs in screen._bindings.key_to_bindings.values() for b in bs]
    reach = _keys_by_id(merged, keymap)
    habit_ids = {b.id for b in HABIT_BINDINGS}
    hidden = {"screen.leave_input", "screen.cancel_wait"}
    own, seen = [], set()
    for b in merged:
        if not b.id or b.id in seen or b.id in habit_ids or b.id in hidden or not b.description:
            continue
        seen.add(b.id)
        if screen.check_action(b.action, ()) is False:
            continue  # not offered here now (read-only hides write keys)
        own.append(KeyLine(key_label(",".join(reach.get(b.id, [b.key]))), b.description, b.id))
    habits = []
    for h in HABIT_BINDINGS:
        keys = reach.get(h.id or "")
        if keys:
            habits.append(KeyLine(key_label(",".join(keys)), h.description, h.id or ""))
        elif h.id:
            mine = keymap.get(h.id, h.key)
            taken = [b.description for b in merged if b.id not in habit_ids
                     and set(reach.get(b.id or "", [])) & set(mine.split(","))]
            what = f"{h.description}: here the screen's {', '.join(taken) or 'own key'}"
            habits.append(KeyLine(key_label(mine), what, h.id))
    habits.append(KeyLine("Home End", "first / last row of a table", ""))
    app_reach = _keys_by_id(app_bindings, keymap)
    app_keys = [KeyLine(key_label(",".join(app_reach.get(b.id or "", [b.key]))), b.description, b.id or "")
                for b in app_bindings if b.description]
    app_keys.append(KeyLine("ctrl+p", "command palette: every action of this screen by name", ""))
    return HelpScreen(own, title=str(getattr(screen, "SCREEN_TITLE", "") or ""), text=help_text(screen),
                      habits=habits if isinstance(screen, TerminalHabits) else (), app_keys=app_keys,
                      readonly=readonly)
