"""External sort: an unsorted stream of keys in sorted chunks, holding at most a fixed number in memory.

Keys (text without newlines: object names, hashes) are gathered up to ``max_items``, sorted and
written to a temporary run file; the runs are then merged with a heap, one key per run in memory,
and handed out in chunks of at most ``chunk`` keys. The temporary directory goes when the sorter is
closed (it is a context manager), also after an error or a cancel. ``peak`` counts the most keys
held at once, so tests can assert the bound by count rather than by time.
"""

from __future__ import annotations

import heapq
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


class SpillSorter:
    """Sort ``add``-ed keys in bounded memory; :meth:`chunks` hands them out in order."""

    def __init__(self, max_items: int = 1_000_000, *, directory: str | Path | None = None):
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = max_items
        self._parent = str(directory) if directory is not None else None
        self._dir: str | None = None
        self._buf: list[str] = []
        self.runs: list[str] = []
        self.count = 0
        self.peak = 0  # the most keys held in memory at once (buffer, or the merge's heap and chunk)

    def __enter__(self) -> SpillSorter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the run files and their directory."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self.runs = []
        self._buf = []

    def add(self, key: str) -> None:
        self._buf.append(key)
        self.count += 1
        if len(self._buf) > self.peak:
            self.peak = len(self._buf)
        if len(self._buf) >= self.max_items:
            self._spill()

    def extend(self, keys: Iterable[str], check: Callable[[], None] | None = None) -> None:
        """Add every key; ``check()`` is called between spills and may raise to cancel."""
        for k in keys:
            self.add(k)
            if check is not None and not self.count & 0xFFFF:
                check()

    def _spill(self) -> None:
        if not self._buf:
            return
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="djtui-spill-", dir=self._parent)
        self._buf.sort()
        path = os.path.join(self._dir, f"run{len(self.runs):05d}")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(self._buf))
            f.write("\n")
        self.runs.append(path)
        self._buf = []

    def chunks(self, chunk: int = 50_000, check: Callable[[], None] | None = None) -> Iterator[list[str]]:
        """Every added key in ascending order, in lists of at most ``chunk`` keys."""
        if not self.runs:  # everything fit: no file at all
            self._buf.sort()
            buf, self._buf = self._buf, []
            for i in range(0, len(buf), chunk):
                yield buf[i:i + chunk]
            return
        self._spill()
        files = [open(p, encoding="utf-8", newline="\n") for p in self.runs]  # noqa: SIM115 - closed below
        try:
            streams = [(line[:-1] for line in f) for f in files]
            held = len(files) + chunk  # one key per run in the heap, plus the chunk being filled
            self.peak = max(self.peak, held)
            out: list[str] = []
            for key in heapq.merge(*streams):
                out.append(key)
                if len(out) >= chunk:
                    if check is not None:
                        check()
                    yield out
                    out = []
            if out:
                yield out
        finally:
            for f in files:
                f.close()


def sorted_chunks(keys: Iterable[str], *, max_items: int = 1_000_000, chunk: int = 50_000,
                  directory: str | Path | None = None,
                  check: Callable[[], None] | None = None) -> Iterator[list[str]]:
    """``keys`` sorted, in chunks, through a :class:`SpillSorter` removed when the iteration ends."""
    with SpillSorter(max_items, directory=directory) as s:
        s.extend(keys, check)
        yield from s.chunks(chunk, check)
