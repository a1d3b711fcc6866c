"""The bounded-memory engine of the orphan scans: the sorted merge, the spill sorter, the prefetch queue.

Bounds are asserted by count (keys held, chunks ahead), never by time.
"""

from __future__ import annotations

import os
import random
import threading

import pytest

from djtui.domain.setdiff import NotSorted, sorted_difference
from djtui.services.orphans.streamed import prefetched
from djtui.services.spill import SpillSorter, sorted_chunks


def chunked(keys: list[str], n: int):
    for i in range(0, len(keys), n):
        yield keys[i:i + n]


def diff(left: list[str], right: list[str], lc: int, rc: int) -> tuple[list[str], list[str]]:
    only_l, only_r = [], []
    for step in sorted_difference(chunked(left, lc), chunked(right, rc)):
        only_l += step.only_left
        only_r += step.only_right
    return only_l, only_r


def test_merge_agrees_with_set_arithmetic_on_random_streams():
    for seed in range(400):
        rnd = random.Random(seed)
        universe = [f"{rnd.getrandbits(32):08x}" for _ in range(300)]
        left = sorted(rnd.sample(universe, rnd.randint(0, 200)))
        right = sorted(rnd.sample(universe, rnd.randint(0, 200)))
        if seed % 4 == 0:  # duplicates within a side, also across a chunk boundary
            left = sorted(left + left[: rnd.randint(0, 20)])
        only_l, only_r = diff(left, right, rnd.randint(1, 40), rnd.randint(1, 40))
        assert only_l == sorted(set(left) - set(right)), seed
        assert only_r == sorted(set(right) - set(left)), seed


def test_merge_of_empty_sides():
    keys = [f"{i:04x}" for i in range(50)]
    assert diff([], [], 5, 5) == ([], [])
    assert diff(keys, [], 7, 5) == (keys, [])
    assert diff([], keys, 5, 7) == ([], keys)
    assert [s.only_left for s in sorted_difference([[], [], ["a"]], [[]])] == [["a"]]


def test_unsorted_input_stops_the_merge_instead_of_answering():
    with pytest.raises(NotSorted, match="left side"):
        list(sorted_difference([["a", "c", "b"]], [["a"]]))
    with pytest.raises(NotSorted, match="right side: 'a' follows 'b'"):  # across chunks
        list(sorted_difference([["a", "b", "c"]], [["a", "b"], ["a"]]))


def test_merge_holds_at_most_one_chunk_per_side_and_reports_progress():
    rnd = random.Random(1)
    left = sorted({f"{rnd.getrandbits(40):010x}" for _ in range(20_000)})
    right = sorted(set(left[::2]) | {f"{rnd.getrandbits(40):010x}" for _ in range(3000)})
    pulled = {"l": 0, "r": 0}

    def counted(keys: list[str], side: str, n: int):
        for c in chunked(keys, n):
            pulled[side] += len(c)
            yield c

    seen: list[int] = []
    only_l: list[str] = []
    for step in sorted_difference(counted(left, "l", 500), counted(right, "r", 300), progress=seen.append):
        only_l += step.only_left
        compared = seen[-1] if seen else 0
        # keys pulled but not compared yet: never more than one chunk of each side
        assert pulled["l"] + pulled["r"] - compared <= 500 + 300
    assert seen == sorted(seen) and seen[-1] == len(left) + len(right)
    assert only_l == sorted(set(left) - set(right))


def test_merge_cancels_through_check():
    calls = []

    def check():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("cancel")

    keys = [f"{i:06d}" for i in range(1000)]
    with pytest.raises(KeyboardInterrupt):
        list(sorted_difference(chunked(keys, 10), chunked(keys, 10), check=check))
    assert len(calls) == 3


def test_spill_sorter_sorts_in_runs_and_never_holds_more_than_its_budget(tmp_path):
    rnd = random.Random(5)
    keys = [f"{rnd.getrandbits(64):016x}" for _ in range(10_000)]
    keys += keys[:100]  # duplicates survive the sort (the merge collapses them)
    with SpillSorter(700, directory=tmp_path) as s:
        s.extend(keys)
        assert len(s.runs) == len(keys) // 700  # full runs on disk, the rest in memory
        assert s.peak == 700
        out: list[str] = []
        for c in s.chunks(250):
            assert len(c) <= 250
            out += c
        assert s.peak <= 700 + 250  # the heap holds one key per run (15 runs), plus one chunk
        spill_dir = set(tmp_path.iterdir())
        assert len(spill_dir) == 1
    assert out == sorted(keys)
    assert list(tmp_path.iterdir()) == []  # the runs are gone with the sorter


def test_spill_sorter_without_a_spill_writes_nothing(tmp_path):
    with SpillSorter(100, directory=tmp_path) as s:
        s.extend(["b", "a", "c"])
        assert [k for c in s.chunks(2) for k in c] == ["a", "b", "c"]
        assert s.runs == [] and list(tmp_path.iterdir()) == []


def test_sorted_chunks_removes_its_runs_when_left_early(tmp_path):
    it = sorted_chunks((f"{i:05d}" for i in range(5000, 0, -1)), max_items=100, chunk=10, directory=tmp_path)
    assert next(it) == [f"{i:05d}" for i in range(1, 11)]
    assert len(os.listdir(next(tmp_path.iterdir()))) == 50
    it.close()
    assert list(tmp_path.iterdir()) == []


def test_prefetch_runs_a_bounded_number_of_chunks_ahead_and_passes_errors():
    made = []

    def producer():
        for i in range(100):
            made.append(i)
            yield [str(i)]

    it = prefetched(producer(), "t", depth=3)
    assert next(it) == ["0"]
    for _ in range(50):  # give the producer time to run ahead as far as it may
        if len(made) >= 5:
            break
        threading.Event().wait(0.01)
    threading.Event().wait(0.1)
    assert len(made) <= 1 + 3 + 1  # the consumed chunk, the queue, and one waiting to be put
    it.close()

    def broken():
        yield ["a"]
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prefetched(broken(), "t"))
