"""The orphan capability's results: sources, scan results and what a clean-up did (frozen, printable)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TypeVar

from djtui.config import Config, StoreSettings
from djtui.domain import stores as ds
from djtui.services.stores import Quarantine, Store

_T = TypeVar("_T")


@dataclass(frozen=True)
class SourceInfo:
    name: str
    kind: str  # table | external | store | dir


@dataclass(frozen=True)
class ScanProgress:
    """How far one source's scan has come: objects listed and rows read so far (the screen shows it live)."""

    source: str
    listed: int = 0
    rows: int = 0
    done: bool = False

    def describe(self) -> str:
        return f"{self.listed:,} object(s) listed, {self.rows:,} row(s) read"


_MAY_SHARE = frozenset({ds.UNUSED_ROW, ds.MISSING_OBJECT, ds.ZERO_BYTE})  # reasons one ~external row can share


def line_of(item: ds.OrphanItem, group: tuple[ds.OrphanItem, ...] | None = None) -> tuple[str, int | None]:
    """(reasons, size) of one orphan's line: all its reasons, its largest size; None for a row (no size)."""
    if group is None:
        reason, size = item.reason, item.size
    else:
        reason, size = "+".join(i.reason for i in group), max(i.size for i in group)
    return reason, (size if size or item.path is not None else None)


@dataclass(frozen=True)
class ScanResult:
    source: SourceInfo
    items: tuple[ds.OrphanItem, ...]
    total: int  # objects/files the source holds (rows for a table source), for the share guard
    root: Path | None = None  # local directory the paths are relative to
    children: tuple[tuple[str, int], ...] = ()  # table sources: (child table, parent rows it references)
    warnings: tuple[str, ...] = ()
    rows: int = 0  # rows of an external table, for the share guard of row deletions

    @cached_property
    def listing(self) -> tuple[tuple[ds.OrphanItem, ...], dict[int, tuple[ds.OrphanItem, ...]]]:
        """One line per orphan: the first item of each object or row (in scan order), and, by line, every
        item of the objects listed under more than one reason (an unused row whose object is missing)."""
        first: dict[str, int] = {}
        lines: list[ds.OrphanItem] = []
        more: dict[int, list[ds.OrphanItem]] = {}
        for i in self.items:
            if i.reason in _MAY_SHARE:  # untracked and stale files are never also listed under another reason
                k = i.ident
                at = first.get(k)
                if at is not None:
                    more.setdefault(at, [lines[at]]).append(i)
                    continue
                first[k] = len(lines)
            lines.append(i)
        if not more and len(lines) == len(self.items):
            return self.items, {}
        return tuple(lines), {n: tuple(group) for n, group in more.items()}

    @cached_property
    def referenced_missing(self) -> frozenset[str]:
        """Missing objects whose row is still referenced (not also unused): reported, never deleted."""
        unused = {i.ident for i in self.items if i.reason in (ds.UNUSED_ROW, ds.ORPHAN_ROW)}
        return frozenset(i.ident for i in self.items if i.reason == ds.MISSING_OBJECT and i.ident not in unused)

    @property
    def orphans(self) -> int:
        """One object (or row), one orphan, under however many reasons it is listed."""
        return len(self.listing[0])

    @property
    def bytes(self) -> int:
        """The orphans' sizes as their lines show them: each object once (its largest item)."""
        lines, more = self.listing
        return sum(line_of(item, more.get(n))[1] or 0 for n, item in enumerate(lines))


@dataclass(frozen=True)
class ActionResult:
    source: str
    batch_id: str | None
    acted: int
    bytes: int
    skipped: int
    dry_run: bool
    items: tuple[ds.OrphanItem, ...] = ()
    rows: int = 0  # of ``acted``: rows deleted (or, in a dry run, to delete)
    files: int = 0  # of ``acted``: files/objects moved into the quarantine (or to move)
    why_skipped: tuple[tuple[str, int], ...] = ()  # (reason given by the re-check, count)
    reported_only: int = 0  # missing-object rows still referenced: deleting them would break their referrers
    row_batch: str | None = None  # the batch holding the deleted rows whole (``orphans restore`` puts them back)
    rows_total: int = 0  # dry run: rows the source holds (for the share guard's view)
    files_total: int = 0  # dry run: objects/files the source holds

    def describe(self) -> str:
        """One line for the CLI and the screen: what was (or would be) done."""
        parts = []
        if self.rows or not self.files:
            if self.dry_run:
                parts.append(f"{self.rows} row(s) to delete" + (
                    " (rows are saved in the batch and `djtui orphans restore BATCH` puts them back)"
                    if self.rows else ""))
            elif self.row_batch:
                parts.append(f"{self.rows} row(s) deleted, saved whole in batch {self.row_batch} "
                             f"(`djtui orphans restore {self.row_batch}` puts them back)")
            else:
                parts.append(f"{self.rows} row(s) deleted")
        if self.files:
            where = f" into batch {self.batch_id}" if self.batch_id else ""
            parts.append(f"{self.files} file(s) {'to quarantine' if self.dry_run else 'quarantined' + where}")
        text = ", ".join(parts)
        if self.skipped:
            why = "; ".join(f"{n} {w}" for w, n in self.why_skipped) or "changed since the scan"
            text += f"; {self.skipped} skipped at the re-check ({why})"
        if self.reported_only:
            text += (f"; {self.reported_only} missing object(s) still referenced, reported only "
                     "(re-upload them, or delete the rows that reference them)")
        return text


class Orphans(Protocol):
    """What the topic modules need of :class:`~djtui.services.orphans.service.OrphanService` (which is
    one): the config, the database, the caller's cancel flag, the stores and the quarantine."""

    config: Config
    db: Any
    audit: Any
    settings: Any  # the config's orphans section
    now: Callable[[], float]
    cancelled: Callable[[], bool]
    empty_check: bool

    def check(self) -> None: ...
    def progressed(self, *, listed: int | None = None, rows: int | None = None) -> None: ...
    def counted(self, objects: Iterable[_T]) -> Iterator[_T]: ...
    def store(self, name: str) -> StoreSettings: ...
    def open_store(self, settings: StoreSettings) -> Store: ...
    def quarantine(self) -> Quarantine: ...
    def exclude(self) -> str: ...
    def writable(self, action: str) -> None: ...
    def resolve(self, name: str) -> SourceInfo: ...
    def scan(self, source: SourceInfo, cancel: threading.Event | None = None, *, empty_check: bool = True,
             progress: Callable[[ScanProgress], None] | None = None) -> ScanResult: ...
