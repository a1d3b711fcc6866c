"""Binding ids, the user's key map (``keys:`` in the config) and keys as a person types them.

Every binding in djtui/tui has an ``id``; the config's ``keys:`` maps ids to keys and the app applies
it with Textual's keymap. An id no binding has is refused at start-up (exit 2, naming the id and the
close ones), so a typo never silently leaves a key unmapped.

The ids are read from the source of djtui/tui (the ``id="..."`` of every ``Binding(...)`` call) plus
the app's own bindings, so checking a key map never imports the screens (start-up stays fast);
tests/test_keys.py checks the two agree with the ids the classes really hold.
"""

from __future__ import annotations

import ast
import difflib
import string
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from textual.binding import Binding
from textual.keys import _character_to_key, key_to_character

from djtui.errors import ConfigError

TUI_DIR = Path(__file__).resolve().parent

_NAMES = {"escape": "Esc", "enter": "Enter", "space": "Space", "tab": "Tab", "home": "Home", "end": "End",
          "pageup": "PgUp", "pagedown": "PgDn", "delete": "Del", "backspace": "Backspace",
          "up": "↑", "down": "↓", "left": "←", "right": "→",
          **{_character_to_key(c): c for c in string.punctuation}}  # slash: /, question_mark: ?


def key_label(keys: str) -> str:
    """Textual's key string as a person types it: ``question_mark`` is ``?``, ``slash,n`` is ``/ n``."""
    out = []
    for key in keys.split(","):
        key = key.strip()
        if not key:
            continue
        char = key_to_character(key) if "+" not in key else None
        out.append(_NAMES.get(key, char if char and char.isprintable() and char != " " else key))
    return " ".join(out)


def effective_key(binding: Binding, keymap: Mapping[str, str]) -> str:
    """The key(s) a binding answers to now: the user's from the key map, else its own."""
    return keymap.get(binding.id, binding.key) if binding.id else binding.key


def current_keymap(app: object) -> Mapping[str, str]:
    """The key map the app applies (Textual's, normalised; empty before one is set)."""
    return getattr(app, "_keymap", {}) or {}


@cache
def source_binding_ids(root: Path = TUI_DIR) -> frozenset[str]:
    """The literal ``id=`` of every ``Binding(...)`` call in the .py files under ``root``."""
    ids: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "Binding(" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Binding":
                for kw in node.keywords:
                    if kw.arg == "id" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                        ids.add(kw.value.value)
    return frozenset(ids)


def known_binding_ids(extra: Iterable[Binding] = ()) -> frozenset[str]:
    """Every binding id of the app: the source's literal ids plus ``extra`` (bindings built in code)."""
    return source_binding_ids() | {b.id for b in extra if isinstance(b, Binding) and b.id}


def check_keymap(keymap: Mapping[str, str], known: Iterable[str], *, where: str = "config keys") -> None:
    """Refuse an id no binding has, naming it and the ids close to it."""
    known = sorted(set(known))
    unknown = [bid for bid in keymap if bid not in known]
    if not unknown:
        return
    parts = []
    for bid in unknown:
        near = difflib.get_close_matches(bid, known, n=3, cutoff=0.6)
        if not near:
            prefix = bid.split(".")[0] + "."
            near = [k for k in known if k.startswith(prefix)][:6]
        parts.append(f"`{bid}`" + (f" (did you mean {', '.join(f'`{n}`' for n in near)}?)" if near else ""))
    groups = sorted({k.split(".")[0] for k in known})
    raise ConfigError(f"unknown binding id{'s' if len(unknown) > 1 else ''}: {'; '.join(parts)}", where=where,
                      hint=f"ids start with {', '.join(groups)}; press ? in the app to see a screen's keys, "
                           "or see docs/keys.md for every id")


def lost_bindings(bindings: Iterable[Binding], keymap: Mapping[str, str]) -> list[tuple[Binding, str]]:
    """Bindings of one screen left without a key because the key map gave their key to another binding
    of the same screen, each with the id that took it. (Textual drops them silently.)"""
    bindings = list(bindings)
    taken: dict[str, str] = {}
    for b in bindings:
        if b.id and b.id in keymap:
            for key in keymap[b.id].split(","):
                taken.setdefault(key.strip(), b.id)
    out = []
    for b in bindings:
        if not b.id or b.id in keymap:
            continue
        keys = [k.strip() for k in b.key.split(",")]
        if keys and all(k in taken for k in keys):
            out.append((b, taken[keys[0]]))
    return out
