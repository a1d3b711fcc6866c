"""What commands print and ask: JSON on stdout, plain tables, and the typed confirmation of a destructive action."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from djtui.errors import OperationFailed, UserError

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def emit_json(data: Any) -> None:
    """JSON on stdout; a file name that is not UTF-8 (a lone surrogate here) goes out as a ``\\udcXX`` escape.

    A list goes out one element a line (each line ``grep``-able, the whole still one JSON document):
    Python's encoder is in C only without ``indent``, and indenting 50,000 sessions took 5 s.
    """
    if isinstance(data, list):
        one = json.JSONEncoder(default=str, ensure_ascii=False).encode
        text = "[\n" + ",\n".join(one(item) for item in data) + "\n]" if data else "[]"
    else:
        text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write(_LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))
    sys.stdout.write("\n")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str | None = None) -> str:
    """A plain text table; ``align`` holds one of 'l'/'r' per column."""
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)
    lines = []
    for n, row in enumerate(cells):
        parts = []
        for i, c in enumerate(row):
            pad = widths[i] - _width(c)
            parts.append(" " * pad + c if align[i] == "r" else c + " " * pad)
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _width(text: str) -> int:
    from rich.cells import cell_len
    return cell_len(text)


def confirm_typed(expected: str, supplied: str | None, prompt: str) -> None:
    """A destructive action's confirmation: typed on a terminal, or --confirm without one."""
    if supplied is not None:
        if supplied != expected:
            raise UserError(f"confirmation text {supplied!r} does not match {expected!r}",
                            where="--confirm", hint=f"pass --confirm {expected!r} exactly")
        return
    if not sys.stdin.isatty():
        raise UserError("this action needs a typed confirmation and there is no terminal",
                        hint=f"pass --confirm {expected!r} to confirm non-interactively")
    try:
        answer = input(f"{prompt}\nType {expected} to confirm: ")
    except EOFError:
        answer = ""
    if answer.strip() != expected:
        raise OperationFailed("not confirmed: nothing was changed")
