"""Filesystem scans that can never freeze djtui: every call on a mount runs under a deadline.

A stale NFS/SMB mount blocks `stat` in the kernel; no Python code can
interrupt that. So the blocking work runs in a daemon thread that reports a
heartbeat after each call, and the caller gives up when no heartbeat came
within the timeout: the scan is then "hung" (shown as ⚠ with the remount
hint) while the app and the CLI carry on. FIFOs, sockets and devices are
listed but never opened.
"""

from __future__ import annotations

import functools
import os
import stat as statmod
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from djtui.domain.sessions import MOUNT_HUNG, MOUNT_MISSING, MOUNT_OK, FileEntry, Listing, excluded

T = TypeVar("T")


class Hung(Exception):
    """A filesystem call did not answer within its timeout."""

    def __init__(self, path: str | os.PathLike, timeout: float):
        self.path = str(path)
        self.timeout = timeout
        super().__init__(f"{path} did not answer within {timeout:g} s (stale mount?); "
                         f"remount it: sudo umount -l <mount> && sudo mount <mount>")


class Heartbeat:
    def __init__(self) -> None:
        self.last = time.monotonic()

    def __call__(self) -> None:
        self.last = time.monotonic()


def with_deadline(fn: Callable[[Heartbeat], T], timeout: float, path: str | os.PathLike = "?") -> T:
    """Run ``fn(beat)`` in a daemon thread; raise Hung if ``beat()`` is not called for ``timeout`` s."""
    beat = Heartbeat()
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn(beat)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, daemon=True, name=f"djtui-fs:{path}").start()
    while not done.wait(min(timeout, 0.05)):
        if time.monotonic() - beat.last > timeout:
            raise Hung(path, timeout)
    if "error" in box:
        raise box["error"]
    return box["value"]


def _scan(root: Path, patterns: tuple[str, ...], beat: Callable[[], None]) -> Listing:
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return Listing(exists=False)
    beat()
    if not statmod.S_ISDIR(st.st_mode):
        return Listing(exists=False)
    files: list[FileEntry] = []
    special: list[str] = []
    links: list[str] = []
    stack = [("", str(root))]
    while stack:
        rel_dir, path = stack.pop()
        with os.scandir(path) as it:
            for e in it:
                rel = f"{rel_dir}{e.name}"
                if patterns and excluded(rel, patterns):
                    continue
                if e.is_symlink():
                    links.append(rel)
                    continue
                s = e.stat(follow_symlinks=False)
                beat()
                if statmod.S_ISDIR(s.st_mode):
                    stack.append((rel + "/", e.path))
                elif statmod.S_ISREG(s.st_mode):
                    files.append(FileEntry(rel, s.st_size, s.st_mtime_ns))
                else:
                    special.append(rel)
        beat()
    files.sort(key=lambda f: f.rel)
    return Listing(True, tuple(files), tuple(sorted(special)), tuple(sorted(links)))


def scan(root: str | os.PathLike, *, exclude: Iterable[str] = (), timeout: float = 5.0) -> Listing:
    """Every regular file under ``root`` with size and mtime; Hung if a call stalls for ``timeout`` s."""
    pats = tuple(exclude)
    return with_deadline(lambda beat: _scan(Path(root), pats, beat), timeout, root)


def scan_many(roots: Iterable[str | os.PathLike], *, exclude: Iterable[str] = (),
              timeout: float = 5.0) -> list[Listing]:
    """Many session folders at once: one `find` process (C speed), read under a per-chunk deadline.

    Falls back to the Python scanner when `find` is not GNU find (no -printf).
    """
    pats = tuple(exclude)
    paths = [Path(r) for r in roots]
    if not paths:
        return []
    if _find_exe() is None:
        return with_deadline(lambda beat: [_scan(p, pats, beat) for p in paths], timeout, paths[0].parent)
    out: list[Listing] = []
    for i in range(0, len(paths), 2000):  # keep argv well under the kernel's limit
        out += with_deadline(lambda beat, part=paths[i:i + 2000]: _find_scan(part, pats, beat), timeout,
                             paths[0].parent)
    return out


@functools.cache
def _find_exe() -> str | None:
    import shutil
    import subprocess
    exe = shutil.which("find")
    if exe is None:
        return None
    try:
        probe = subprocess.run([exe, "/", "-maxdepth", "0", "-printf", "%y"], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return exe if probe.stdout == b"d" else None



def _find_scan(paths: list[Path], pats: tuple[str, ...], beat: Callable[[], None]) -> list[Listing]:
    import subprocess
    args = [_find_exe() or "find", *[str(p) for p in paths], "-printf", "%H\\0%P\\0%y\\0%s\\0%T@\\0"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={"LC_ALL": "C"})
    assert proc.stdout is not None
    chunks = []
    try:
        while chunk := proc.stdout.read1(1 << 20):
            chunks.append(chunk)
            beat()
    finally:
        proc.stdout.close()
        proc.wait()
    fields = b"".join(chunks).split(b"\0")
    by_root: dict[bytes, tuple[list[FileEntry], list[str], list[str]]] = {}
    exists: set[bytes] = set()
    it = iter(fields)
    decode = os.fsdecode
    for root, rel_b, kind, size, mtime in zip(it, it, it, it, it, strict=False):
        if not rel_b:
            if kind == b"d":
                exists.add(root)
            continue
        entry = by_root.get(root)
        if entry is None:
            entry = by_root[root] = ([], [], [])
        rel = decode(rel_b)
        if pats and excluded(rel, pats):
            continue
        if kind == b"f":
            sec, _, frac = mtime.partition(b".")
            entry[0].append(FileEntry(rel, int(size), int(sec + (frac + b"000000000")[:9])))
        elif kind == b"l":
            entry[2].append(rel)
        elif kind != b"d":
            entry[1].append(rel)
    out = []
    for p in paths:
        key = os.fsencode(str(p))
        if key not in exists:
            out.append(Listing(exists=False))
            continue
        files, special, links = by_root.get(key, ([], [], []))
        files.sort(key=lambda f: f.rel)
        out.append(Listing(True, tuple(files), tuple(sorted(special)), tuple(sorted(links))))
    return out


@dataclass(frozen=True)
class MountProbe:
    path: str
    state: str  # ok | missing | hung
    elapsed: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == MOUNT_OK


def probe_mount(path: str | os.PathLike, timeout: float = 5.0, *, require_mountpoint: bool = False) -> MountProbe:
    """Does ``path`` answer (stat + list) within ``timeout``? ``require_mountpoint``: is it mounted?"""
    start = time.monotonic()

    def check(beat: Heartbeat) -> tuple[str, str]:
        p = Path(path)
        if not p.exists():
            return MOUNT_MISSING, f"{p} does not exist"
        beat()
        if not p.is_dir():
            return MOUNT_MISSING, f"{p} is not a directory"
        with os.scandir(p) as it:
            next(it, None)
        beat()
        if require_mountpoint and not os.path.ismount(p):
            return MOUNT_MISSING, f"{p} is not a mount point (is the share mounted?)"
        return MOUNT_OK, ""

    try:
        state, detail = with_deadline(check, timeout, path)
    except Hung as exc:
        state, detail = MOUNT_HUNG, str(exc)
    except OSError as exc:
        state, detail = MOUNT_MISSING, f"{path}: {exc.strerror or exc}"
    return MountProbe(str(path), state, time.monotonic() - start, detail)


@dataclass(frozen=True)
class DiskUsage:
    total: int
    used: int
    free: int


def disk_usage(path: str | os.PathLike, timeout: float = 5.0) -> DiskUsage:
    u = with_deadline(lambda beat: psutil.disk_usage(str(path)), timeout, path)
    return DiskUsage(u.total, u.used, u.free)


def inside(base: str | os.PathLike, target: str | os.PathLike) -> bool:
    """Does ``target`` resolve (symlinks followed) to a path strictly inside ``base``?"""
    b = os.path.realpath(base)
    t = os.path.realpath(target)
    return t != b and os.path.commonpath([b, t]) == b


def has_symlink_component(base: str | os.PathLike, target: str | os.PathLike) -> str | None:
    """The first symlinked path component between ``base`` and ``target``, if any."""
    b = Path(base)
    rel = Path(os.path.normpath(target)).relative_to(os.path.normpath(b))
    cur = b
    for part in rel.parts:
        if part == "..":
            return str(cur / part)
        cur = cur / part
        if cur.is_symlink():
            return str(cur)
    return None
