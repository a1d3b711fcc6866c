"""Real hangs for the stale-mount tests, without a FUSE library or daemon.

``hung_mount(dir)`` mounts a FUSE filesystem whose daemon never answers: the test opens
``/dev/fuse`` and passes the descriptor to ``mount(2)``, and never reads it. Every ``stat``,
``opendir`` or ``open`` under the mount then blocks in the kernel, exactly as on an NFS/SMB
share whose server went away. Closing the descriptor aborts the connection (the blocked
calls fail with ENOTCONN) and the mount is lazily unmounted. Needs root (CAP_SYS_ADMIN) and
/dev/fuse; the test is skipped elsewhere.

``blocking_open(file)`` takes a write lease on a file from a helper process that ignores the
lease-break signal: any other process' ``open`` of the file then blocks in the kernel for
``/proc/sys/fs/lease-break-time`` seconds (45 by default). No root needed.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def hung_mount(path: Path) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open("/dev/fuse", os.O_RDWR)
    except OSError as exc:
        pytest.skip(f"no /dev/fuse here: {exc}")
    libc = ctypes.CDLL(None, use_errno=True)
    opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other".encode()
    if libc.mount(b"djtui-r1-hang", str(path).encode(), b"fuse.djtui-r1-hang", 0, opts) != 0:
        err = ctypes.get_errno()
        os.close(fd)
        pytest.skip(f"cannot mount FUSE here: {os.strerror(err)}")
    try:
        yield path
    finally:
        os.close(fd)  # aborts the connection: every blocked call returns ENOTCONN
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


_HOLDER = """
import fcntl, os, signal, sys, time
signal.signal(signal.SIGIO, signal.SIG_IGN)
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print("held", flush=True)
time.sleep(120)
"""


@contextmanager
def blocking_open(path: Path) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "held":
            pytest.skip("file leases are not available here")
        yield proc
    finally:
        proc.kill()  # our own helper, by handle: the lease goes with it and the blocked open proceeds
        proc.wait(10)
