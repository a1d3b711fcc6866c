"""Copying sessions with rsync and proving the copies, plus the job queue the screen and CLI share.

rsync runs as an argument list (never a shell), with ``LC_ALL=C`` and
machine-readable progress; any non-zero exit is a failure, always (the
shell tool's pipeline reported failed batches as success). Verification
compares every file's size, and optionally a fast content hash computed in
parallel and cached by (path, size, mtime_ns), so a re-verify only hashes
what changed. A passing verification is written as a record that delete
later holds the source against.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import shlex
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djtui.config import Destination, RsyncSettings
from djtui.domain.rsync import TransferProgress, exit_meaning, parse_itemize, parse_progress, split_records
from djtui.domain.sessions import (
    Comparison,
    ContentMismatch,
    Listing,
    Scan,
    SessionKey,
    VerifyRecord,
    compare_scans,
    compare_sizes,
    mismatch_reason,
    scan_stats,
    standing_mismatches,
)
from djtui.errors import UserError
from djtui.services import commandlog, filesystem
from djtui.services.hashing import hash_file
from djtui.services.locks import LockBusy, exclusive
from djtui.services.sessions import SessionService

# --------------------------------------------------------------------------------------------
# rsync


def rsync_args(flags: str | RsyncSettings, src: Path, dst: Path, *, exclude: Iterable[str] = (),
               dry_run: bool = False, rsync: str = "rsync") -> list[str]:
    """The argument list: configured flags, the bandwidth limit and timeout, then ours (progress, itemize,
    parents), then the two trees.

    Ours come after the user's flags, so a ``-h`` or ``-v`` there (the backup manager ships ``-avzh``)
    cannot change what djtui parses: ``--no-h`` wins over ``-h``, and ``-i`` lines are the same with ``-v``.
    """
    settings = flags if isinstance(flags, RsyncSettings) else RsyncSettings(flags=flags)
    args = [rsync, *shlex.split(settings.flags), *settings.options(),
            "-i", "--info=progress2", "--no-h", "--outbuf=L", "--mkpath"]
    args += [f"--exclude={p}" for p in exclude]
    if dry_run:
        args.append("--dry-run")
    args += [f"{src}/", f"{dst}/"]
    return args


def sync_args(svc: SessionService, dest: Destination, key: SessionKey, *, dry_run: bool = False) -> list[str]:
    """The rsync command a sync of ``key`` to ``dest`` runs (``sync --dry-run`` shows it)."""
    return rsync_args(dest.rsync, svc.source_path(key), svc.dest_path(dest, key), exclude=svc.excludes,
                      dry_run=dry_run)


@dataclass(frozen=True)
class RsyncResult:
    returncode: int
    changed: tuple[str, ...]
    stderr: str
    elapsed: float
    last: TransferProgress | None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def message(self) -> str:
        if self.ok:
            return f"{len(self.changed)} files transferred in {self.elapsed:.1f} s"
        err = self.stderr.strip().splitlines()[-1:] or [""]
        return f"rsync failed: {exit_meaning(self.returncode)} (exit {self.returncode}) {err[0]}".strip()


class Cancelled(Exception):
    pass


def _retrieve(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()


async def run_rsync(args: Sequence[str], on_progress: Callable[[TransferProgress], None] | None = None,
                    cancel: asyncio.Event | None = None) -> RsyncResult:
    """Run rsync, report each progress line, and return its exit code and itemized changes."""
    commandlog.record("exec", list(args))
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env,
                                                stdin=asyncio.subprocess.DEVNULL)
    changed: list[str] = []
    current = ""
    last: TransferProgress | None = None
    err_chunks: list[bytes] = []

    async def read_err() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            err_chunks.append(chunk)

    async def read_out() -> None:
        nonlocal current, last
        assert proc.stdout is not None
        tail = ""
        while chunk := await proc.stdout.read(65536):
            records, tail = split_records(tail + chunk.decode("utf-8", "replace"))
            for line in records:
                p = parse_progress(line)
                if p is not None:
                    last = TransferProgress(**{**p.__dict__, "current_file": current})
                    if on_progress:
                        on_progress(last)
                    continue
                item = parse_itemize(line)
                if item is not None and item.is_file_transfer:
                    current = item.name
                    changed.append(item.name)

    readers = asyncio.gather(read_out(), read_err())
    waiter = asyncio.ensure_future(cancel.wait()) if cancel else None
    try:
        if waiter:
            done, _ = await asyncio.wait({readers, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if waiter in done:
                proc.terminate()
                await readers
        else:
            await readers
        code = await proc.wait()
    finally:
        if waiter:
            waiter.cancel()
        if not readers.done():
            # cancelled from outside (the app quitting): cancel the readers as one, so no gathered
            # CancelledError is left "never retrieved" for the event loop to print at exit
            readers.cancel()
        readers.add_done_callback(_retrieve)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = commandlog.mask(b"".join(err_chunks).decode("utf-8", "replace"))
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the operator")
    return RsyncResult(code, tuple(changed), stderr, time.monotonic() - start, last)


# --------------------------------------------------------------------------------------------
# hashing with a cache


class HashCache:
    """xxh3-128 digests keyed by (path, size, mtime) in ``state_dir/hashcache.sqlite``.

    One row per session folder: its files' relative paths, sizes, mtimes and digests as
    NUL-separated text. A verification of 100,000 files reads and writes a thousand rows, and a
    folder that did not change is recognised by comparing its columns whole, without a Python
    step per file. Keys are bytes, since a file name need not be UTF-8. It is only a cache:
    losing it costs a re-hash, so writes skip fsync.
    """

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "hashcache.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE IF NOT EXISTS hr (root BLOB PRIMARY KEY, n INTEGER, rels BLOB, sizes BLOB, "
                         "mtimes BLOB, digests BLOB)")
        for old in ("h", "hb"):  # one row per file, from earlier versions
            self._db.execute(f"DROP TABLE IF EXISTS {old}")

    def lookup(self, root: str, rels: Sequence[str], sizes: Sequence[str], mtimes: Sequence[str]
               ) -> list[str | None]:
        """The cached digest of each file whose size and mtime are still the same, else None."""
        with self._lock:
            row = self._db.execute("SELECT n, rels, sizes, mtimes, digests FROM hr WHERE root = ?",
                                   (_pack([root]),)).fetchone()
        if row is None:
            return [None] * len(rels)
        try:
            n = row[0]
            crels, csizes, cmtimes, cdig = (_unpack(c, n) for c in row[1:])
        except (ValueError, UnicodeError):
            return [None] * len(rels)
        if crels == list(rels) and csizes == list(sizes) and cmtimes == list(mtimes):
            return list(cdig)
        known = {r: (sz, m, d) for r, sz, m, d in zip(crels, csizes, cmtimes, cdig, strict=True)}
        out: list[str | None] = []
        for r, sz, m in zip(rels, sizes, mtimes, strict=True):
            hit = known.get(r)
            out.append(hit[2] if hit is not None and hit[0] == sz and hit[1] == m else None)
        return out

    def store(self, rows: Sequence[tuple[str, Sequence[str], Sequence[str], Sequence[str], Sequence[str]]]) -> None:
        """(root, rels, sizes, mtimes, digests) per folder; a folder's row is replaced whole."""
        if not rows:
            return
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO hr VALUES (?, ?, ?, ?, ?, ?)",
                                 [(_pack([root]), len(r), _pack(r), _pack(s), _pack(m), _pack(d))
                                  for root, r, s, m, d in rows])
            self._db.commit()

    def forget(self, files: Iterable[tuple[str, Iterable[str]]]) -> None:
        """Drop the digests of these (folder, relative paths): read again, whatever their size and mtime."""
        with self._lock:
            for root, rels in files:
                drop = set(rels)
                row = self._db.execute("SELECT n, rels, sizes, mtimes, digests FROM hr WHERE root = ?",
                                       (_pack([root]),)).fetchone()
                if row is None or not drop:
                    continue
                try:
                    cols = [_unpack(c, row[0]) for c in row[1:]]
                except (ValueError, UnicodeError):
                    cols = [[], [], [], []]
                keep = [j for j, r in enumerate(cols[0]) if r not in drop]
                r, sz, m, d = ([c[j] for j in keep] for c in cols)
                self._db.execute("INSERT OR REPLACE INTO hr VALUES (?, ?, ?, ?, ?, ?)",
                                 (_pack([root]), len(r), _pack(r), _pack(sz), _pack(m), _pack(d)))
            self._db.commit()

    def close(self) -> None:
        self._db.close()


def _pack(col: Sequence[str]) -> bytes:
    return "\0".join(col).encode("utf-8", "surrogateescape")


def _unpack(blob: bytes, n: int) -> list[str]:
    out = bytes(blob).decode("utf-8", "surrogateescape").split("\0") if n else []
    if len(out) != n:
        raise ValueError("damaged cache row")
    return out


class _NoWorkers(Exception):
    pass


_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder that holds djtui/

# A folder's files to hash: (root, rels, sizes as text)
HashGroup = tuple[str, Sequence[str], Sequence[str]]


def _start_workers(n: int) -> list[subprocess.Popen]:
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


def _request(part: list[HashGroup]) -> bytes:
    """A worker's whole list: folder, file count, then each file's relative path and size."""
    fields: list[str] = []
    for root, rels, sizes in part:
        fields += [root, str(len(rels))]
        fields += [x for pair in zip(rels, sizes, strict=True) for x in pair]
    return ("\0".join(fields) + "\0").encode("utf-8", "surrogateescape")


def hash_files(groups: Sequence[tuple[str, Sequence[str], Sequence[str], Sequence[str]]], cache: HashCache,
               workers: int, timeout: float, on_file: Callable[[str], None] | None = None
               ) -> tuple[list[list[str]], int]:
    """Digests of regular files (from a scan, never FIFOs), per folder in the folder's file order.

    ``groups`` are (root, rels, sizes, mtimes) as the scan wrote them; cached digests are not
    re-read. Many files: worker processes (hashing small files is per-file Python work, which the
    GIL would serialize); few: threads. Either way the wait has a deadline renewed by each file.
    """
    digests = [cache.lookup(root, rels, sizes, mtimes) for root, rels, sizes, mtimes in groups]
    todo_idx = [[i for i, d in enumerate(ds) if d is None] for ds in digests]
    todo: list[HashGroup] = []
    where: list[tuple[int, list[int]]] = []
    for gi, idx in enumerate(todo_idx):
        if idx:
            root, rels, sizes, _m = groups[gi]
            if len(idx) == len(rels):
                todo.append((root, rels, sizes))
            else:
                todo.append((root, [rels[i] for i in idx], [sizes[i] for i in idx]))
            where.append((gi, idx))
    total = sum(len(g[1]) for g in todo)

    def threaded(beat: filesystem.Heartbeat) -> list[list[str]]:
        # daemon threads, not a ThreadPoolExecutor: Python joins executor threads at exit, so one
        # read stuck in the kernel (stale mount) would hold the finished CLI or app open for minutes
        flat = [(ti, j, f"{root}/{rel}", int(size)) for ti, (root, rels, sizes) in enumerate(todo)
                for j, (rel, size) in enumerate(zip(rels, sizes, strict=True))]
        results: list[list[str]] = [[""] * len(g[1]) for g in todo]
        pending = iter(flat)
        lock = threading.Lock()
        errors: list[BaseException] = []

        def worker() -> None:
            while not errors:
                with lock:
                    nxt = next(pending, None)
                if nxt is None:
                    return
                ti, j, path, size = nxt
                try:
                    d = hash_file(path, beat, size)
                except BaseException as exc:
                    errors.append(exc)
                    return
                beat()
                if on_file:
                    on_file(path)
                results[ti][j] = d

        threads = [threading.Thread(target=worker, daemon=True, name="djtui-hash")
                   for _ in range(max(1, min(workers, total)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results

    def work(beat: filesystem.Heartbeat) -> list[list[str]]:
        if total < 2000 or workers < 2 or (os.cpu_count() or 1) < 2:
            return threaded(beat)
        try:
            return processes(beat)
        except _NoWorkers:  # no usable interpreter to start, or one died: threads still work
            return threaded(beat)

    def processes(beat: filesystem.Heartbeat) -> list[list[str]]:
        n = min(workers, os.cpu_count() or 1)
        # whole folders per worker, dealt out so each gets about the same number of files
        parts: list[list[int]] = [[] for _ in range(n)]
        load = [0] * n
        for ti in sorted(range(len(todo)), key=lambda t: -len(todo[t][1])):
            w = load.index(min(load))
            parts[w].append(ti)
            load[w] += len(todo[ti][1])
        procs = _start_workers(n)
        results: list[list[str]] = [[] for _ in todo]
        errors: list[OSError] = []

        def read(part: list[int], proc: subprocess.Popen) -> None:
            assert proc.stdin is not None and proc.stdout is not None
            try:
                with proc.stdin:  # the worker reads all of it before it touches a file: this cannot block on a mount
                    proc.stdin.write(_request([todo[ti] for ti in part]))
            except OSError:  # it died at start: its results stay missing and threads take over
                return
            slots = [(ti, j) for ti in part for j in range(len(todo[ti][1]))]
            chunks: list[bytes] = []
            seen = 0
            while chunk := proc.stdout.read1(1 << 16):
                chunks.append(chunk)
                beat()
                if on_file:
                    now = seen + chunk.count(b"\n")
                    for ti, j in slots[seen:now]:
                        on_file(f"{todo[ti][0]}/{todo[ti][1][j]}")
                    seen = now
            lines = b"".join(chunks).decode("utf-8", "replace").split("\n")
            lines.pop()  # after the last newline
            for n, line in enumerate(lines):
                if line.startswith("!"):
                    ti, j = slots[n]
                    num, _, msg = line[1:].partition(" ")
                    errors.append(OSError(int(num) if num.isdigit() else 0, msg, f"{todo[ti][0]}/{todo[ti][1][j]}"))
                    return
            pos = 0
            for ti in part:
                count = len(todo[ti][1])
                results[ti] = lines[pos:pos + count]
                pos += count

        readers = [threading.Thread(target=read, args=(part, p), daemon=True, name="djtui-hash-read")
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
        if errors:
            raise errors[0]
        if any(len(r) != len(g[1]) for r, g in zip(results, todo, strict=True)):
            raise _NoWorkers  # a worker died (not a file error): hash here instead
        return results

    if not todo:
        return digests, 0  # type: ignore[return-value]
    fresh = filesystem.with_deadline(work, timeout, "hashing")
    rows = []
    for (gi, idx), got in zip(where, fresh, strict=True):
        ds = digests[gi]
        if len(idx) == len(ds):
            ds[:] = got
        else:
            for i, d in zip(idx, got, strict=True):
                ds[i] = d
        root, rels, sizes, mtimes = groups[gi]
        rows.append((root, rels, sizes, mtimes, ds))
    cache.store(rows)
    return digests, total  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# verification


@dataclass(frozen=True)
class VerifyOutcome:
    key: SessionKey
    destination: str
    method: str
    comparison: Comparison
    source_files: int
    source_bytes: int
    hashed_now: int = 0
    record_path: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.comparison.ok and self.source_files > 0

    @property
    def message(self) -> str:
        if self.error:
            return self.error
        if self.source_files == 0:
            return "the source folder holds no files"
        return self.comparison.summary()

    def to_json(self) -> dict[str, Any]:
        c = self.comparison
        return {"participant_id": self.key.participant_id, "session_date": self.key.date_str,
                "destination": self.destination, "method": self.method, "ok": self.ok, "message": self.message,
                "files": self.source_files, "bytes": self.source_bytes, "missing": list(c.missing),
                "extra": list(c.extra), "size_mismatch": list(c.size_mismatch),
                "hash_mismatch": list(c.hash_mismatch), "hashed_now": self.hashed_now,
                "record": self.record_path}


def verify_session(service: SessionService, key: SessionKey, dest: Destination, *, checksum: bool = False,
                   on_file: Callable[[str], None] | None = None) -> VerifyOutcome:
    """Blocking: compare one session's source and destination file by file; store a record when it passes."""
    return verify_many(service, [key], dest, checksum=checksum, on_file=on_file)[0]


def verify_many(service: SessionService, keys: Sequence[SessionKey], dest: Destination, *, checksum: bool = False,
                on_file: Callable[[str], None] | None = None) -> list[VerifyOutcome]:
    """Blocking: verify many sessions in one pass (one scan per side, one hashing pool, one cache).

    Folders whose two sides agree are proven equal by one dict comparison over the scan's text
    columns; only folders that differ get a file-by-file diff. Records are written once at the end.
    A content difference a checksum verify found is remembered, and fails every later verify
    while the file's size and mtime are unchanged on both sides, until a checksum verify passes.
    """
    with _collector_paused():
        return _verify_many(service, keys, dest, checksum=checksum, on_file=on_file)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic GC passes while a scan makes hundreds of thousands of strings (about 15% of the work).

    Nothing here makes cycles that matter: memory is still freed by reference counting.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _verify_many(service: SessionService, keys: Sequence[SessionKey], dest: Destination, *, checksum: bool,
                 on_file: Callable[[str], None] | None) -> list[VerifyOutcome]:
    method = "checksum" if checksum else "size"
    empty = Comparison()
    probe = service.probe(dest)
    if not probe.ok:
        service.records.forget_many(keys, dest.name)
        return [VerifyOutcome(k, dest.name, method, empty, 0, 0, error=f"{dest.name}: {probe.state}: {probe.detail}")
                for k in keys]
    started = time.time()
    src_paths = [service.source_path(k) for k in keys]
    dst_paths = [service.dest_path(dest, k) for k in keys]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            f_src = pool.submit(filesystem.scan_columns, src_paths, exclude=service.excludes, timeout=service.timeout)
            f_dst = pool.submit(filesystem.scan_columns, dst_paths, exclude=service.excludes, timeout=service.timeout)
            srcs, dsts = f_src.result(), f_dst.result()
    except filesystem.Hung as exc:
        return [VerifyOutcome(k, dest.name, method, empty, 0, 0, error=str(exc)) for k in keys]
    except OSError as exc:  # the Python scanner (no GNU find) met an unreadable folder
        service.records.forget_many(keys, dest.name)
        return [VerifyOutcome(k, dest.name, method, empty, 0, 0,
                              error=f"{exc.filename}: {exc.strerror or exc}; not verified") for k in keys]
    cmps = [compare_scans(s, d) if s.exists and d.exists and not (s.error or d.error) else None
            for s, d in zip(srcs, dsts, strict=True)]
    digests: dict[int, tuple[list[str], Sequence[str], list[str]]] = {}  # i -> src digests, dst rels, dst digests
    hashed = 0
    known = service.records.load_mismatches(keys, dest.name)
    if checksum:
        groups: list[tuple[str, Sequence[str], Sequence[str], Sequence[str]]] = []
        owners: list[int] = []
        for i, (sp, dp, s, d, c) in enumerate(zip(src_paths, dst_paths, srcs, dsts, cmps, strict=True)):
            if c is None or not c.ok:
                continue
            srels, ssizes, smtimes = s.file_columns()
            drels, dsizes, dmtimes = d.file_columns()
            if len(drels) != len(srels):  # extra files at the destination are not read
                have = set(srels)
                keep = [j for j, r in enumerate(drels) if r in have]
                drels, dsizes, dmtimes = ([col[j] for j in keep] for col in (drels, dsizes, dmtimes))
            groups += [(os.path.abspath(sp), srels, ssizes, smtimes), (os.path.abspath(dp), drels, dsizes, dmtimes)]
            owners.append(i)
        if groups:
            cache = HashCache(service.config.state_dir)
            try:
                # a re-copy can keep the bad copy's size and mtime: a known difference is read again, never cached
                cache.forget((root, [m.rel for m in known[keys[i]]]) for n, i in enumerate(owners) if keys[i] in known
                             for root in (groups[2 * n][0], groups[2 * n + 1][0]))
                got, hashed = hash_files(groups, cache, service.settings.checksum_workers, service.timeout, on_file)
            except filesystem.Hung as exc:
                return [VerifyOutcome(k, dest.name, method, empty, 0, 0, error=str(exc)) for k in keys]
            except OSError as exc:  # a file (or the whole destination) vanished while it was being read
                service.records.forget_many(keys, dest.name)
                return [VerifyOutcome(k, dest.name, method, empty, 0, 0,
                                      error=f"{exc.filename or dest.name}: {exc.strerror or exc} during "
                                            "verification (removed or unmounted?); not verified")
                        for k in keys]
            finally:
                cache.close()
            for n, i in enumerate(owners):
                digests[i] = (got[2 * n], groups[2 * n + 1][1], got[2 * n + 1])
    out = []
    passed: list[VerifyRecord] = []
    failed: list[tuple[SessionKey, str]] = []
    found: dict[tuple[SessionKey, str], list[ContentMismatch]] = {}  # replaces what is remembered there
    for i, (k, sp, dp, s, d, c) in enumerate(zip(keys, src_paths, dst_paths, srcs, dsts, cmps, strict=True)):
        if not s.exists:
            out.append(VerifyOutcome(k, dest.name, method, empty, 0, 0, error=f"source {sp} does not exist"))
            continue
        if s.error or d.error:
            failed.append((k, dest.name))
            out.append(VerifyOutcome(k, dest.name, method, empty, s.count, s.bytes,
                                     error=f"could not list every file: {s.error or d.error}; not verified"))
            continue
        if c is None:
            failed.append((k, dest.name))
            out.append(VerifyOutcome(k, dest.name, method, compare_sizes(s.listing(), Listing(True)), s.count,
                                     s.bytes, error=f"no backup at {dp}"))
            continue
        table = s.file_table()
        remembered = known.get(k, ())
        standing: list[ContentMismatch] = []
        if checksum and c.ok:
            hashes, drels, dhashes = digests[i]
            bad: tuple[str, ...] = ()
            if dict(zip(table.rels, hashes, strict=True)) != dict(zip(drels, dhashes, strict=True)):
                other = dict(zip(drels, dhashes, strict=True))
                bad = tuple(r for r, h in zip(table.rels, hashes, strict=True) if other.get(r) != h)
            table = s.file_table(hashes)
            c = Comparison(c.missing, c.extra, c.size_mismatch, bad, c.compared, len(hashes))
            if bad or remembered:  # every file was read: what it found replaces what was remembered
                found[(k, dest.name)] = _content_mismatches(bad, s, d, started)
        elif remembered:
            rels = [m.rel for m in remembered]
            standing = standing_mismatches(remembered, scan_stats(s, rels), scan_stats(d, rels))
            if len(standing) != len(remembered):  # a file changed on either side: it no longer counts
                found[(k, dest.name)] = standing
        if standing:
            names = [m.rel for m in standing]
            why = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "") + ": " + mismatch_reason(standing)
            if not c.ok:
                why = f"{c.summary()}; {why}"
            c = Comparison(c.missing, c.extra, c.size_mismatch, tuple(names), c.compared, c.hashed)
            failed.append((k, dest.name))
            out.append(VerifyOutcome(k, dest.name, method, c, s.count, s.bytes, error=why))
            continue
        record_path = None
        if c.ok and s.count:
            passed.append(VerifyRecord(k.participant_id, k.date_str, dest.name, started, method, table))
            record_path = str(service.records.path)
        else:
            failed.append((k, dest.name))
        out.append(VerifyOutcome(k, dest.name, method, c, s.count, s.bytes, 0, record_path))
    service.records.save_many(passed, failed, found)
    if out:
        first = out[0]
        out[0] = VerifyOutcome(first.key, first.destination, first.method, first.comparison, first.source_files,
                               first.source_bytes, hashed, first.record_path, first.error)
    return out


def _content_mismatches(rels: Sequence[str], src: Scan, dst: Scan, when: float) -> list[ContentMismatch]:
    """Both sides' size and mtime of each file whose content differed, as this verify saw them."""
    if not rels:
        return []
    a, b = scan_stats(src, rels), scan_stats(dst, rels)
    return [ContentMismatch(r, *a[r], *b[r], when) for r in rels if r in a and r in b]


# --------------------------------------------------------------------------------------------
# jobs


@dataclass
class Job:
    """One sync or verify of one session to one destination, as the Transfers screen shows it."""

    id: int
    kind: str  # sync | verify
    key: SessionKey
    destination: str
    dry_run: bool = False
    checksum: bool = False
    state: str = "queued"  # queued | running | done | failed | cancelled
    progress: TransferProgress | None = None
    rates: deque[float] = field(default_factory=lambda: deque(maxlen=60))
    message: str = ""
    files_done: int = 0
    started: float | None = None
    finished: float | None = None
    result: Any = None
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    retry_of: int | None = None  # the failed or cancelled job this one runs again

    @property
    def label(self) -> str:
        extra = " (dry run)" if self.dry_run else (" (checksum)" if self.checksum else "")
        if self.retry_of is not None:
            extra += f" (retry of #{self.retry_of})"
        return f"{self.kind} {self.key.label} → {self.destination}{extra}"

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def ok(self) -> bool:
        return self.state == "done"


_ids = itertools.count(1)


class JobQueue:
    """Runs jobs one at a time on the event loop it was created on; listeners hear every change."""

    def __init__(self, service: SessionService, *, verify_after_sync: bool | None = None):
        self.service = service
        self.jobs: list[Job] = []
        self.listeners: list[Callable[[Job], None]] = []
        self._pending: asyncio.Queue[Job] = asyncio.Queue()
        self._runner: asyncio.Task | None = None
        v = service.backup.verification
        self.verify_after_sync = v.verify_after_sync if verify_after_sync is None else verify_after_sync
        self.checksum_default = v.verify_method == "checksum"

    def _emit(self, job: Job) -> None:
        for fn in list(self.listeners):
            try:
                fn(job)
            except Exception:
                pass

    def submit(self, kind: str, key: SessionKey, destination: str, *, dry_run: bool = False,
               checksum: bool | None = None) -> Job:
        if kind not in ("sync", "verify"):
            raise UserError(f"unknown job kind {kind!r}")
        self.service.backup.destination(destination)
        job = Job(next(_ids), kind, key, destination, dry_run,
                  self.checksum_default if checksum is None else checksum)
        self.jobs.append(job)
        self._pending.put_nowait(job)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run())
        self._emit(job)
        return job

    def cancel(self, job: Job) -> None:
        if job.state == "queued":
            job.state = "cancelled"
            job.message = "cancelled before it started"
            self._emit(job)
        elif job.state == "running":
            job.cancel_event.set()

    @property
    def active(self) -> list[Job]:
        return [j for j in self.jobs if j.active]

    async def cancel_all(self, timeout: float = 15.0) -> list[Job]:
        """Cancel every queued and running job and wait (up to ``timeout``) until they have stopped.

        A running rsync gets SIGTERM, as ``c`` on the Transfers screen sends: what it had copied
        stays as rsync leaves it, and the job ends ``cancelled``. Returns the jobs it cancelled.
        """
        jobs = self.active
        for job in reversed(jobs):  # the queued ones first, so none starts while the running one stops
            self.cancel(job)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.wait(jobs), timeout)
        return jobs

    def retry(self, job: Job) -> Job:
        """Queue a failed or cancelled job again, as a new job with the same kind, session and options."""
        if job.active:
            raise UserError(f"job {job.id} is still {job.state}: only a failed or cancelled job can be retried")
        if job.state not in ("failed", "cancelled"):
            raise UserError(f"job {job.id} is {job.state}: only a failed or cancelled job can be retried",
                            hint="to copy it again, press s on the Sessions screen")
        new = self.submit(job.kind, job.key, job.destination, dry_run=job.dry_run, checksum=job.checksum)
        new.retry_of = job.id
        return new

    async def wait(self, jobs: Iterable[Job] | None = None) -> None:
        targets = list(jobs) if jobs is not None else list(self.jobs)
        while any(j.active for j in targets):
            await asyncio.sleep(0.05)

    async def _run(self) -> None:
        while not self._pending.empty():
            job = self._pending.get_nowait()
            if job.state != "queued":
                continue
            job.state, job.started = "running", time.time()
            self._emit(job)
            try:
                if job.kind == "sync":
                    await self._sync(job)
                else:
                    await self._verify(job)
            except Cancelled:
                job.state, job.message = "cancelled", "cancelled by the operator"
            except UserError as exc:
                job.state, job.message = "failed", exc.what
            except Exception as exc:
                job.state, job.message = "failed", commandlog.mask(f"{type(exc).__name__}: {exc}")
            job.finished = time.time()
            self._emit(job)

    async def _sync(self, job: Job) -> None:
        """Under the session's source lock, the one delete takes: a delete never runs while rsync reads."""
        if job.dry_run:
            return await self._sync_unlocked(job)
        svc = self.service
        try:
            with exclusive(svc.config.state_dir, f"source:{svc.source_path(job.key)}",
                           purpose=f"sync {job.key.label} → {job.destination}"):
                await self._sync_unlocked(job)
        except LockBusy as exc:
            raise UserError(str(exc)) from None

    async def _sync_unlocked(self, job: Job) -> None:
        svc = self.service
        dest = svc.backup.destination(job.destination)
        src = svc.source_path(job.key)
        listing = await asyncio.to_thread(filesystem.scan, src, exclude=svc.excludes, timeout=svc.timeout)
        if not listing.exists or listing.count == 0:
            raise UserError(f"source {src} is missing or empty")
        probe = await asyncio.to_thread(svc.probe, dest)
        if not probe.ok:
            raise UserError(f"{dest.name}: destination {probe.state}: {probe.detail}")
        args = sync_args(svc, dest, job.key, dry_run=job.dry_run)

        def progress(p: TransferProgress) -> None:
            job.progress = p
            job.rates.append(p.rate)
            job.files_done = p.transferred_files
            self._emit(job)

        res = await run_rsync(args, progress, job.cancel_event)
        job.result = res
        if not res.ok:
            job.state, job.message = "failed", res.message
            return
        job.message = ("dry run: " if job.dry_run else "") + res.message
        if not job.dry_run and self.verify_after_sync:
            out = await asyncio.to_thread(verify_session, svc, job.key, dest, checksum=job.checksum)
            job.result = (res, out)
            job.message += f"; verified: {out.message}" if out.ok else f"; VERIFY FAILED: {out.message}"
            if not out.ok:
                job.state = "failed"
                return
        job.state = "done"

    async def _verify(self, job: Job) -> None:
        svc = self.service
        dest = svc.backup.destination(job.destination)

        def on_file(_p: str) -> None:
            job.files_done += 1

        out = await _until_cancelled(job, lambda: verify_session(svc, job.key, dest, checksum=job.checksum,
                                                                 on_file=on_file))
        job.result = out
        job.message = out.message
        job.state = "done" if out.ok else "failed"


async def _until_cancelled(job: Job, fn: Callable[[], Any]) -> Any:
    """Run blocking ``fn`` in a daemon thread; a cancel stops the wait at once (raises Cancelled).

    A verify cannot be stopped half way through a file, so it is left to finish unseen: a daemon
    thread (not the loop's executor, which Python joins at exit) lets the app quit meanwhile. What
    it records if it passes is still true; the job says cancelled.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def body() -> None:
        try:
            value, ok = fn(), True
        except BaseException as exc:
            value, ok = exc, False
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, ok, value)

    threading.Thread(target=body, daemon=True, name=f"djtui-job-{job.id}").start()
    stop = asyncio.ensure_future(job.cancel_event.wait())
    try:
        await asyncio.wait({fut, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        fut.add_done_callback(_retrieve)
    if fut.done():
        return fut.result()
    raise Cancelled("cancelled by the operator")


def get_job_queue(ctx: Any) -> JobQueue:
    """The app's one queue, stored on its context so jobs outlive any screen."""
    queue = getattr(ctx, "_session_jobs", None)
    if queue is None:
        queue = JobQueue(SessionService(ctx.config, ctx.db))
        ctx._session_jobs = queue
    elif queue.service.db is None and getattr(ctx, "db", None) is not None:
        queue.service.db = ctx.db
    return queue
