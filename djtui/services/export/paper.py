"""Spyglass's export log as a source of leaves: the tables and restrictions it logged for a paper.

``export_selection`` and its ``__table`` part hold (table, restriction) pairs; its ``__file`` part
names analysis files, which become one leaf on the table that part references.
"""

from __future__ import annotations

import re
from typing import Any

from djtui.domain.cascade import Leaf
from djtui.domain.leaves import check_restriction, sql_literal
from djtui.errors import UserError
from djtui.services.database import Database
from djtui.services.export import catalog

_LOGGED_NAME = re.compile(r"^`((?:[^`]|``)+)`\.`((?:[^`]|``)+)`$")


def paper_leaves(db: Database, paper: str, analysis: str | None = None,
                 log_schema: str = "common_usage") -> list[Leaf]:
    """The (table, restriction) pairs Spyglass logged for a paper (``export_selection`` and its ``__table`` part)."""
    if not catalog.has_tables(db, log_schema, ("export_selection", "export_selection__table")):
        raise UserError(f"no Spyglass export log on this server (`{log_schema}`.`export_selection`)",
                        where="--paper", hint="use --leaf, or --export-log SCHEMA if the log lives elsewhere")
    s = db.dialect.ident(log_schema)
    args: list[Any] = [paper]
    extra = ""
    if analysis is not None:
        extra = " AND e.analysis_id = %s"
        args.append(analysis)
    rows = db.query(f"SELECT t.table_name, t.restriction FROM {s}.`export_selection` AS e "
                    f"JOIN {s}.`export_selection__table` AS t USING (export_id) "
                    f"WHERE e.paper_id = %s{extra} ORDER BY t.export_id, t.table_id", args)
    leaves = _paper_file_leaves(db, log_schema, args, extra)
    if not rows and not leaves:
        raise UserError(f"the export log holds no tables for paper {paper!r}"
                        + (f" analysis {analysis!r}" if analysis else ""), where="--paper")
    for name, restriction in rows:
        text = catalog.text(restriction)
        m = _LOGGED_NAME.match(str(name).strip())
        table = f"{m.group(1)}.{m.group(2)}" if m else str(name).replace("`", "")
        check_restriction(text, where=f"--paper {paper}: {table}")
        leaf = Leaf(table, text.strip())
        if leaf not in leaves:
            leaves.append(leaf)
    return leaves


def _paper_file_leaves(db: Database, log_schema: str, args: list[Any], extra: str) -> list[Leaf]:
    """The analysis files Spyglass logged for the paper (``export_selection__file``), as leaves on the
    table that part references (its foreign key says which: ``AnalysisNwbfile`` in Spyglass)."""
    ref = catalog.referenced_column(db, log_schema, "export_selection__file", besides="export_selection")
    if ref is None:
        return []
    column, rschema, rtable, rcolumn = ref
    ident = db.dialect.ident
    s = ident(log_schema)
    names = [r[0] for r in db.query(f"SELECT DISTINCT f.{ident(column)} FROM {s}.`export_selection` AS e "
                                    f"JOIN {s}.`export_selection__file` AS f USING (export_id) "
                                    f"WHERE e.paper_id = %s{extra} ORDER BY 1", args)]
    if not names:
        return []
    return [Leaf(f"{rschema}.{rtable}", f"{ident(rcolumn)} IN ({', '.join(sql_literal(n) for n in names)})")]
