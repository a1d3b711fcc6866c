"""A clean-up as plan -> confirmation text -> execute, the same for the screen and the CLI.

A :class:`CleanupPlan` is frozen: which items of which source will be acted on (rows deleted
into a row batch, files moved into the quarantine), what the share guard says about it, and the
text a person confirms. It is built from a scan (the screen's, or a fresh one under the lock for
the CLI) and executed once by :meth:`OrphanService.execute`, which scans again at the moment of
action and acts only on the plan's items that are still orphans.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from djtui.domain import stores as ds
from djtui.domain.units import human_bytes
from djtui.services.orphans.model import ActionResult, ScanResult, SourceInfo

CONFIRM = "QUARANTINE"


def share_text(n: int, total: int) -> str:
    """A share as a whole percent, rounded up so the guard's override never claims less than it allows."""
    return f"{math.ceil(100 * n / total - 1e-9)}%" if total > 0 else "?%"


def iec_size(n: float) -> str:
    """Bytes as the CLI prints them (``12.0 KiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{int(n)} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@dataclass(frozen=True)
class Selection:
    """What a run acts on, chosen from one scan: the same rule wherever the plan is made."""

    items: tuple[ds.OrphanItem, ...]  # rows and files to act on (a missing object still referenced is not)
    rows: int  # distinct rows (an unused row may also be missing its object)
    files: tuple[ds.OrphanItem, ...]
    referenced: frozenset[str]  # idents of missing objects whose rows are still referenced: reported only


def select(result: ScanResult, *, kinds: set[str] | None = None, wanted: set[str] | None = None,
           among: Iterable[ds.OrphanItem] | None = None) -> Selection:
    """Items of ``result`` a run acts on: actionable, of ``kinds``, named in ``wanted`` (ref or ident);
    ``among``: only these items of the result (a selection: no walk over the whole scan).

    A missing object's row that is still referenced cannot go: the rows naming it would break. That
    is counted over the whole scan, not only the chosen refs, so a run restricted to a preview's refs
    reports the same referenced rows as the preview did.
    """
    acting = [i for i in (result.items if among is None else among) if i.reason in ds.ACTIONABLE
              and (kinds is None or i.reason in kinds)
              and (wanted is None or i.ref in wanted or i.ident in wanted)]
    referenced = result.referenced_missing if kinds is None or ds.MISSING_OBJECT in kinds else frozenset()
    if referenced:
        acting = [i for i in acting if i.reason in ds.FILE_REASONS or i.ident not in referenced]
    rows = {i.ident for i in acting if i.reason in ds.ROW_REASONS}
    files = tuple(i for i in acting if i.reason in ds.FILE_REASONS)
    return Selection(tuple(acting), len(rows), files, referenced)


@dataclass(frozen=True)
class CleanupPlan:
    """One planned clean-up of one source; :meth:`OrphanService.execute` runs it once."""

    source: SourceInfo
    items: tuple[ds.OrphanItem, ...]
    rows: int
    files: int
    bytes: int  # of the files
    rows_total: int  # rows the source holds (table rows, or ``~external`` rows), for the share guard
    files_total: int  # objects/files the source holds
    allowed: float  # the share guard's limit
    reported_only: int = 0
    reasons: tuple[str, ...] | None = None
    selected: bool = False  # the person chose the items (else: every item of the scan)
    preview: ActionResult | None = None  # the dry run's result, when the plan came from a fresh scan
    plan_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(i.ref for i in self.items)

    def _shares(self) -> list[tuple[str, int, int]]:
        return [(what, n, total) for what, n, total in (("rows", self.rows, self.rows_total),
                                                         ("files", self.files, self.files_total)) if n]

    @property
    def helpable(self) -> bool:
        """Whether typing an override can help (a source of unknown size cannot be judged)."""
        return not any(ds.exceeds_share(n, t, self.allowed) and t <= 0 for _w, n, t in self._shares())

    @property
    def override(self) -> float | None:
        """The exact share to pass as ``max_share`` when the plan is over the guard (and it can help)."""
        over = [n / t for _w, n, t in self._shares() if ds.exceeds_share(n, t, self.allowed)]
        return max(over) if over and self.helpable else None

    def guard_lines(self) -> list[str]:
        return [f"{n} of {total} {what} ({share_text(n, total)}) of {self.source.name}; "
                f"the guard allows {self.allowed:.0%}." for what, n, total in self._shares()]

    def confirm_word(self) -> str:
        """What the person types: the plain word, or the word with the share that overrides the guard."""
        over = self.override
        return CONFIRM if over is None else f"{CONFIRM} {math.ceil(100 * over - 1e-9)}%"

    def summary(self) -> str:
        """One paragraph for a terminal prompt."""
        what = []
        if self.rows:
            what.append(f"{self.rows} row(s) will be deleted (each re-checked in one transaction); rows are "
                        "saved in the batch and `djtui orphans restore` puts them back")
        if self.files:
            what.append(f"{self.files} file(s), {iec_size(self.bytes)} will be moved into the quarantine")
        return f"{self.source.name}: " + "; ".join(what) + "."

    def confirmation_lines(self, shown: int = 30) -> list[str]:
        """The dialog's text: the guard's view, what happens, the re-check, the first items."""
        lines = self.guard_lines()
        if self.override is not None:
            lines.append(f"Over the guard: typing {self.confirm_word()} overrides it for this run only "
                         "(a wrong store location or table makes everything look orphaned).")
        elif not self.helpable:
            lines.append("The source's size is unknown, so the guard will refuse: rescan first.")
        lines.append("")
        name = self.source.name
        if self.rows:
            lines.append(f"{self.rows} row(s) of {name} will be deleted, in one transaction; rows are saved in "
                         "the batch and `djtui orphans restore` puts them back (R on the Quarantine tab).")
        if self.files:
            lines.append(f"{self.files} file(s), {human_bytes(self.bytes, compact=True)} of {name} "
                         "will be moved into the quarantine.")
        if self.reported_only:
            lines.append(f"{self.reported_only} missing object(s) still referenced are reported only "
                         "(re-upload them, or delete the rows that reference them).")
        lines += ["Each item is checked again at the moment of action; a missing object's row that is "
                  "still referenced is kept.", ""]
        lines += [f"  {i.reason:16} {i.ident}" for i in self.items[:shown]]
        if len(self.items) > shown:
            lines.append(f"  … and {len(self.items) - shown} more")
        return lines

    def title(self) -> str:
        n = len(self.items)
        scope = f"{n} selected item{'s' * (n != 1)}" if self.selected else f"all {n} item{'s' * (n != 1)}"
        return f"Quarantine {scope} of "

    def to_json(self) -> dict:
        return {"plan": self.plan_id, "source": self.source.name, "rows": self.rows, "files": self.files,
                "bytes": self.bytes, "reported_only": self.reported_only, "allowed": self.allowed,
                "over_guard": self.override is not None or not self.helpable, "confirm": self.confirm_word(),
                "reasons": list(self.reasons) if self.reasons is not None else None,
                "items": [i.to_json() for i in self.items]}


def plan_from_scan(result: ScanResult, allowed: float, chosen: Iterable[ds.OrphanItem] | None = None,
                   *, preview: ActionResult | None = None, reasons: Iterable[str] | None = None) -> CleanupPlan:
    """The plan for a scan the caller holds (the screen's), for ``chosen`` items or all of them."""
    picked = list(chosen) if chosen is not None else None
    kinds = set(reasons) if reasons is not None else None
    sel = select(result, kinds=kinds, among=picked)
    rows_total = result.total if result.source.kind == "table" else result.rows
    return CleanupPlan(result.source, sel.items, sel.rows, len(sel.files), sum(i.size for i in sel.files),
                       rows_total, result.total, allowed, reported_only=len(sel.referenced),
                       reasons=tuple(sorted(kinds)) if kinds is not None else None, selected=picked is not None,
                       preview=preview)


_executed: set[str] = set()
_executed_lock = threading.Lock()


def claim(plan: CleanupPlan) -> bool:
    """True the first time a plan is claimed for execution, False ever after (a plan runs once)."""
    with _executed_lock:
        if plan.plan_id in _executed:
            return False
        _executed.add(plan.plan_id)
        return True
