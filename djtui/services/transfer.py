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
import itertools
import os
import shlex
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

from djtui.config import Destination
from djtui.domain.rsync import TransferProgress, exit_meaning, parse_itemize, parse_progress, split_records
from djtui.domain.sessions import Comparison, Listing, SessionKey, VerifyRecord, compare_sizes
from djtui.errors import UserError
from djtui.services import commandlog, filesystem
from djtui.services.sessions import SessionService

CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------
# rsync


def rsync_args(flags: str, src: Path, dst: Path, *, exclude: Iterable[str] = (), dry_run: bool = False,
               rsync: str = "rsync") -> list[str]:
    """The argument list: configured flags, then ours (progress, itemize, parents), then the two trees."""
    args = [rsync, *shlex.split(flags), "-i", "--info=progress2", "--no-h", "--outbuf=L", "--mkpath"]
    args += [f"--exclude={p}" for p in exclude]
    if dry_run:
        args.append("--dry-run")
    args += [f"{src}/", f"{dst}/"]
    return args


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
    """xxh3-128 digests keyed by (path, size, mtime_ns) in ``state_dir/hashcache.sqlite``.

    It is only a cache: losing it costs a re-hash, so writes skip fsync.
    """

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "hashcache.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE IF NOT EXISTS h (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
                         "digest TEXT)")

    def lookup(self, items: Sequence[tuple[str, int, int]]) -> dict[str, str]:
        """Cached digests still valid for (size, mtime_ns): one range query per folder (primary-key scan)."""
        out: dict[str, str] = {}
        want = {p: (s, m) for p, s, m in items}
        folders = {p.rsplit("/", 1)[0] for p in want}
        with self._lock:
            for folder in folders:
                # every path under folder/ sorts between "folder/" and "folder0" ("0" follows "/")
                for p, s, m, d in self._db.execute(
                        "SELECT path, size, mtime_ns, digest FROM h WHERE path > ? AND path < ?",
                        (folder + "/", folder + "0")):
                    if want.get(p) == (s, m):
                        out[p] = d
        return out

    def store(self, items: Sequence[tuple[str, int, int, str]]) -> None:
        if not items:
            return
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO h VALUES (?, ?, ?, ?)", items)
            self._db.commit()

    def close(self) -> None:
        self._db.close()


def hash_file(path: str, beat: Callable[[], None] | None = None) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            if beat:
                beat()
    return h.hexdigest()


def _hash_batch(paths: list[str]) -> list[str]:
    """Runs in a worker process: many files per task, so the per-task cost is paid once per batch."""
    return [hash_file(p) for p in paths]


def hash_files(items: Sequence[tuple[str, int, int]], cache: HashCache, workers: int, timeout: float,
               on_file: Callable[[str], None] | None = None) -> tuple[dict[str, str], int]:
    """Digests of regular files (from a scan, never FIFOs); cached ones are not re-read.

    Many small files: worker processes (hashing is CPU work and the GIL would serialize it);
    few files: threads. Either way the wait has a deadline renewed by each finished file or batch.
    """
    known = cache.lookup(items)
    todo = [it for it in items if it[0] not in known]

    def threaded(beat: filesystem.Heartbeat) -> list[tuple[str, int, int, str]]:
        def one(item: tuple[str, int, int]) -> tuple[str, int, int, str]:
            d = hash_file(item[0], beat)
            beat()
            if on_file:
                on_file(item[0])
            return (*item, d)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, todo))

    def work(beat: filesystem.Heartbeat) -> list[tuple[str, int, int, str]]:
        if len(todo) < 2000 or workers < 2:
            return threaded(beat)
        try:
            return processes(beat)
        except BrokenProcessPool:  # e.g. a __main__ the forkserver cannot re-import: threads still work
            return threaded(beat)

    def processes(beat: filesystem.Heartbeat) -> list[tuple[str, int, int, str]]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        size = max(200, min(2000, len(todo) // (workers * 4) or 1))
        batches = [todo[i:i + size] for i in range(0, len(todo), size)]
        out: list[tuple[str, int, int, str]] = []
        ctx = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=min(workers, os.cpu_count() or 1), mp_context=ctx) as pool:
            for batch, digests in zip(batches, pool.map(_hash_batch, [[p for p, _s, _m in b] for b in batches]),
                                      strict=True):
                beat()
                out += [(*it, d) for it, d in zip(batch, digests, strict=True)]
                if on_file:
                    for it in batch:
                        on_file(it[0])
        return out

    fresh = filesystem.with_deadline(work, timeout, "hashing") if todo else []
    cache.store(fresh)
    known.update({p: d for p, _s, _m, d in fresh})
    return known, len(fresh)


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
    """Blocking: verify many sessions in one pass (one scan per side, one hashing pool, one cache)."""
    method = "checksum" if checksum else "size"
    empty = Comparison()
    probe = service.probe(dest)
    if not probe.ok:
        for k in keys:
            service.records.forget(k, dest.name)
        return [VerifyOutcome(k, dest.name, method, empty, 0, 0, error=f"{dest.name}: {probe.state}: {probe.detail}")
                for k in keys]
    started = time.time()
    src_paths = [service.source_path(k) for k in keys]
    dst_paths = [service.dest_path(dest, k) for k in keys]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            f_src = pool.submit(filesystem.scan_many, src_paths, exclude=service.excludes, timeout=service.timeout)
            f_dst = pool.submit(filesystem.scan_many, dst_paths, exclude=service.excludes, timeout=service.timeout)
            srcs, dsts = f_src.result(), f_dst.result()
    except filesystem.Hung as exc:
        return [VerifyOutcome(k, dest.name, method, empty, 0, 0, error=str(exc)) for k in keys]
    cmps = [compare_sizes(s, d) if s.exists and d.exists else None for s, d in zip(srcs, dsts, strict=True)]
    digests: dict[str, str] = {}
    hashed = 0
    if checksum:
        items: list[tuple[str, int, int]] = []
        for sp, dp, s, d, c in zip(src_paths, dst_paths, srcs, dsts, cmps, strict=True):
            if c is None or not c.ok:
                continue
            items += [(f"{sp}/{f.rel}", f.size, f.mtime_ns) for f in s.files]
            names = {f.rel for f in s.files}
            items += [(f"{dp}/{f.rel}", f.size, f.mtime_ns) for f in d.files if f.rel in names]
        if items:
            cache = HashCache(service.config.state_dir)
            try:
                digests, hashed = hash_files(items, cache, service.settings.checksum_workers, service.timeout,
                                             on_file)
            except filesystem.Hung as exc:
                return [VerifyOutcome(k, dest.name, method, empty, 0, 0, error=str(exc)) for k in keys]
            finally:
                cache.close()
    out = []
    for k, sp, dp, s, c in zip(keys, src_paths, dst_paths, srcs, cmps, strict=True):
        if not s.exists:
            out.append(VerifyOutcome(k, dest.name, method, empty, 0, 0, error=f"source {sp} does not exist"))
            continue
        if c is None:
            service.records.forget(k, dest.name)
            out.append(VerifyOutcome(k, dest.name, method, compare_sizes(s, Listing(True)), s.count, s.bytes,
                                     error=f"no backup at {dp}"))
            continue
        hashes: dict[str, str | None] = {}
        if checksum and c.ok:
            hashes = {f.rel: digests.get(f"{sp}/{f.rel}") for f in s.files}
            bad = tuple(f.rel for f in s.files if hashes[f.rel] is None
                        or digests.get(f"{dp}/{f.rel}") != hashes[f.rel])
            c = Comparison(c.missing, c.extra, c.size_mismatch, bad, c.compared, len(hashes))
        record_path = None
        if c.ok and s.count:
            rec = VerifyRecord(k.participant_id, k.date_str, dest.name, started, method,
                               {f.rel: (f.size, f.mtime_ns, hashes.get(f.rel)) for f in s.files})
            record_path = str(service.records.save(rec))
        else:
            service.records.forget(k, dest.name)
        out.append(VerifyOutcome(k, dest.name, method, c, s.count, s.bytes, 0, record_path))
    if out:
        first = out[0]
        out[0] = VerifyOutcome(first.key, first.destination, first.method, first.comparison, first.source_files,
                               first.source_bytes, hashed, first.record_path, first.error)
    return out


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

    @property
    def label(self) -> str:
        extra = " (dry run)" if self.dry_run else (" (checksum)" if self.checksum else "")
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
        svc = self.service
        dest = svc.backup.destination(job.destination)
        src = svc.source_path(job.key)
        listing = await asyncio.to_thread(filesystem.scan, src, exclude=svc.excludes, timeout=svc.timeout)
        if not listing.exists or listing.count == 0:
            raise UserError(f"source {src} is missing or empty")
        probe = await asyncio.to_thread(svc.probe, dest)
        if not probe.ok:
            raise UserError(f"{dest.name}: destination {probe.state}: {probe.detail}")
        args = rsync_args(svc.backup.rsync.flags, src, svc.dest_path(dest, job.key), exclude=svc.excludes,
                          dry_run=job.dry_run)

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

        out = await asyncio.to_thread(verify_session, svc, job.key, dest, checksum=job.checksum, on_file=on_file)
        job.result = out
        job.message = out.message
        job.state = "done" if out.ok else "failed"


def get_job_queue(ctx: Any) -> JobQueue:
    """The app's one queue, stored on its context so jobs outlive any screen."""
    queue = getattr(ctx, "_session_jobs", None)
    if queue is None:
        queue = JobQueue(SessionService(ctx.config, ctx.db))
        ctx._session_jobs = queue
    elif queue.service.db is None and getattr(ctx, "db", None) is not None:
        queue.service.db = ctx.db
    return queue
