"""Content hashes of files, in this process or in small worker processes.

A checksum verification of 100,000 small files is dominated by per-file cost (open, read,
close, Python bytecode), not by hashing: the GIL makes threads little help, and a
multiprocessing pool started from djtui pays for importing djtui (and ``__main__``) in every
child. So the workers are plain ``python -m djtui.services.hashing`` processes that import only
this module and xxhash, read their list of files on stdin and answer one line per file: the hex
digest, or ``!errno message`` when the file could not be read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import xxhash

CHUNK = 1 << 20


def hash_file(path: str | bytes, beat: Callable[[], None] | None = None, size: int | None = None, *,
              dir_fd: int | None = None) -> str:
    """The file's xxh3-128. ``size`` (from the scan) lets a small file be read in one call.

    An open or read that blocks (stale mount, a FIFO put where the scan saw a file) is the caller's
    deadline to catch: ``beat`` marks progress, and workers report one line per file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if size is not None and size < CHUNK:
            data = os.read(fd, size + 1)
            if len(data) == size:  # all of it, as the scan saw it: no second read to meet the end
                return xxhash.xxh3_128_hexdigest(data)
            h = xxhash.xxh3_128(data)
        else:
            h = xxhash.xxh3_128()
        while chunk := os.read(fd, CHUNK):
            h.update(chunk)
            if beat:
                beat()
        return h.hexdigest()
    finally:
        os.close(fd)


def worker_main() -> int:
    """The worker loop: all requests first (stdin never waits on a mount), then one line per file.

    Requests are NUL-separated: a folder, its number of files, then each file's relative path and
    size; folders follow one another.
    """
    fields = sys.stdin.buffer.read().split(b"\0")
    out = sys.stdout.buffer
    lines: list[bytes] = []
    pos, end, done = 0, len(fields) - 1, 0
    while pos < end:
        root, count = fields[pos], int(fields[pos + 1])
        pos += 2
        try:  # names relative to the open folder: the kernel walks the long path once per folder
            dfd: int | None = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            dfd = None  # each file then fails (or not) on its own, with its own message
        try:
            for rel, size in zip(fields[pos:pos + 2 * count:2], fields[pos + 1:pos + 2 * count:2], strict=True):
                try:
                    if dfd is None:
                        digest = hash_file(root + b"/" + rel, None, int(size))
                    else:
                        digest = hash_file(rel, None, int(size), dir_fd=dfd)
                    lines.append(digest.encode())
                except OSError as exc:
                    msg = (exc.strerror or str(exc)).replace("\n", " ")
                    lines.append(f"!{exc.errno or 0} {msg}".encode())
                done += 1
                if done % 32 == 0:  # often enough to be the caller's heartbeat, rarely enough to be cheap
                    out.write(b"\n".join(lines) + b"\n")
                    out.flush()
                    lines.clear()
        finally:
            if dfd is not None:
                os.close(dfd)
        pos += 2 * count
    if lines:
        out.write(b"\n".join(lines) + b"\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
