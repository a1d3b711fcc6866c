"""Footer keys that fit the terminal's width, whole.

Textual's Footer lays its keys out in one row and cuts the last ones off mid-word when they do not fit
("v Ver" at 80 columns). A screen that has more keys than 80 columns hold ranks its own keys, most useful
first; ``fit_footer`` keeps the keys the screen does not rank (Cancel wait, Help, Quit: FOOTER_FIRST) and
then, in rank order, every ranked key that still fits. The others stay bound and are listed by help (?)
and the command palette: only their ``show`` is cleared, for the footer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from rich.cells import cell_len
from textual.binding import ActiveBinding
from textual.screen import Screen
from textual.widgets import Footer


def _cells(screen: Screen, ab: ActiveBinding, compact: bool) -> int:
    """What one key takes in the footer: ``k Label`` and a margin (compact), `` k Label `` otherwise."""
    return cell_len(screen.app.get_key_display(ab.binding)) + cell_len(ab.binding.description) + (2 if compact else 3)


def fit_footer(screen: Screen, bindings: Mapping[str, ActiveBinding],
               ranked: Sequence[str]) -> dict[str, ActiveBinding]:
    """``bindings`` (a screen's active_bindings) with the ranked keys that do not fit the screen's width
    hidden from the footer; ``ranked``: binding ids, most useful first (an id ranked twice: its first place)."""
    footers = list(screen.query(Footer))
    compact = footers[0].compact if footers else False
    width = screen.size.width
    palette = bindings.get(screen.app.COMMAND_PALETTE_BINDING)
    if palette is not None and (not footers or footers[0].show_command_palette):
        width -= _cells(screen, palette, compact)  # docked right, behind a one-cell rule
    shown: dict[str, ActiveBinding] = {}
    actions: set[str] = set()  # the footer shows one key per action
    for key, ab in bindings.items():
        if ab.binding.show and key != screen.app.COMMAND_PALETTE_BINDING and ab.binding.action not in actions:
            actions.add(ab.binding.action)
            shown[key] = ab
    rank: dict[str, int] = {}
    for bid in ranked:
        rank.setdefault(bid, len(rank))
    width -= sum(_cells(screen, ab, compact) for ab in shown.values() if ab.binding.id not in rank)
    hide: set[str] = set()
    for key, ab in sorted(((k, ab) for k, ab in shown.items() if ab.binding.id in rank),
                          key=lambda kab: rank[kab[1].binding.id or ""]):
        cells = _cells(screen, ab, compact)
        if cells <= width:
            width -= cells
        else:
            hide.add(key)
    if not hide:
        return dict(bindings)
    return {key: ab._replace(binding=replace(ab.binding, show=False)) if key in hide else ab
            for key, ab in bindings.items()}
