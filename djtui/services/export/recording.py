"""Record export leaves from analysis code: ``with djtui.record_export("leaves.json"): ...``.

What Spyglass's mixin does for Spyglass alone, for any DataJoint 2.x pipeline: while the block
runs, every query that fetches data (``fetch``, ``fetch1``, ``to_dicts``, ``to_pandas``,
``to_arrays``, ``keys``... all read through ``QueryExpression.cursor``) is noted as leaves.
A query on one table becomes (table, its WHERE condition). A join becomes one leaf per base
table whose primary key the result still carries, restricted to the keys the query returned
(as a subquery of the query's own SQL, evaluated when the export is planned).
The file feeds ``djtui export plan|write --leaves FILE``.
"""

from __future__ import annotations

import json
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from djtui.domain.cascade import Leaf
from djtui.domain.dialects import MYSQL, POSTGRES, SqlDialect
from djtui.domain.leaves import check_restriction
from djtui.errors import UserError

_FULL = re.compile(r"^`((?:[^`]|``)+)`\.`((?:[^`]|``)+)`$")  # DataJoint on MySQL
_FULL_PG = re.compile(r'^"((?:[^"]|"")+)"\."((?:[^"]|"")+)"$')  # DataJoint 2.x on PostgreSQL
_lock = threading.Lock()


def _table_name(support: Any) -> str | None:
    if not isinstance(support, str):
        return None
    m = _FULL.match(support)
    if m:
        return f"{m.group(1).replace('``', '`')}.{m.group(2).replace('``', '`')}"
    m = _FULL_PG.match(support)
    if not m:
        return None
    return m.group(1).replace('""', '"') + "." + m.group(2).replace('""', '"')


def _dialect(expr: Any) -> SqlDialect:
    """How the expression's server quotes names: DataJoint names its tables in that quoting."""
    names = [s for s in getattr(expr, "support", []) or [] if isinstance(s, str)]
    return POSTGRES if any(_FULL_PG.match(n) for n in names) else MYSQL


def leaves_of(expr: Any) -> list[Leaf]:
    """The leaves one DataJoint query expression stands for (see the module docstring)."""
    support = list(getattr(expr, "support", []) or [])
    where = expr.where_clause() if hasattr(expr, "where_clause") else ""
    condition = where[len(" WHERE "):] if where.startswith(" WHERE ") else where.strip()
    names = [_table_name(s) for s in support]
    if len(support) == 1 and names[0] is not None and not getattr(expr, "_top", None):
        return [Leaf(names[0], condition)]
    leaves: list[Leaf] = []
    heading = set(expr.heading.names)
    sql = expr.make_sql()
    origins = _origins(expr)
    ident = _dialect(expr).ident
    for item, name in zip(support, names, strict=True):
        if name is not None:
            pk = _primary_key(expr, name)
            if pk and set(pk) <= heading:
                cols = ", ".join(ident(c) for c in pk)
                leaves.append(Leaf(name, f"({cols}) IN (SELECT {cols} FROM ({sql}) AS djtui_recorded)"))
            continue
        if not hasattr(item, "support"):
            continue
        # a subquery (a projection that renames, a restricted aggregation...): its base tables,
        # narrowed to the fetched keys where the result still shows their key, renamed or not
        for inner in leaves_of(item):
            pk = _primary_key(expr, inner.table)
            outer = {col: name for name, (table, col) in origins.items() if table == inner.table}
            if pk and all(c in outer for c in pk):
                cols = ", ".join(ident(c) for c in pk)
                shown = ", ".join(ident(outer[c]) for c in pk)
                leaves.append(Leaf(inner.table, f"({cols}) IN (SELECT {shown} FROM ({sql}) AS djtui_recorded)"))
            else:
                warnings.warn(f"djtui.record_export: a fetch from {inner.table} hides its primary key; recorded "
                              "the rows of its inner query (more than were fetched)", stacklevel=4)
                leaves.append(inner)
    return leaves


_IDENT = re.compile(r'^(?:`((?:[^`]|``)+)`|"((?:[^"]|"")+)")$')


def _origins(expr: Any) -> dict[str, tuple[str, str]]:
    """Attribute name -> (base table, column) for the attributes that are a base column, through
    renames and nested subqueries; computed attributes and joins are left out."""
    support = list(getattr(expr, "support", []) or [])
    if len(support) != 1:
        return {}
    base = _table_name(support[0])
    inner = {} if base is not None or not hasattr(support[0], "support") else _origins(support[0])
    out = {}
    for attr in expr.heading.attributes.values():
        source = getattr(attr, "attribute_expression", None)
        m = _IDENT.match(source.strip()) if isinstance(source, str) else None
        src = (m.group(1).replace("``", "`") if m.group(1) is not None else m.group(2).replace('""', '"')) if m \
            else (attr.name if source is None else None)
        if src is None:
            continue
        if base is not None:
            out[attr.name] = (base, src)
        elif src in inner:
            out[attr.name] = inner[src]
    return out


def _primary_key(expr: Any, table: str) -> list[str]:
    db, _, name = table.partition(".")
    # the SQL standard's catalog, as MySQL and PostgreSQL both have it (the connection is DataJoint's)
    rows = expr.connection.query(
        "SELECT k.column_name FROM information_schema.table_constraints AS c "
        "JOIN information_schema.key_column_usage AS k ON k.constraint_schema = c.constraint_schema "
        "AND k.constraint_name = c.constraint_name AND k.table_name = c.table_name "
        "WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = %s AND c.table_name = %s "
        "ORDER BY k.ordinal_position", args=(db, name)).fetchall()
    return [r[0] for r in rows]


@contextmanager
def record_export(path: str | Path) -> Iterator[list[Leaf]]:
    """Note every fetched DataJoint query as leaves; write them to ``path`` (JSON) when the block ends."""
    from datajoint.expression import QueryExpression

    recorded: list[Leaf] = []
    original = QueryExpression.cursor
    busy = threading.local()

    def cursor(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not getattr(busy, "on", False):
            busy.on = True
            try:
                for leaf in leaves_of(self):
                    if leaf not in recorded:
                        recorded.append(leaf)
            finally:
                busy.on = False
        return original(self, *args, **kwargs)

    with _lock:
        if getattr(original, "_djtui_recording", False):
            raise UserError("an export recording is already running", hint="nest no record_export blocks")
        cursor._djtui_recording = True  # type: ignore[attr-defined]
        QueryExpression.cursor = cursor  # type: ignore[method-assign]
    try:
        yield recorded
    finally:
        with _lock:
            QueryExpression.cursor = original  # type: ignore[method-assign]
        write_leaves(Path(path), recorded)


def write_leaves(path: Path, leaves: list[Leaf]) -> None:
    data = {"leaves": [{"table": lf.table, "restriction": lf.restriction} for lf in leaves]}
    path.write_text(json.dumps(data, indent=2) + "\n")


def read_leaves(path: Path) -> list[Leaf]:
    """Leaves from a recording (or a hand-written file of the same shape), each checked."""
    try:
        data = json.loads(path.read_text())
        items = data["leaves"] if isinstance(data, dict) else data
        leaves = [Leaf(str(i["table"]), str(i.get("restriction") or "")) for i in items]
    except FileNotFoundError:
        raise UserError("no such leaves file", where=str(path)) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read the leaves: {exc}", where=str(path),
                        hint='expected {"leaves": [{"table": "db.table", "restriction": "..."}]}') from None
    for n, leaf in enumerate(leaves):
        if "." not in leaf.table:
            raise UserError(f"leaf {n + 1}: table {leaf.table!r} is not db.table", where=str(path))
        check_restriction(leaf.restriction, where=f"{path} leaf {n + 1}")
    return leaves
