"""The export cascade over the foreign-key graph: which rows of which tables an export needs.

Pure: no I/O. The graph is a networkx MultiDiGraph with edges parent -> child, one edge per
foreign key, each carrying its exact column map (child column -> parent column), so a renamed
foreign key is a parallel edge with its own map (DataJoint's ``trace`` trips over exactly that).

The result is a :class:`CascadePlan`: for every table reached, where its key set comes from
(leaf restrictions, each child's key set through one foreign key, and for a part table its
master's key set through the chain of foreign keys that links the part to its master: directly,
through other parts of the same master, or through renamed keys; the part/master relation itself
comes from DataJoint's naming, ``master__part``). The service materializes those key sets in
temporary tables and repeats the plan until no key set grows (master/part completion can pull
in new ancestors).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx


@dataclass(frozen=True)
class ForeignKey:
    """One foreign key: ``child`` references ``parent``; ``columns`` maps child column -> parent column."""

    name: str
    child: str
    parent: str
    columns: tuple[tuple[str, str], ...]

    @property
    def renamed(self) -> bool:
        return any(c != p for c, p in self.columns)

    def describe(self) -> str:
        cols = ", ".join(c if c == p else f"{c}→{p}" for c, p in self.columns)
        return f"{self.child} -> {self.parent} ({cols})"


@dataclass(frozen=True)
class TableInfo:
    """A table of the graph: full name ``db.table`` and its primary key columns in order."""

    name: str
    primary_key: tuple[str, ...]
    loaded: bool = True  # False: only known as the parent of a loaded foreign key (not readable)


@dataclass(frozen=True)
class Leaf:
    """Where an export starts: a table and a SQL condition on it ('' means every row)."""

    table: str
    restriction: str = ""

    def label(self, index: int) -> str:
        return f"leaf {index + 1} ({self.table}{': ' + self.restriction if self.restriction else ''})"


@dataclass(frozen=True)
class Step:
    """How one table's key set is computed; every source is ORed into it."""

    table: str
    leaves: tuple[tuple[int, str], ...]  # (leaf index, restriction)
    from_children: tuple[ForeignKey, ...]  # child's key set moved up through the FK's map
    from_master: tuple[tuple[ForeignKey, ...], ...]  # part rows of the master rows: FK chains, master first
    from_self: tuple[ForeignKey, ...] = ()  # a table that references itself: its rows' parent rows


@dataclass(frozen=True)
class CascadePlan:
    """Steps in children-first order; ``tables`` parents-first (the order to write and load)."""

    steps: tuple[Step, ...]
    tables: tuple[str, ...]
    has_parts: bool
    has_self: bool = False  # some table references itself: repeat until no key set grows

    @property
    def repeats(self) -> bool:
        return self.has_parts or self.has_self

    @property
    def self_referencing(self) -> tuple[str, ...]:
        return tuple(s.table for s in self.steps if s.from_self)

    def step(self, table: str) -> Step:
        for s in self.steps:
            if s.table == table:
                return s
        raise KeyError(table)


def split_name(full: str) -> tuple[str, str]:
    """``db.table`` -> (db, table); the table part may itself hold dots, the database may not."""
    db, _, table = full.partition(".")
    return db, table


_TIER = re.compile(r"^(~|#|__|_)?")


def master_of(table_name: str) -> str | None:
    """The master of a DataJoint part table (``master__part`` keeps the master's tier prefix), or None."""
    prefix = _TIER.match(table_name).group(0)  # type: ignore[union-attr]
    rest = table_name[len(prefix):]
    if "__" not in rest:
        return None
    head = rest.split("__", 1)[0]
    return (prefix + head) if head else None


def build_graph(tables: Iterable[TableInfo], keys: Iterable[ForeignKey]) -> nx.MultiDiGraph:
    """Edges parent -> child keyed by constraint name; nodes carry their ``info``."""
    g = nx.MultiDiGraph()
    for t in tables:
        g.add_node(t.name, info=t)
    for fk in keys:
        for end in (fk.child, fk.parent):
            if end not in g:
                g.add_node(end, info=TableInfo(end, (), loaded=False))
        g.add_edge(fk.parent, fk.child, key=fk.name, fk=fk)
    return g


def _fk_options(g: nx.MultiDiGraph, parent: str, child: str) -> list[ForeignKey]:
    """The FKs from ``child`` to ``parent``, plain ones preferred (renamed ones are all kept, ORed)."""
    fks = [d["fk"] for _, d in sorted(g.get_edge_data(parent, child).items())]
    plain = [fk for fk in fks if not fk.renamed]
    return plain or fks


def parts_by_master(g: nx.MultiDiGraph) -> dict[str, list[str]]:
    """Master -> its part tables, by DataJoint's naming alone (``master__part`` in the master's database)."""
    out: dict[str, list[str]] = {}
    for t in g.nodes:
        db, name = split_name(t)
        master = master_of(name)
        if master is not None and f"{db}.{master}" in g and f"{db}.{master}" != t:
            out.setdefault(f"{db}.{master}", []).append(t)
    return {m: sorted(ps) for m, ps in out.items()}


def part_chains(g: nx.MultiDiGraph, table: str,
                parts: dict[str, list[str]] | None = None) -> list[tuple[ForeignKey, ...]]:
    """How ``table`` (a part, by its name) reaches its master: chains of FKs, master first.

    A part may reference its master directly, through another part of the same master (Spyglass's
    ``Probe.Electrode`` -> ``Probe.Shank`` -> ``Probe``), or through a renamed key; DataJoint says
    which master it belongs to by name, the foreign keys say which rows. The shortest chains
    through the master's own parts are used (failing those, the shortest through any table);
    where a hop has several foreign keys, plain ones are preferred and renamed ones all kept.
    [] when ``table`` is no part, or nothing links it to its master.
    """
    db, name = split_name(table)
    master_name = master_of(name)
    if master_name is None:
        return []
    master = f"{db}.{master_name}"
    if master not in g or master == table:
        return []
    parts = parts_by_master(g) if parts is None else parts
    family = {master, *parts.get(master, ())}
    paths: set[tuple[str, ...]] = set()
    for view in (g.subgraph(family), g):
        try:
            paths = {tuple(p) for p in nx.all_shortest_paths(view, master, table)}
        except nx.NetworkXNoPath:
            continue
        break
    chains: list[tuple[ForeignKey, ...]] = []
    for path in sorted(paths):
        hops = [_fk_options(g, a, b) for a, b in itertools.pairwise(path)]
        chains.extend(itertools.product(*hops))
    return chains


def parts_of(g: nx.MultiDiGraph, table: str, parts: dict[str, list[str]] | None = None) -> list[str]:
    """The parts of master ``table`` that a chain of foreign keys links to it."""
    parts = parts_by_master(g) if parts is None else parts
    return [p for p in parts.get(table, ()) if part_chains(g, p, parts)]


def reached_tables(g: nx.MultiDiGraph, leaves: Iterable[Leaf], complete_parts: bool = True) -> set[str]:
    """Every table the export may touch: ancestors of leaves, parts of reached masters, closed."""
    parts = parts_by_master(g) if complete_parts else {}
    todo = [leaf.table for leaf in leaves]
    seen: set[str] = set()
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        todo.extend(p for p in g.predecessors(t) if p != t)
        if complete_parts:
            todo.extend(parts_of(g, t, parts))
    return seen


def check_leaves(g: nx.MultiDiGraph, leaves: Iterable[Leaf]) -> None:
    for i, leaf in enumerate(leaves):
        if leaf.table not in g:
            raise ValueError(f"{leaf.label(i)}: no such table in the loaded graph")


def plan_cascade(g: nx.MultiDiGraph, leaves: list[Leaf], *, complete_parts: bool = True) -> CascadePlan:
    """The key-set computations for ``leaves``; several leaves on one table are all kept (ORed).

    ``complete_parts=False`` gives the plain upstream closure (what ``dj.Diagram.trace`` computes),
    which the benchmark compares with DataJoint; exports always complete master/part tables.
    """
    check_leaves(g, leaves)
    reached = reached_tables(g, leaves, complete_parts)
    parts = parts_by_master(g) if complete_parts else {}
    sub = nx.DiGraph()
    sub.add_nodes_from(reached)
    for p, c in g.subgraph(reached).edges():
        if p != c:
            sub.add_edge(p, c)
    try:
        parents_first = list(nx.lexicographical_topological_sort(sub))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(sub)
        raise ValueError("the foreign keys form a cycle: " + " -> ".join(e[0] for e in cycle)) from None
    steps = []
    has_parts = False
    for t in reversed(parents_first):
        own = tuple((i, leaf.restriction) for i, leaf in enumerate(leaves) if leaf.table == t)
        ups = tuple(d["fk"] for _, c, d in sorted(g.out_edges(t, data=True), key=lambda e: (e[1], e[2]["fk"].name))
                    if c in reached and c != t)
        chains = part_chains(g, t, parts) if complete_parts else []
        master = tuple(c for c in chains if all(fk.parent in reached for fk in c))
        has_parts = has_parts or bool(master)
        selfs = tuple(d["fk"] for _, _, d in sorted(g.out_edges(t, data=True), key=lambda e: e[2]["fk"].name)
                      if d["fk"].child == t)
        steps.append(Step(t, own, ups, master, selfs))
    return CascadePlan(tuple(steps), tuple(parents_first), has_parts, any(s.from_self for s in steps))


@dataclass(frozen=True)
class TreeEdge:
    """One node of the explorer's tree: ``table`` reached through ``fk`` from the node above it.

    ``cycle``: ``table`` is already on the path from the root (a self-reference or a cycle of
    foreign keys), so the node must not expand again.
    """

    fk: ForeignKey
    table: str
    cycle: bool = False


def tree_children(g: nx.MultiDiGraph, table: str, direction: str, path: Iterable[str] = ()) -> list[TreeEdge]:
    """The nodes below ``table`` in the ancestors (``"up"``: its parents) or descendants (``"down"``:
    its children) tree, sorted by table and foreign key. ``path`` holds the tables from the root to
    ``table``; a child already on it is marked ``cycle`` (so transitive expansion always ends)."""
    on_path = {*path, table}
    if direction == "up":
        edges = [(p, d["fk"]) for p, _, d in g.in_edges(table, data=True)]
    elif direction == "down":
        edges = [(c, d["fk"]) for _, c, d in g.out_edges(table, data=True)]
    else:
        raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
    return [TreeEdge(fk, other, other in on_path) for other, fk in sorted(edges, key=lambda e: (e[0], e[1].name))]


def related_count(g: nx.MultiDiGraph, table: str, direction: str) -> int:
    """How many tables are ``table``'s ancestors (``"up"``) or descendants (``"down"``), transitively."""
    found = nx.ancestors(g, table) if direction == "up" else nx.descendants(g, table)
    return len(found - {table})


def to_mermaid(g: nx.MultiDiGraph, tables: Iterable[str]) -> str:
    """The export's graph as Mermaid text; renamed FKs are labelled with their map."""
    keep = set(tables)
    ids = {t: f"t{i}" for i, t in enumerate(sorted(keep))}
    lines = ["flowchart BT"]
    lines += [f'    {ids[t]}["{t}"]' for t in sorted(keep)]
    for p, c, d in g.edges(data=True):
        if p in keep and c in keep:
            fk: ForeignKey = d["fk"]
            label = f"|{', '.join(f'{a}→{b}' for a, b in fk.columns)}|" if fk.renamed else ""
            lines.append(f"    {ids[c]} -->{label} {ids[p]}")
    return "\n".join(lines) + "\n"


def to_dot(g: nx.MultiDiGraph, tables: Iterable[str]) -> str:
    keep = set(tables)
    lines = ["digraph export {", "  rankdir=BT;"]
    lines += [f'  "{t}";' for t in sorted(keep)]
    for p, c, d in g.edges(data=True):
        if p in keep and c in keep:
            fk: ForeignKey = d["fk"]
            label = f' [label="{", ".join(f"{a}->{b}" for a, b in fk.columns)}"]' if fk.renamed else ""
            lines.append(f'  "{c}" -> "{p}"{label};')
    return "\n".join(lines) + "\n}\n"
