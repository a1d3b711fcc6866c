"""DataJoint's names for tables: the class a SQL table name was declared from, and back.

DataJoint (0.14 and 2.x) names a table after its class: ``from_camel_case`` puts ``_`` before every
capital letter that does not start the name and lowercases it (``LFPBand`` -> ``l_f_p_band``,
``LFPBandV1`` -> ``l_f_p_band_v1``), then prefixes the tier (``#`` lookup, ``_`` imported, ``__``
computed, none for manual, ``~`` for its own internal tables such as ``~log``, ``~jobs`` and
``~external_<store>``). A part table is ``<master table>__<part>``. Class names are alphanumeric
and start with a capital, so the conversion is one-to-one: every ``_x`` came from a capital ``X``,
a ``_`` is never followed by a digit, and the reverse is exact. A name DataJoint could not have
produced (``foo_1``, ``Foo``, ``a__b__c``) has no class name.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BODY = re.compile(r"^[a-z](?:[a-z0-9]|_[a-z])*$")  # what from_camel_case can produce
_TIERS = ("__", "_", "#", "~")  # longest first: computed before imported


def tier_prefix(table: str) -> str:
    for p in _TIERS:
        if table.startswith(p):
            return p
    return ""


def is_internal(table: str) -> bool:
    """DataJoint's own tables (``~log``, ``~jobs``, ``~external_<store>``): no class of the pipeline."""
    return table.startswith("~")


def camel(body: str) -> str | None:
    """The class name ``from_camel_case`` turned into ``body`` (``l_f_p_band`` -> ``LFPBand``), or None."""
    if not _BODY.match(body):
        return None
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), body[0].upper() + body[1:])


def uncamel(name: str) -> str:
    """DataJoint's ``from_camel_case`` (``LFPBand`` -> ``l_f_p_band``): what a class's table is named."""
    return re.sub(r"(?<=.)([A-Z])", lambda m: "_" + m.group(1).lower(), name[:1].lower() + name[1:]) \
        if name else name


def class_name(table: str) -> str | None:
    """``Master`` or ``Master.Part`` for a SQL table name (without its database), None if DataJoint
    could not have named it so (internal tables included)."""
    prefix = tier_prefix(table)
    if prefix == "~":
        return None
    rest = table[len(prefix):]
    names = [camel(b) for b in rest.split("__")] if rest else [None]
    if len(names) > 2 or any(n is None for n in names):
        return None
    return ".".join(n for n in names if n)


def split_full(full: str) -> tuple[str, str]:
    db, _, table = full.partition(".")
    return db, table


def display_name(full: str) -> str:
    """``db.ClassName`` (``db.Master.Part``) for ``db.table``; the SQL name where there is no class name."""
    db, table = split_full(full)
    cls = class_name(table)
    return f"{db}.{cls}" if cls else full


@dataclass(frozen=True)
class TableName:
    """One table as the screen lists it: its SQL name, its class name (or the SQL name) and its kind."""

    full: str  # db.table, as the server has it
    shown: str  # db.ClassName (db.Master.Part), else db.table
    internal: bool
    part: bool

    def matches(self, text: str) -> bool:
        """Every word of ``text`` is in the class name or the SQL name (case-insensitive)."""
        hay = f"{self.shown}\n{self.full}".casefold()
        return all(word in hay for word in text.casefold().split())


def table_names(tables: list[str] | set[str] | tuple[str, ...]) -> list[TableName]:
    """The tables by database, then class name; a part follows its master."""
    names = set(tables)
    out = []
    for full in names:
        db, table = split_full(full)
        prefix = tier_prefix(table)
        body = table[len(prefix):]
        master = body.split("__", 1)[0] if "__" in body else None
        part = bool(master) and f"{db}.{prefix}{master}" in names and class_name(table) is not None
        out.append(TableName(full, display_name(full), is_internal(table), part))
    return sorted(out, key=lambda n: (n.shown.casefold(), n.full))


def is_part(full: str, tables: set[str] | frozenset[str]) -> bool:
    """``db.master__part`` whose master ``db.master`` is among ``tables`` (DataJoint's part naming)."""
    db, table = split_full(full)
    prefix = tier_prefix(table)
    body = table[len(prefix):]
    if prefix == "~" or "__" not in body:
        return False
    master = body.split("__", 1)[0]
    return bool(master) and f"{db}.{prefix}{master}" in tables


# -- fitting a name into a narrow column -------------------------------------------------------

_BREAK = re.compile(r"(?<=[._])|(?<=[a-z0-9])(?=[A-Z])")  # after . and _, before a CamelCase word


def _words(text: str) -> list[str]:
    return [w for w in _BREAK.split(text) if w]


def middle_truncate(text: str, width: int) -> str:
    """``text`` in ``width`` cells with ``…`` in the middle, cut at word boundaries where they leave
    enough of the name (``common_ephys.LFPBandSelection`` -> ``common_ephys.…Selection``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    room = width - 1
    words = _words(text)
    best = ""
    for i in range(len(words) + 1):  # head = words[:i], tail = the most words after it that fit
        head = "".join(words[:i])
        if len(head) > room:
            break
        tail = ""
        for w in reversed(words[i:]):
            if len(head) + len(w) + len(tail) > room:
                break
            tail = w + tail
        if (head or tail) and len(head) + len(tail) > len(best) - 1:
            best = head + "…" + tail
    if len(best) >= width * 2 // 3:
        return best
    half = room // 2
    return text[:room - half] + "…" + text[len(text) - half:]


def fit_name(text: str, width: int, indent: int = 2) -> list[str]:
    """``text`` as lines of at most ``width`` cells, broken only after a ``.`` (the next line indented);
    a part longer than a line is middle-truncated. Never a break inside a word."""
    if width <= 0 or len(text) <= width:
        return [text]
    pieces = [p for p in re.split(r"(?<=\.)", text) if p]
    lines: list[str] = []
    cur = ""
    for piece in pieces:
        if cur and len(cur) + len(piece) <= width:
            cur += piece
            continue
        if cur:
            lines.append(cur)
        pad = " " * indent if (lines or cur) else ""
        cur = pad + middle_truncate(piece, width - len(pad))
    if cur:
        lines.append(cur)
    return lines
