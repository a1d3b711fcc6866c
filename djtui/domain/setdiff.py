"""The difference of two sorted streams, in bounded memory: what one side holds and the other does not.

Each side arrives as sorted chunks (lists of keys, ascending, chunk after chunk). The merge never
holds more than the current chunk of each side plus the carried-over tail: it takes the smaller of
the two chunks' last keys as a bound, compares everything up to it with set operations (done in C,
not one Python step per key), and keeps the rest for the next round. Unsorted input is an error,
never a wrong answer: a scan that was told "sorted" and was not must stop, not report orphans.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass


class NotSorted(ValueError):
    """A side of the merge was not in ascending order (where and which keys are in the message)."""


@dataclass
class DiffStep:
    """One round of the merge: keys only on the left, keys only on the right (each sorted)."""

    only_left: list[str]
    only_right: list[str]


def _check_sorted(chunk: list[str], last: str | None, side: str) -> None:
    if last is not None and chunk[0] < last:
        raise NotSorted(f"{side} side: {chunk[0]!r} follows {last!r}")
    if chunk != sorted(chunk):  # timsort on sorted input is one linear pass in C
        bad = next(i for i in range(1, len(chunk)) if chunk[i] < chunk[i - 1])
        raise NotSorted(f"{side} side: {chunk[bad]!r} follows {chunk[bad - 1]!r}")


class _Side:
    """One input of the merge: its chunk iterator, the keys not yet compared, the last key seen."""

    def __init__(self, chunks: Iterable[list[str]], name: str):
        self.chunks, self.name = iter(chunks), name
        self.buf: list[str] = []
        self.last: str | None = None
        self.done = False

    def fill(self) -> None:
        """When the buffer ran dry, the next non-empty chunk (checked for order), or done."""
        while not self.buf and not self.done:
            chunk = next(self.chunks, None)
            if chunk is None:
                self.done = True
                return
            if not chunk:
                continue
            _check_sorted(chunk, self.last, self.name)
            if chunk[0] == self.last:  # a key repeated across chunks is already represented
                chunk = chunk[bisect_right(chunk, self.last):]
                if not chunk:
                    continue
            self.buf, self.last = chunk, chunk[-1]

    def take(self, bound: str | None) -> list[str]:
        """The keys up to ``bound`` (all with None), removed from the buffer."""
        if bound is None:
            part, self.buf = self.buf, []
            return part
        i = bisect_right(self.buf, bound)
        part, self.buf = self.buf[:i], self.buf[i:]
        return part


def sorted_difference(left: Iterable[list[str]], right: Iterable[list[str]], *,
                      progress: Callable[[int], None] | None = None,
                      check: Callable[[], None] | None = None) -> Iterator[DiffStep]:
    """Merge two ascending chunk streams; yield, round by round, what each side has alone.

    ``progress(n)`` gets the number of keys compared so far after each round; ``check()`` is
    called once per round and may raise to cancel. Duplicates within a side count once.
    At most one chunk of each side is held at a time (the side that is ahead keeps a tail).
    """
    lside, rside = _Side(left, "left"), _Side(right, "right")
    compared = 0
    while True:
        if check is not None:
            check()
        lside.fill()
        rside.fill()
        if not lside.buf and not rside.buf:
            return
        # keys up to the bound are final on both sides: a side's later chunks start at or after
        # its last key, and the bound is at most that key
        if lside.done and rside.done:
            bound = None
        elif lside.done:
            bound = rside.buf[-1]
        elif rside.done:
            bound = lside.buf[-1]
        else:
            bound = min(lside.buf[-1], rside.buf[-1])
        lpart, rpart = lside.take(bound), rside.take(bound)
        lset, rset = set(lpart), set(rpart)
        compared += len(lpart) + len(rpart)
        yield DiffStep(sorted(lset - rset), sorted(rset - lset))
        if progress is not None:
            progress(compared)
