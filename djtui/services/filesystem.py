"""Filesystem scans that can never freeze djtui: every call on a mount runs under a deadline.

A stale NFS/SMB mount blocks `stat` in the kernel; no Python code can
interrupt that. So the blocking work runs in a daemon thread that reports a
heartbeat after each call, and the caller gives up when no heartbeat came
within the timeout: the scan is then "hung" (shown as ⚠ with the remount
hint) while the app and the CLI carry on. FIFOs, sockets and devices are
listed but never opened.
"""

from __future__ import annotations

import os
import stat as statmod
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from djtui.domain.sessions import (
    MOUNT_HUNG,
    MOUNT_MISSING,
    MOUNT_OK,
    Comparison,
    FileEntry,
    Listing,
    Scan,
    excluded,
)
from djtui.services import findscan

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
    """Many session folders at once (see ``scan_columns``), as listings."""
    return [s.listing() for s in scan_columns(roots, exclude=exclude, timeout=timeout)]


def scan_columns(roots: Iterable[str | os.PathLike], *, exclude: Iterable[str] = (),
                 timeout: float = 5.0) -> list[Scan]:
    """Many session folders at once: one `find` process (C speed), read under a per-chunk deadline.

    The result stays as text columns: verifying 100,000 files compares them without building an
    object per file. Falls back to the Python scanner when `find` is not GNU find (no -printf).
    """
    pats = tuple(exclude)
    paths = [os.path.abspath(r) for r in roots]  # absolute: a root can never read as a find operator
    if not paths:
        return []
    parent = os.path.dirname(paths[0])
    if findscan.find_exe() is None:
        return with_deadline(lambda beat: [Scan.of(_scan(Path(p), pats, beat)) for p in paths], timeout, parent)
    step = len(paths) if findscan.takes_files0() else 2000  # else keep argv well under the kernel's limit
    out: list[Scan] = []
    for i in range(0, len(paths), step):
        out += with_deadline(lambda beat, part=paths[i:i + step]: _find_columns(part, pats, beat), timeout, parent)
    return out


def _find_columns(paths: list[str], pats: tuple[str, ...], beat: Callable[[], None]) -> list[Scan]:
    run = findscan.FindRun(paths, pats)
    try:
        while run.feed():
            beat()
        run.finish()
        return run.scans()
    finally:
        run.close()


def scan_compare(src_roots: Sequence[str | os.PathLike], dst_roots: Sequence[str | os.PathLike], *,
                 exclude: Iterable[str] = (), timeout: float = 5.0
                 ) -> tuple[list[Scan], list[Scan], list[Comparison | None]]:
    """Source and destination of many sessions at once, compared by size (None where either side is
    absent or could not be listed completely).

    Both `find` runs start together and one thread reads both, comparing each session as soon as
    both sides have listed it: the comparison runs while find still walks. Without GNU find (or
    when its argv would be too long for one run) the sides are scanned, then compared.
    """
    pats = tuple(exclude)
    srcs = [os.path.abspath(r) for r in src_roots]
    dsts = [os.path.abspath(r) for r in dst_roots]
    if not srcs:
        return [], [], []
    if findscan.find_exe() is None or (not findscan.takes_files0() and len(srcs) > 2000):
        a = scan_columns(srcs, exclude=pats, timeout=timeout)
        b = scan_columns(dsts, exclude=pats, timeout=timeout)
        return a, b, [_compared(s, d) for s, d in zip(a, b, strict=True)]
    return with_deadline(lambda beat: _paired(srcs, dsts, pats, beat), timeout, os.path.dirname(srcs[0]))


def _compared(s: Scan, d: Scan) -> Comparison | None:
    return compare_columns(s, d) if s.exists and d.exists and not (s.error or d.error) else None


def _paired(srcs: list[str], dsts: list[str], pats: tuple[str, ...], beat: Callable[[], None]
            ) -> tuple[list[Scan], list[Scan], list[Comparison | None]]:
    import selectors
    sides = (srcs, dsts)
    where: tuple[dict[str, list[int]], dict[str, list[int]]] = ({}, {})
    for side, paths in enumerate(sides):
        for i, p in enumerate(paths):
            where[side].setdefault(p, []).append(i)
    cmps: list[Comparison | None] = [None] * len(srcs)
    runs = [findscan.FindRun(srcs, pats)]
    try:
        runs.append(findscan.FindRun(dsts, pats))
        sel = selectors.DefaultSelector()
        for side, run in enumerate(runs):
            sel.register(run.fd, selectors.EVENT_READ, side)
        live = len(runs)
        while live:
            small = True
            for key, _ in sel.select():
                side, run = key.data, runs[key.data]
                got = run.feed()
                small = small and 0 < got < findscan.READ // 8
                if not got:
                    sel.unregister(run.fd)
                    live -= 1
                beat()
                other, mates = runs[1 - side], sides[1 - side]
                for root in run.take():
                    for i in where[side][root]:
                        o = other.by_root.get(mates[i])
                        if o is not None and cmps[i] is None:
                            cmps[i] = compare_columns(*((run.by_root[root], o) if side == 0 else
                                                         (o, run.by_root[root])))
            if small:  # let find fill the pipe a while: fewer, larger reads
                time.sleep(0.004)
        sel.close()
        for run in runs:
            run.finish()
        a, b = runs[0].scans(), runs[1].scans()
    finally:
        for run in runs:
            run.close()
    for i, (s, d) in enumerate(zip(a, b, strict=True)):
        if not (s.exists and d.exists) or s.error or d.error:
            cmps[i] = None
        elif cmps[i] is None:
            cmps[i] = compare_columns(s, d)
    return a, b, cmps


def compare_columns(s: Scan, d: Scan) -> Comparison:
    """``compare_scans`` from the columns alone: two sides that list a folder in the same order compare
    as lists, others as dicts, and a folder that differs is diffed without building its listings."""
    if s.rels == d.rels and s.sizes == d.sizes:
        return Comparison(compared=s.count)
    if s.size_map() == d.size_map():
        return Comparison(compared=s.count)
    srels, ssizes, _ = s.file_columns()
    drels, dsizes, _ = d.file_columns()
    other = dict(zip(drels, dsizes, strict=True))
    missing, mismatch = [], []
    for rel, size in sorted(zip(srels, ssizes, strict=True)):
        there = other.get(rel)
        if there is None:
            missing.append(rel)
        elif int(there) != int(size):
            mismatch.append(rel)
    have = set(srels)
    extra = sorted(r for r in other if r not in have)
    return Comparison(tuple(missing), tuple(extra), tuple(mismatch), (), compared=len(srels))


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
