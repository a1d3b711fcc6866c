"""The job queue the screen and the CLI share: one sync or verify at a time, listeners hear every change.

The app owns its queue (``AppContext.job_queue()``); this module sets nothing on foreign objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from djtui.domain.rsync import TransferProgress
from djtui.domain.sessions import (
    SessionKey,
)
from djtui.domain.units import plural
from djtui.errors import UserError
from djtui.services import commandlog, filesystem
from djtui.services.locks import LockBusy, exclusive
from djtui.services.sessions import SessionService
from djtui.services.transfers.rsync import Cancelled, retrieve_result, run_rsync, sync_args
from djtui.services.transfers.verify import verify_session


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
        job.message = (f"dry run: would transfer {plural(len(res.changed), 'file')}" if job.dry_run
                       else res.message)
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
        fut.add_done_callback(retrieve_result)
    if fut.done():
        return fut.result()
    raise Cancelled("cancelled by the operator")
