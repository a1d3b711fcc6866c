"""Statuses at scale: listings kept as the scanner's text columns, paths rendered as text.

status-range over 50,000 sessions x 8 files built 800,000 ``FileEntry`` tuples (which the
garbage collector then walked on every full pass) and 150,000 ``Path`` objects, only to show
counts, sizes and a comparison. Here a listing answers those from the columns and builds its
entries the first time someone reads them (a delete plan, the detail panel).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from djtui.domain.sessions import FileTable, Listing, Scan, SessionKey, VerifyRecord, record_drift

NEVER = ("never verified",)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic GC passes while a status run makes hundreds of thousands of objects: each full pass
    walks every one of them and frees nothing (nothing here makes cycles; reference counting frees)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class ScanListing(Listing):
    """A ``Listing`` over a ``Scan``: count, bytes and videos from its columns; ``files``, ``special`` and
    ``symlinks`` built once, when first read. It equals the plain listing of the same folder."""

    def __init__(self, scan: Scan):
        object.__setattr__(self, "exists", scan.exists)
        object.__setattr__(self, "_scan", scan)
        object.__setattr__(self, "_plain", None)
        object.__setattr__(self, "_bytes", None)

    def plain(self) -> Listing:
        if self._plain is None:
            object.__setattr__(self, "_plain", self._scan.listing())
        return self._plain

    def _oddities(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Special files and links: from the built listing if there is one, else from the columns (a status
        asks for them to say why a session is not safe; building every entry for that cost 2.8 s at 50,000)."""
        if self._plain is not None:
            return self._plain.special, self._plain.symlinks
        return self._scan.oddities()

    files = property(lambda self: self.plain().files)  # type: ignore[assignment]
    special = property(lambda self: self._oddities()[0])  # type: ignore[assignment]
    symlinks = property(lambda self: self._oddities()[1])  # type: ignore[assignment]

    @property
    def count(self) -> int:
        return self._scan.count if self.exists else 0

    @property
    def bytes(self) -> int:
        if self._bytes is None:
            object.__setattr__(self, "_bytes", self._scan.bytes if self.exists else 0)
        return self._bytes

    def videos(self, extensions: Iterable[str]) -> int:
        exts = {e.lower() for e in extensions}
        rels = self._scan.file_columns()[0] if self.exists else ()
        if not rels or not exts:
            return 0
        if any(a != b and a.endswith(b) for a in exts for b in exts) or any("\0" in e for e in exts):
            return super().videos(exts)  # one extension inside another: counted file by file
        text = ("\0".join(rels) + "\0").lower()  # C-speed: a file ends in an extension once
        return sum(text.count(e + "\0") for e in exts)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ScanListing):
            return self.plain() == other.plain()
        return self.plain() == other if isinstance(other, Listing) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.plain())

    def __repr__(self) -> str:
        return repr(self.plain())


def drift(record: VerifyRecord | None, scan: Scan, listing: Listing) -> tuple[str, ...]:
    """``record_drift``, answered from the columns when the source is exactly as it was verified."""
    if record is None:
        return NEVER
    files = record.files
    if scan.exists and isinstance(files, FileTable):
        rels, sizes, mtimes = scan.file_columns()
        if list(rels) == list(files.rels) and list(sizes) == list(files.sizes) and \
                list(mtimes) == list(files.mtimes):
            return ()
    return tuple(record_drift(record, listing))


class PathRenderer:
    """Session folders under one base as text, equal to ``str(base / render_path(template, key))``.

    A clean template (no empty, "." or ".." segment) renders with one format call and a cached date
    text per day; any other falls back to pathlib, which normalizes such paths.
    """

    def __init__(self, base: Path, template: str):
        self.base, self.template = base, template
        segments = template.split("/")
        root = str(base)
        self.fast = all(s not in ("", ".", "..") for s in segments) and root == os.path.normpath(root)
        self.prefix = root.rstrip("/") + "/"
        self.days: dict[dt.date, str] = {}

    def __call__(self, key: SessionKey) -> str:
        if not self.fast:
            from djtui.domain.sessions import render_path
            return str(self.base / render_path(self.template, key))
        day = self.days.get(key.session_date)
        if day is None:
            day = self.days[key.session_date] = key.date_str
        return self.prefix + self.template.format(participant_id=key.participant_id, session_date=day)

    def many(self, keys: Sequence[SessionKey]) -> list[str]:
        return [self(k) for k in keys]
