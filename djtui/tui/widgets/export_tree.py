"""The Export screen's foreign-key tree: a table's ancestors and descendants, transitively.

Moving through the table list redraws it on every keypress, so what a redraw needs is computed
once per graph and kept: each table's sorted foreign keys up and down, how many tables lie above
and below it, its label. A redraw then only adds nodes (the first ``TREE_AUTO_NODES`` open, the
rest on Enter), inside one batch so the tree lays out once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from djtui.domain.cascade import TreeEdge, related_count, tree_children
from djtui.domain.djnames import display_name, is_part

TREE_AUTO_NODES = 60  # nodes shown expanded when a table is picked; deeper ones expand on demand (Enter)
TREE_MAX_CHILDREN = 200  # a node with more children lists this many and says how many are left out


@dataclass(frozen=True)
class Branch:
    """What a tree node stands for: ``table`` in the ancestors (up) or descendants (down) tree."""

    direction: str
    table: str
    path: tuple[str, ...]  # the tables above it, from the picked one


def fk_label(table: str, columns: tuple[tuple[str, str], ...], part: bool = False) -> Text:
    """``db.Class`` (a part ``◆ db.Master.Part (part)``), then the renamed columns of the foreign key."""
    renamed = [f"{a}→{b}" for a, b in columns if a != b]
    label = Text("◆ " if part else "")  # Text: no markup in names
    label.append(display_name(table))
    if part:
        label.append(" (part)", style="italic")
    if renamed:
        label.append(f"  [{', '.join(renamed)}]")
    return label


class ForeignKeyTree(Tree):
    """``show(table)`` draws the picked table's tree; nodes below the first ones fill on expansion."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.graph: Any = None
        self._tables: frozenset[str] = frozenset()
        self._seen: dict[str, set[str]] = {"up": set(), "down": set()}  # tables the tree shows already
        self._edges: dict[tuple[str, str], list[TreeEdge]] = {}  # (table, direction) -> sorted edges
        self._related: dict[tuple[str, str], int] = {}
        self._labels: dict[tuple[str, tuple[tuple[str, str], ...]], Text] = {}

    def set_graph(self, graph: Any) -> None:
        """A new graph: what was computed for the old one is dropped."""
        self.graph = graph
        self._tables = frozenset(graph.nodes)
        self._edges.clear()
        self._related.clear()
        self._labels.clear()

    def _children_of(self, table: str, direction: str, path: tuple[str, ...]) -> list[TreeEdge]:
        key = (table, direction)
        edges = self._edges.get(key)
        if edges is None:
            edges = self._edges[key] = tree_children(self.graph, table, direction)
        on_path = {*path, table}
        return [TreeEdge(e.fk, e.table, e.table in on_path) for e in edges]

    def _count(self, table: str, direction: str) -> int:
        key = (table, direction)
        if key not in self._related:
            self._related[key] = related_count(self.graph, table, direction)
        return self._related[key]

    def _label(self, table: str, columns: tuple[tuple[str, str], ...]) -> Text:
        key = (table, columns)
        if key not in self._labels:
            self._labels[key] = fk_label(table, columns, is_part(table, self._tables))
        return self._labels[key].copy()  # a copy: repeats and cycles append to it

    def show(self, table: str) -> None:
        """Ancestors and descendants, transitively: the first TREE_AUTO_NODES nodes open, the rest on Enter."""
        if self.graph is None or table not in self._tables:
            return
        with self.app.batch_update():
            self.clear()
            shown = display_name(table)
            self.root.set_label(Text(shown if shown == table else f"{shown}  ({table})"))
            self._seen = {"up": set(), "down": set()}
            heads = []
            for direction, name in (("up", "ancestors"), ("down", "descendants")):
                n = self._count(table, direction)
                label = f"{name} ({n} table{'' if n == 1 else 's'})"
                heads.append(self.root.add(Text(label), data=Branch(direction, table, ()), allow_expand=n > 0))
            self.root.expand()
            budget = TREE_AUTO_NODES
            todo = list(heads)
            while todo and budget > 0:
                node = todo.pop(0)
                budget -= self.fill(node)
                node.expand()
                todo.extend(c for c in node.children if c.allow_expand)

    def fill(self, node: TreeNode) -> int:
        """Add ``node``'s children once (lazily: on first expansion); returns how many were added."""
        branch = node.data
        if not isinstance(branch, Branch) or node.children or self.graph is None:
            return 0
        edges = self._children_of(branch.table, branch.direction, branch.path)
        path = (*branch.path, branch.table)
        seen = self._seen.setdefault(branch.direction, set())
        degree = self.graph.in_degree if branch.direction == "up" else self.graph.out_degree
        for edge in edges[:TREE_MAX_CHILDREN]:
            label = self._label(edge.table, edge.fk.columns)
            if edge.cycle:
                label.append("  (cycle: already above)", style="italic")
                node.add_leaf(label)
            elif edge.table in seen:  # a repeat: its subtree is in the tree already, once is enough
                label.append("  … (shown above)", style="italic")
                node.add_leaf(label)
            elif degree(edge.table):
                node.add(label, data=Branch(branch.direction, edge.table, path), allow_expand=True)
            else:
                node.add_leaf(label)
            seen.add(edge.table)
        if len(edges) > TREE_MAX_CHILDREN:
            node.add_leaf(Text(f"… {len(edges) - TREE_MAX_CHILDREN} more foreign keys not shown", style="italic"))
        return min(len(edges), TREE_MAX_CHILDREN)

    def _on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        self.fill(event.node)  # on demand (Enter); the nodes ``show`` opened are filled already
