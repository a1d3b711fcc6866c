"""rsync as an argument list (never a shell), with ``LC_ALL=C`` and machine-readable progress.

Any non-zero exit is a failure, always (the shell tool's pipeline reported failed batches as success).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from djtui.config import Destination, RsyncSettings
from djtui.domain.rsync import TransferProgress, exit_meaning, parse_itemize, parse_progress, split_records
from djtui.domain.sessions import (
    SessionKey,
)
from djtui.domain.units import plural
from djtui.services import commandlog
from djtui.services.sessions import SessionService


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
            return f"{plural(len(self.changed), 'file')} transferred in {self.elapsed:.1f} s"
        err = self.stderr.strip().splitlines()[-1:] or [""]
        return f"rsync failed: {exit_meaning(self.returncode)} (exit {self.returncode}) {err[0]}".strip()


class Cancelled(Exception):
    pass


def retrieve_result(fut: asyncio.Future) -> None:
    """Mark a finished future's exception as seen (no "never retrieved" warning at exit)."""
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
        readers.add_done_callback(retrieve_result)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = commandlog.mask(b"".join(err_chunks).decode("utf-8", "replace"))
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the operator")
    return RsyncResult(code, tuple(changed), stderr, time.monotonic() - start, last)
