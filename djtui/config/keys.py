"""The ``keys:`` section: the user's key for a binding, by the binding's id (``sessions.delete: x``).

Only the app knows which binding ids exist, so the config checks the shape (a mapping of id to one key,
a comma-separated list of keys, or a YAML list of keys) and the app reports ids it does not have.
Values come out in Textual's keymap form: keys joined by commas, ready for ``App.set_keymap``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from djtui.config.reader import Reader, kind

_BINDING_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_KEY = re.compile(r"^\S+\Z")
_KEY_HINT = ("name a key as Textual does: a character (`x`, `?`), or a name such as `delete`, `ctrl+d`, "
             "`shift+tab`; several keys: `x,delete` or a list; the comma key is `comma`")


def _keys_of(r: Reader, value: Any, path: tuple[str, ...]) -> str:
    if isinstance(value, str):
        keys = [k.strip() for k in value.split(",")]
    elif isinstance(value, list) and value:
        keys = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise r.fail((*path, str(i)), f"expected a key (a string), got {kind(item)}", _KEY_HINT)
            if "," in item:
                raise r.fail((*path, str(i)), f"{item!r} holds a comma inside a list item", _KEY_HINT)
            keys.append(item.strip())
    else:
        raise r.fail(path, f"expected a key or a list of keys, got {kind(value)}", _KEY_HINT)
    for key in keys:
        if not _KEY.match(key):
            raise r.fail(path, f"{value!r} is not a key or a list of keys (an empty key or a space inside one)",
                         _KEY_HINT)
    return ",".join(keys)


def read_keys(r: Reader, raw: Any) -> Mapping[str, str]:
    """``keys:`` as a read-only mapping of binding id to Textual's comma-separated key string."""
    p = ("keys",)
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, dict):
        raise r.fail(p, f"expected a mapping of binding ids to keys, got {kind(raw)}",
                     "e.g. keys: {sessions.delete: x}; press ? in the app to see the binding ids")
    out: dict[str, str] = {}
    for binding_id, value in raw.items():
        path = (*p, str(binding_id))
        if not isinstance(binding_id, str) or not _BINDING_ID.match(binding_id):
            raise r.fail(path, f"{binding_id!r} is not a binding id",
                         "binding ids read like `sessions.delete`: letters, digits, `_`, `.` and `-`")
        out[binding_id] = _keys_of(r, value, path)
    return MappingProxyType(out)
