"""Plan -> confirmation text -> execute: what the CLI and the screen both call, never building their own.

``prepare_export`` loads the graph (or takes the screen's), resolves the leaves' names and returns
a frozen :class:`ExportPlan`; ``count_plan`` runs the cascade and fills in its rows per table (and
the stored files, given the config's stores); ``ExportPlan.to_json`` / ``confirmation_text`` show
it; ``write_plan`` executes it once, running the cascade again at the moment of writing (the rows
come from that run's snapshot, so what is written is what the database holds then).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djtui.domain.cascade import Leaf
from djtui.domain.leaves import resolve_leaf_tables
from djtui.domain.units import plural
from djtui.errors import UserError
from djtui.services.database import Database
from djtui.services.export.catalog import load_graph
from djtui.services.export.driver import STATEMENT_TIMEOUT_S
from djtui.services.export.family import open_session
from djtui.services.export.files import NeededFile, needed_files
from djtui.services.export.session import ExportResult, TableCount


@dataclass(frozen=True)
class ExportPlan:
    """An export as the user asked for it, and (once counted) what it holds."""

    leaves: tuple[Leaf, ...]
    graph: Any = field(compare=False, repr=False)  # the foreign-key graph the cascade runs on
    statement_timeout: float | None = STATEMENT_TIMEOUT_S
    counted: bool = False
    tables: tuple[TableCount, ...] = ()  # parents first; rows per table and where they come from
    warnings: tuple[str, ...] = ()  # values the server coerced in a restriction, leaves that select nothing
    files: tuple[NeededFile, ...] | None = None  # the stored objects the rows reference (None: not asked)
    _written: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def to_json(self) -> list[dict[str, Any]]:
        """``export plan --json``: one {table, rows, restriction} per table."""
        return [t.to_json() for t in self.tables]

    def confirmation_text(self) -> str:
        """One line: what writing this plan exports."""
        if not self.counted:
            return f"export from {plural(len(self.leaves), 'leaf', 'leaves')} (not counted yet)"
        return f"{plural(len(self.tables), 'table')}, {plural(self.rows, 'row')}"


def prepare_export(db: Database, leaves: Iterable[Leaf], prefixes: Sequence[str] = (), *, graph: Any = None,
                   statement_timeout: float | None = STATEMENT_TIMEOUT_S) -> ExportPlan:
    """The plan of an export: the graph (loaded here unless given), the leaves named by SQL table."""
    graph = graph if graph is not None else load_graph(db, prefixes)
    leaves = tuple(resolve_leaf_tables(list(leaves), graph))
    if not leaves:
        raise UserError("no leaves given", where="export",
                        hint="add --leaf 'db.table:RESTRICTION' (or --leaves FILE, or --paper ID)")
    return ExportPlan(leaves, graph, statement_timeout)


def count_plan(db: Database, plan: ExportPlan, stores: Sequence[Any] | None = None) -> ExportPlan:
    """The plan with its rows per table (and, given ``stores``, the files the rows reference), from
    one cascade whose key sets are dropped with its connection."""
    with open_session(db, plan.graph, list(plan.leaves), statement_timeout=plan.statement_timeout) as session:
        result = session.run()
        files = tuple(needed_files(session, stores)) if stores is not None else None
    empty = [f"{leaf.label(i)} selects no rows: check its restriction"
             for i, leaf in enumerate(plan.leaves) if not result.counts.get(leaf.table)]
    return dataclasses.replace(plan, counted=True, tables=tuple(result.table_counts()),
                               warnings=(*result.warnings, *empty), files=files, _written=threading.Event())


def write_plan(db: Database, plan: ExportPlan, out_dir: Path, *, fmt: str = "sql", strip: bool | None = None,
               batch_rows: int = 1000, stores: Sequence[Any] = (),
               progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Write the plan (``fmt`` sql, script or docker) into the empty ``out_dir``; once per plan."""
    from djtui.services.export.writers import export_sql

    if plan._written.is_set():
        raise UserError("this export plan was written already", where=str(out_dir),
                        hint="plan the export again to write another copy")
    plan._written.set()
    return export_sql(db, plan.graph, list(plan.leaves), out_dir, strip=strip, batch_rows=batch_rows,
                      progress=progress, fmt=fmt, statement_timeout=plan.statement_timeout, stores=stores)


def plan_export(db: Database, leaves: Iterable[Leaf], prefixes: Sequence[str] = (), graph: Any = None, *,
                statement_timeout: float | None = STATEMENT_TIMEOUT_S) -> ExportResult:
    """Counts only: the cascade run, the key sets dropped with the connection (tests, benchmarks)."""
    graph = graph if graph is not None else load_graph(db, prefixes)
    with open_session(db, graph, list(leaves), statement_timeout=statement_timeout) as session:
        return session.run()


def plan_with_files(db: Database, leaves: Iterable[Leaf], graph: Any, stores: Sequence[Any] = (), *,
                    statement_timeout: float | None = STATEMENT_TIMEOUT_S) -> tuple[ExportResult, list[NeededFile]]:
    """Counts and the files the export needs, from one cascade."""
    with open_session(db, graph, list(leaves), statement_timeout=statement_timeout) as session:
        result = session.run()
        return result, needed_files(session, stores)
