"""Typed, line-aware access to the YAML document: every check names the file, the key and its line."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from djtui.errors import ConfigError


class Secret:
    """A credential that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


class Reader:
    """Typed access to a YAML mapping that remembers key paths and lines."""

    def __init__(self, source: str, lines: dict[tuple[str, ...], int], base_dir: Path):
        self.source = source
        self.lines = lines
        self.base_dir = base_dir
        self.warnings: list[str] = []  # unknown keys in formats djtui does not own (lenient mappings)

    def where(self, path: tuple[str, ...]) -> str:
        key = ".".join(path) if path else "(top level)"
        line = self.lines.get(path)
        while line is None and path:
            path = path[:-1]
            line = self.lines.get(path)
        return f"{self.source}, key `{key}`" + (f" (line {line})" if line else "")

    def fail(self, path: tuple[str, ...], what: str, hint: str | None = None) -> ConfigError:
        return ConfigError(what, where=self.where(path), hint=hint)

    def mapping(self, value: Any, path: tuple[str, ...], allowed: Iterable[str], *, lenient: bool = False) -> dict:
        """``value`` as a mapping whose keys are all ``allowed``.

        An unknown key is an error (exit 2) in djtui's own sections. With ``lenient`` (a format
        djtui does not own, such as the backup manager's ``backup:`` section) it is a warning that
        names the file, the key and its line, and the key is left out of what is returned.
        """
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {kind(value)}")
        allowed = list(allowed)
        unknown = [key for key in value if not isinstance(key, str) or key not in allowed]
        for key in unknown:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean `{near[0]}`?" if near else f"allowed keys: {', '.join(allowed)}"
            if not lenient:
                raise self.fail((*path, str(key)), f"unknown key `{key}`", hint)
            self.warnings.append(f"{self.where((*path, str(key)))}: unknown key `{key}` ignored "
                                 f"(djtui does not use it; {hint})")
        return {k: v for k, v in value.items() if k not in unknown} if unknown else value

    def string(self, m: dict, key: str, path: tuple[str, ...], default: Any = ..., *,
               choices: Iterable[str] | None = None) -> Any:
        if key not in m or m[key] is None:
            if default is ...:
                raise self.fail((*path, key), f"missing required key `{key}`",
                                "add it (see backup_config.example.yaml)")
            return default
        value = m[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.fail((*path, key), f"expected a string, got {kind(value)}")
        if choices is not None and value not in choices:
            raise self.fail((*path, key), f"{value!r} is not one of: {', '.join(choices)}")
        return value

    def boolean(self, m: dict, key: str, path: tuple[str, ...], default: bool) -> bool:
        value = m.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail((*path, key), f"expected true or false, got {value!r}")
        return value

    def number(self, m: dict, key: str, path: tuple[str, ...], default: Any, *, integer: bool = False,
               minimum: float | None = None, maximum: float | None = None) -> Any:
        value = m.get(key, default)
        if value is None:
            return default
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            raise self.fail((*path, key), f"expected {'a whole number' if integer else 'a number'}, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail((*path, key), f"{value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise self.fail((*path, key), f"{value} is above the maximum {maximum}")
        return value

    def strings(self, m: dict, key: str, path: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
        value = m.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            raise self.fail((*path, key), "expected a list of strings, got a single string",
                            f"write it as a list: {key}: [{value!r}]")
        if not isinstance(value, list):
            raise self.fail((*path, key), f"expected a list of strings, got {kind(value)}")
        out = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise self.fail((*path, key, str(i)), f"expected a string, got {kind(item)}")
            out.append(str(item))
        return tuple(out)

    def path(self, m: dict, key: str, path: tuple[str, ...], default: Any = ..., *,
             relative_ok: bool = False) -> Any:
        raw = self.string(m, key, path, default)
        if raw is None:
            return None
        if "\x00" in raw:
            raise self.fail((*path, key), "a path cannot contain a NUL byte")
        p = Path(os.path.expanduser(raw))
        if not p.is_absolute():
            if not relative_ok:
                raise self.fail((*path, key), f"path {raw!r} is relative",
                                "use an absolute path (relative paths change meaning with the working directory)")
            p = self.base_dir / p
        return p

    def secret(self, m: dict, key: str, path: tuple[str, ...]) -> Secret | None:
        value = self.string(m, key, path, None)
        return Secret(value) if value else None

    def items(self, m: dict, key: str, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
        value = m.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail((*path, key), f"expected a list, got {kind(value)}")
        return [((*path, key, str(i)), item) for i, item in enumerate(value)]


def kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def line_map(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path of the document to its 1-based line."""
    lines: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                sub = (*path, str(k.value))
                lines[sub] = k.start_mark.line + 1
                walk(v, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                sub = (*path, str(i))
                lines[sub] = v.start_mark.line + 1
                walk(v, sub)

    if root is not None:
        lines[()] = 1
        walk(root, ())
    return lines


_TABLE_NAME = re.compile(r"^[^.`\x00\n]+\.[^.`\x00\n]+\Z")


def table_name(r: Reader, value: str, path: tuple[str, ...]) -> str:
    if not _TABLE_NAME.match(value):
        raise r.fail(path, f"{value!r} is not a `database.table` name")
    return value
