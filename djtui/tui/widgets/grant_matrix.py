"""Column headers of the Accounts screen's grant matrix that fit the terminal's width.

A cell is at most three characters (ALL, RW, R, -), so the headers make the width: Spyglass's eleven
shared modules take about 120 columns in full. When they do not fit, each module's header becomes its
shortest prefix that no other module shares, as long as the width allows (at least three characters), and
a legend names them in full. The user column stays put when the table still scrolls sideways.
"""

from __future__ import annotations

from collections.abc import Sequence

PAD = 2  # DataTable's cell padding: one character on each side of a column
MIN = 3  # a cell's widest value (ALL)


def _prefix(name: str, others: Sequence[str], k: int) -> str:
    """``name`` cut to ``k`` characters, longer if another module starts the same way."""
    n = min(len(name), k)
    while n < len(name) and any(o != name and o.startswith(name[:n]) for o in others):
        n += 1
    return name[:n]


def module_headers(modules: Sequence[str], width: int, fixed: int) -> tuple[list[str], bool]:
    """The header of each module for a table ``width`` wide whose other columns take ``fixed`` (padding
    included); and whether any was abbreviated."""
    if sum(max(len(m), MIN) + PAD for m in modules) <= width - fixed:
        return list(modules), False
    best = [_prefix(m, modules, MIN) for m in modules]
    for k in range(max((len(m) for m in modules), default=MIN), MIN - 1, -1):
        heads = [_prefix(m, modules, k) for m in modules]
        if sum(max(len(h), MIN) + PAD for h in heads) <= width - fixed:
            best = heads
            break
    return best, best != list(modules)


def legend(modules: Sequence[str], heads: Sequence[str]) -> str:
    return ", ".join(f"{h} {m}" for m, h in zip(modules, heads, strict=True) if h != m)
