"""Hashing many files under one deadline: cached digests first, then the rest in threads or worker processes.

Few files: daemon threads in this process. Many: ``python -m djtui.services.hashing`` workers (hashing
small files is per-file Python work, which the GIL would serialize). Either way each file renews the
deadline, so a stale mount fails the wait instead of freezing it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from djtui.services import filesystem
from djtui.services.hashing import hash_file
from djtui.services.transfers.hashcache import HashCache

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])  # the folder that holds djtui/
PROCESS_THRESHOLD = 2000  # fewer files than this: threads (starting workers costs more than it saves)

# A folder's files to hash: (root, rels, sizes as text)
HashGroup = tuple[str, Sequence[str], Sequence[str]]
# A folder as the scan wrote it: (root, rels, sizes, mtimes)
ScanGroup = tuple[str, Sequence[str], Sequence[str], Sequence[str]]
OnFile = Callable[[str], None] | None


class _NoWorkers(Exception):
    """No usable worker process (none could start, or one died): hash in threads instead."""


def hash_files(groups: Sequence[ScanGroup], cache: HashCache, workers: int, timeout: float,
               on_file: OnFile = None) -> tuple[list[list[str]], int]:
    """Digests of regular files (from a scan, never FIFOs), per folder in the folder's file order, and
    how many files were read (the rest came from the cache, which is updated)."""
    digests = [cache.lookup(root, rels, sizes, mtimes) for root, rels, sizes, mtimes in groups]
    todo, where = _uncached(groups, digests)
    if not todo:
        return digests, 0  # type: ignore[return-value]
    fresh = filesystem.with_deadline(lambda beat: _hash(todo, workers, beat, on_file), timeout, "hashing")
    rows = []
    for (gi, idx), got in zip(where, fresh, strict=True):
        ds = digests[gi]
        for i, d in zip(idx, got, strict=True):
            ds[i] = d
        root, rels, sizes, mtimes = groups[gi]
        rows.append((root, rels, sizes, mtimes, ds))
    cache.store(rows)  # type: ignore[arg-type]
    return digests, sum(len(g[1]) for g in todo)  # type: ignore[return-value]


def _uncached(groups: Sequence[ScanGroup], digests: Sequence[Sequence[str | None]]
              ) -> tuple[list[HashGroup], list[tuple[int, list[int]]]]:
    """The files the cache did not know, per folder, and where their digests go back."""
    todo: list[HashGroup] = []
    where: list[tuple[int, list[int]]] = []
    for gi, ds in enumerate(digests):
        idx = [i for i, d in enumerate(ds) if d is None]
        if not idx:
            continue
        root, rels, sizes, _m = groups[gi]
        if len(idx) == len(rels):
            todo.append((root, rels, sizes))
        else:
            todo.append((root, [rels[i] for i in idx], [sizes[i] for i in idx]))
        where.append((gi, idx))
    return todo, where


def _hash(todo: list[HashGroup], workers: int, beat: filesystem.Heartbeat, on_file: OnFile) -> list[list[str]]:
    total = sum(len(g[1]) for g in todo)
    if total < PROCESS_THRESHOLD or workers < 2 or (os.cpu_count() or 1) < 2:
        return ThreadHasher(todo, workers, beat, on_file).run()
    try:
        return ProcessHasher(todo, workers, beat, on_file).run()
    except _NoWorkers:  # no usable interpreter to start, or one died: threads still work
        return ThreadHasher(todo, workers, beat, on_file).run()


class ThreadHasher:
    """Daemon threads, not a ThreadPoolExecutor: Python joins executor threads at exit, so one read stuck in
    the kernel (stale mount) would hold the finished CLI or app open for minutes."""

    def __init__(self, todo: list[HashGroup], workers: int, beat: Callable[[], None], on_file: OnFile):
        self.todo, self.beat, self.on_file = todo, beat, on_file
        self.results: list[list[str]] = [[""] * len(g[1]) for g in todo]
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._pending: Iterator[tuple[int, int, str, int]] = iter(
            [(ti, j, f"{root}/{rel}", int(size)) for ti, (root, rels, sizes) in enumerate(todo)
             for j, (rel, size) in enumerate(zip(rels, sizes, strict=True))])
        self.n = max(1, min(workers, sum(len(g[1]) for g in todo)))

    def run(self) -> list[list[str]]:
        threads = [threading.Thread(target=self._work, daemon=True, name="djtui-hash") for _ in range(self.n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.errors:
            raise self.errors[0]
        return self.results

    def _work(self) -> None:
        while not self.errors:
            with self._lock:
                nxt = next(self._pending, None)
            if nxt is None:
                return
            ti, j, path, size = nxt
            try:
                d = hash_file(path, self.beat, size)
            except BaseException as exc:
                self.errors.append(exc)
                return
            self.beat()
            if self.on_file:
                self.on_file(path)
            self.results[ti][j] = d


class ProcessHasher:
    """Whole folders per worker process, dealt out so each gets about the same number of files; one reader
    thread per worker collects its answer lines (a digest, or ``!errno message``)."""

    def __init__(self, todo: list[HashGroup], workers: int, beat: Callable[[], None], on_file: OnFile):
        self.todo, self.beat, self.on_file = todo, beat, on_file
        self.n = min(workers, os.cpu_count() or 1)
        self.results: list[list[str]] = [[] for _ in todo]
        self.errors: list[OSError] = []

    def _parts(self) -> list[list[int]]:
        parts: list[list[int]] = [[] for _ in range(self.n)]
        load = [0] * self.n
        for ti in sorted(range(len(self.todo)), key=lambda t: -len(self.todo[t][1])):
            w = load.index(min(load))
            parts[w].append(ti)
            load[w] += len(self.todo[ti][1])
        return parts

    def run(self) -> list[list[str]]:
        parts = self._parts()
        procs = start_workers(self.n)
        readers = [threading.Thread(target=self._read, args=(part, p), daemon=True, name="djtui-hash-read")
                   for part, p in zip(parts, procs, strict=True)]
        try:
            for t in readers:
                t.start()
            for t in readers:
                t.join()
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        if self.errors:
            raise self.errors[0]
        if any(len(r) != len(g[1]) for r, g in zip(self.results, self.todo, strict=True)):
            raise _NoWorkers  # a worker died (not a file error): hash here instead
        return self.results

    def _read(self, part: list[int], proc: subprocess.Popen) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            with proc.stdin:  # the worker reads all of it before it touches a file: this cannot block on a mount
                proc.stdin.write(request([self.todo[ti] for ti in part]))
        except OSError:  # it died at start: its results stay missing and threads take over
            return
        slots = [(ti, j) for ti in part for j in range(len(self.todo[ti][1]))]
        chunks: list[bytes] = []
        seen = 0
        while chunk := proc.stdout.read1(1 << 16):
            chunks.append(chunk)
            self.beat()
            if self.on_file:
                now = seen + chunk.count(b"\n")
                for ti, j in slots[seen:now]:
                    self.on_file(f"{self.todo[ti][0]}/{self.todo[ti][1][j]}")
                seen = now
        lines = b"".join(chunks).decode("utf-8", "replace").split("\n")
        lines.pop()  # after the last newline
        for n, line in enumerate(lines):
            if line.startswith("!"):
                ti, j = slots[n]
                num, _, msg = line[1:].partition(" ")
                self.errors.append(OSError(int(num) if num.isdigit() else 0, msg,
                                           f"{self.todo[ti][0]}/{self.todo[ti][1][j]}"))
                return
        pos = 0
        for ti in part:
            count = len(self.todo[ti][1])
            self.results[ti] = lines[pos:pos + count]
            pos += count


def start_workers(n: int) -> list[subprocess.Popen]:
    """``n`` idle ``python -m djtui.services.hashing`` processes (they start while their lists are built)."""
    if not sys.executable:
        raise _NoWorkers
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen([sys.executable, "-s", "-m", "djtui.services.hashing"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          cwd="/", env={"LC_ALL": "C", "PYTHONPATH": _PACKAGE_ROOT}))
    except OSError:
        for proc in procs:
            proc.kill()
            proc.wait()
        raise _NoWorkers from None
    return procs


def request(part: list[HashGroup]) -> bytes:
    """A worker's whole list: folder, file count, then each file's relative path and size."""
    fields: list[str] = []
    for root, rels, sizes in part:
        fields += [root, str(len(rels))]
        fields += [x for pair in zip(rels, sizes, strict=True) for x in pair]
    return ("\0".join(fields) + "\0").encode("utf-8", "surrogateescape")
