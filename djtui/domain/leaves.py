"""Leaves as the user writes them (``db.table:RESTRICTION``, JSON key values) and SQL value literals.

Pure: no I/O. The one parser of the CLI's ``--leaf``, the screen's restriction field, recorded
leaves and Spyglass's export log. A restriction is refused here when it can never be one condition
(statement separators, comments, open quotes, a parenthesis it did not open).
SQL that names identifiers takes a ``dialect`` (MySQL's by default: the only server djtui exports from).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from typing import TYPE_CHECKING, Any

from djtui.domain.cascade import Leaf
from djtui.domain.dialects import MYSQL, SqlDialect
from djtui.domain.djnames import display_name
from djtui.errors import UserError

if TYPE_CHECKING:
    from networkx import MultiDiGraph

_LEAF = re.compile(r"^\s*`?(?P<db>[^`.:]+)`?\.`?(?P<table>[^`:]+)`?\s*(?::(?P<restr>.*))?$", re.S)


def parse_leaf(text: str, *, where: str = "--leaf", dialect: SqlDialect = MYSQL) -> Leaf:
    """``db.table:RESTRICTION`` (the restriction may be SQL or a JSON object of key values)."""
    m = _LEAF.match(text)
    if not m:
        raise UserError(f"cannot read leaf {text!r}", where=where,
                        hint="write it as db.table:RESTRICTION, e.g. 'lab.session:subject_id = 3'")
    table = f"{m.group('db')}.{m.group('table')}"
    return Leaf(table, parse_restriction(m.group("restr") or "", where=f"{where} {table}", dialect=dialect))


def parse_restriction(text: str, *, where: str, dialect: SqlDialect = MYSQL) -> str:
    """A leaf's restriction as the user writes it (``--leaf``'s part after ``:``, the screen's field):
    a SQL condition, or a JSON object (or list of objects) of key values, made a SQL condition here.
    The one parser of the CLI and the screen. Returns the SQL condition ('' for every row)."""
    restr = text.strip()
    if restr.startswith(("{", "[")):
        try:
            keys = json.loads(restr)
        except ValueError as exc:
            raise UserError(f"the key values {restr!r} are not valid JSON: {exc}", where=where,
                            hint='write JSON key values as {"subject_id": 1}, or a SQL condition') from None
        restr = keys_restriction(keys, where=where, dialect=dialect)
    check_restriction(restr, where=where)
    return restr


def resolve_leaf_tables(leaves: list[Leaf], graph: MultiDiGraph) -> list[Leaf]:
    """Leaves named by DataJoint class (``common_ephys.LFPBand``, ``common_device.Probe.Electrode``) get
    their SQL table (``common_ephys.__l_f_p_band``); SQL names stay. An unknown name is left for the
    cascade to refuse."""
    by_class: dict[str, list[str]] = {}
    for t in graph.nodes:
        by_class.setdefault(display_name(t), []).append(t)
    out = []
    for leaf in leaves:
        found = by_class.get(leaf.table, []) if leaf.table not in graph else []
        out.append(Leaf(found[0], leaf.restriction) if len(found) == 1 else leaf)
    return out


def keys_restriction(keys: Any, *, where: str, dialect: SqlDialect = MYSQL) -> str:
    """Key values as a SQL condition with every value a literal: a list of objects means OR, a list
    of values for one attribute means IN."""
    items = keys if isinstance(keys, list) else [keys]
    if not items:
        raise UserError("the list of key values is empty", where=where,
                        hint='give at least one object, e.g. [{"subject_id": 1}]')
    parts = []
    for item in items:
        if not isinstance(item, dict) or not item:
            raise UserError("key values must be a JSON object with at least one attribute (or a list of such "
                            "objects)", where=where, hint='e.g. {"subject_id": 1, "session_id": 2}')
        conds = []
        for k, v in item.items():
            if isinstance(v, list):
                if not v:
                    raise UserError(f"the list of values for {k!r} is empty", where=where)
                conds.append(f"{dialect.ident(k)} IN ({', '.join(_key_literal(k, x, where, dialect) for x in v)})")
            else:
                conds.append(f"{dialect.ident(k)} = {_key_literal(k, v, where, dialect)}")
        parts.append("(" + " AND ".join(conds) + ")")
    return " OR ".join(parts)


def _key_literal(name: str, value: Any, where: str, dialect: SqlDialect = MYSQL) -> str:
    if isinstance(value, dict | list):
        raise UserError(f"the value of {name!r} must be a number, a string or null (or a list of them), "
                        f"not {json.dumps(value)}", where=where)
    if isinstance(value, str) and dialect.name != MYSQL.name:  # MySQL's backslash escapes are not standard SQL
        return dialect.literal(value)
    try:
        return sql_literal(value)
    except TypeError:
        raise UserError(f"the value of {name!r} cannot be written as SQL: {value!r}", where=where) from None


def check_restriction(text: str, *, where: str) -> None:
    """Refuse what can never be one condition: statement separators, comments, open quotes."""
    quote = ""
    depth = 0  # a `)` with no `(` would close djtui's WHERE (...) and append to the statement
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise UserError("a restriction may not close a parenthesis it did not open", where=where,
                                hint="balance the parentheses of the condition")
        elif ch == ";":
            raise UserError("a restriction is one condition; it may not contain ';'", where=where,
                            hint="remove the ';' and anything after it")
        elif ch == "#" or text.startswith("--", i) or text.startswith("/*", i):
            raise UserError("comments are not allowed in a restriction", where=where)
        i += 1
    if quote:
        raise UserError(f"unclosed {quote} in the restriction", where=where)
    if depth:
        raise UserError("unbalanced parentheses in the restriction", where=where,
                        hint="close every ( the condition opens")


# ---------------------------------------------------------------------------
# SQL value literals (key-value leaves, the dump script's key lists, Spyglass's file leaves)


_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"})


def sql_literal(v: Any) -> str:
    """One value as a MySQL literal; binary as hex so no client charset can change it."""
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.translate(_ESCAPES) + "'"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        b = bytes(v)
        return "0x" + b.hex() if b else "''"
    if isinstance(v, dt.datetime):
        return "'" + v.isoformat(sep=" ") + "'"
    if isinstance(v, dt.date):
        return "'" + v.isoformat() + "'"
    if isinstance(v, dt.timedelta):
        total = v.days * 86400 + v.seconds
        sign = "-" if total < 0 or (total == 0 and v.microseconds < 0) else ""
        if v < dt.timedelta(0):
            v = -v
            total = v.days * 86400 + v.seconds
        h, rem = divmod(total, 3600)
        m, s = divmod(rem, 60)
        frac = f".{v.microseconds:06d}" if v.microseconds else ""
        return f"'{sign}{h:02d}:{m:02d}:{s:02d}{frac}'"
    if isinstance(v, set | frozenset):
        return sql_literal(",".join(sorted(v)))
    raise TypeError(f"no SQL literal for {type(v).__name__}")

