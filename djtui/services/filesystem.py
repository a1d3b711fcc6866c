"""Filesystem scans that can never freeze djtui: every call on a mount runs under a deadline.

A stale NFS/SMB mount blocks `stat` in the kernel; no Python code can
interrupt that. So the blocking work runs in a daemon thread that reports a
heartbeat after each call, and the caller gives up when no heartbeat came
within the timeout: the scan is then "hung" (shown as ⚠ with the remount
hint) while the app and the CLI carry on. FIFOs, sockets and devices are
listed but never opened.
"""

from __future__ import annotations

import dataclasses
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

from djtui.domain.sessions import MOUNT_HUNG, MOUNT_MISSING, MOUNT_OK, FileEntry, Listing, Scan, excluded

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
    if _find_exe() is None:
        return with_deadline(lambda beat: [Scan.of(_scan(Path(p), pats, beat)) for p in paths], timeout, parent)
    out: list[Scan] = []
    for i in range(0, len(paths), 2000):  # keep argv well under the kernel's limit
        out += with_deadline(lambda beat, part=paths[i:i + 2000]: _find_columns(part, pats, beat), timeout, parent)
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


# Regular files: rel, size, mtime. Anything else: "/" + rel, the starting point, its kind. A starting
# point prints as "/" (empty %P) with kind d when it is a folder, so it also marks where its block begins.
_FIND_FORMAT = ["(", "-type", "f", "-printf", "%P\\0%s\\0%T@\\0", ")",
                "-o", "(", "-type", "d", "-printf", "/%P\\0%H\\0d\\0", ")",
                "-o", "(", "-type", "l", "-printf", "/%P\\0%H\\0l\\0", ")",
                "-o", "-printf", "/%P\\0%H\\0s\\0"]


def _find_columns(paths: list[str], pats: tuple[str, ...], beat: Callable[[], None]) -> list[Scan]:
    """Run `find` over ``paths`` and cut its output into one ``Scan`` per folder while it still runs.

    Parsing as the output arrives (whole records only, by C-level split and slice) lets Python
    work overlap the `find` process instead of following it.
    """
    import subprocess
    import tempfile
    args = [_find_exe() or "find", *paths, *_FIND_FORMAT]
    rels: list[str] = []
    sizes: list[str] = []
    mtimes: list[str] = []
    by_root: dict[str, Scan] = {}
    searched = 0  # rels[:searched] hold no block start we have not seen
    starts: list[int] = []

    def close_blocks(final: bool) -> None:
        """Turn every block whose end is known into a Scan (the last one only at the end)."""
        nonlocal searched
        i = searched - 1
        while True:
            try:
                i = rels.index("/", i + 1)
            except ValueError:
                break
            starts.append(i)
        searched = len(rels)
        ends = [*starts[1:], len(rels)] if final else starts[1:]
        for a, b in zip(starts, ends, strict=False):
            _block(a, b)
        del starts[:len(ends)]

    def _block(a: int, b: int) -> None:
        if mtimes[a] != "d":  # a starting point that is a symlink or a FIFO: not a folder
            return
        r, s, m = rels[a + 1:b], sizes[a + 1:b], mtimes[a + 1:b]
        if "" in r:  # a starting point that is a regular file: it lands inside the previous block
            cut = r.index("")
            r, s, m = r[:cut], s[:cut], m[:cut]
        if pats and _excluded_entries(r, pats):
            r, s, m = _apply_excludes(r, s, m, pats)
        others = m.count("d") + m.count("l") + m.count("s")
        by_root[sizes[a]] = Scan(True, r, s, m, others)

    with tempfile.TemporaryFile() as err:  # a file, not a pipe: many errors can never block find
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env={"LC_ALL": "C"})
        assert proc.stdout is not None
        tail = b""
        loose: list[str] = []  # fields of a record not yet complete
        try:
            while chunk := proc.stdout.read1(1 << 20):
                beat()
                buf = tail + chunk
                cut = buf.rfind(b"\0") + 1
                tail = buf[cut:]
                if not cut:
                    continue
                fields = loose + buf[:cut].decode("utf-8", "surrogateescape").split("\0")
                fields.pop()  # after the last separator
                whole = len(fields) - len(fields) % 3
                rels += fields[0:whole:3]
                sizes += fields[1:whole:3]
                mtimes += fields[2:whole:3]
                loose = fields[whole:]
                close_blocks(final=False)
        finally:
            proc.stdout.close()
            proc.wait()
        close_blocks(final=True)
        if proc.returncode:
            err.seek(0)
            text = err.read().decode("utf-8", "surrogateescape")
            for root, why in _find_errors(text, paths, set(by_root), args[0]).items():
                by_root[root] = dataclasses.replace(by_root.get(root, Scan(False)), error=why)
    missing = Scan(False)
    return [by_root.get(p, missing) for p in paths]


_GONE = ("No such file or directory", "Not a directory")  # a start point that is not there: absent, no error
_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}


def _find_errors(text: str, paths: list[str], present: set[str] | None = None, prog: str = "find"
                 ) -> dict[str, str]:
    """Which starting points `find` could not read completely, from every line it wrote on stderr.

    A line is ``<prog>: '<path>': <why>`` (``prog`` as find was started, so ``/usr/bin/find``), the
    path in the C locale's quoting. It belongs to the start point that holds the path. A start point
    that is not there (``present`` lacks it) is absent, which is no error unless find says why it could
    not look (permissions). A line no start point claims fails every present one: never a silent
    partial listing; only a "No such file" that can be an absent start point's own is let go.
    """
    roots = set(paths)
    out: dict[str, str] = {}
    absent_seen: set[str] = set()
    loose_gone = 0
    unclaimed: list[str] = []
    for ln in text.splitlines():
        if not ln.strip():
            continue
        msg = _strip_program(ln, prog)
        path = _quoted_path(msg)
        owner = _owner(path, roots) if path is not None else None
        if owner is None:
            if msg.endswith(_GONE):
                loose_gone += 1
            else:
                unclaimed.append(msg)
        elif path == owner and (present is None or owner not in present):
            absent_seen.add(owner)
            if not msg.endswith(_GONE):  # there, but find could not look (a folder above it is closed)
                out.setdefault(owner, msg)
        else:
            out.setdefault(owner, msg)
    if present is None:
        present = roots - absent_seen
    if loose_gone > len(roots - present - absent_seen):  # more than the absent start points can have said
        unclaimed.append(f"{loose_gone} files vanished while listing")
    if unclaimed:
        first = unclaimed[0] if len(unclaimed) == 1 else f"{len(unclaimed)} errors while listing, first: {unclaimed[0]}"
        for p in paths:
            if p in present:
                out.setdefault(p, first)
    return out


def _strip_program(line: str, prog: str) -> str:
    for head in (f"{prog}: ", f"{os.path.basename(prog)}: "):
        if line.startswith(head):
            return line[len(head):]
    head, sep, rest = line.partition(": ")  # started under another name: find names itself first
    return rest if sep and "'" not in head else line


def _quoted_path(msg: str) -> str | None:
    """The path of ``'<path>': why`` as GNU find quotes it in the C locale (C escapes, octal bytes)."""
    if not msg.startswith("'"):
        return None
    raw = bytearray()
    i, n = 1, len(msg)
    while i < n:
        c = msg[i]
        if c == "'":
            return os.fsdecode(bytes(raw)) if msg.startswith("': ", i) else None
        if c != "\\" or i + 1 == n:
            raw += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        e = msg[i + 1]
        if e in "01234567":
            j = i + 1
            while j < min(i + 4, n) and msg[j] in "01234567":
                j += 1
            raw.append(int(msg[i + 1:j], 8) & 0xFF)
            i = j
            continue
        raw.append(_ESCAPES.get(e, ord(e)) if e.isascii() else ord("?"))
        i += 2
    return None


def _owner(path: str, roots: set[str]) -> str | None:
    """The deepest start point that is ``path`` or holds it."""
    p = path.rstrip("/") or "/"
    while True:
        if p in roots:
            return p
        parent = os.path.dirname(p)
        if parent == p:
            return None
        p = parent


def _excluded_entries(rels: list[str], pats: tuple[str, ...]) -> set[str]:
    """Entries an exclude pattern matches: a regex filter in C first, then the exact rule on the few it keeps."""
    import fnmatch
    import re
    parts = []
    for pat in pats:
        body = fnmatch.translate(pat.lstrip("/"))
        # a name pattern may match after any "/"; a path pattern after an optional "/" (non-file entries)
        parts.append(f"(?s:.*/)?{body}" if "/" not in pat else f"/?{body}")
    rx = re.compile("|".join(f"(?:{p})" for p in parts))
    return {r for r in filter(rx.match, rels) if r not in ("", "/") and excluded(r.lstrip("/"), pats)}


def _apply_excludes(rels: list[str], sizes: list[str], mtimes: list[str], pats: tuple[str, ...]
                    ) -> tuple[list[str], list[str], list[str]]:
    """rsync's rule: an excluded entry goes, and an excluded folder goes with everything inside it."""
    r2, s2, m2 = [], [], []
    gone: list[str] = []
    for r, s, m in zip(rels, sizes, mtimes, strict=True):
        rel = r[1:] if r.startswith("/") else r
        if gone and rel.startswith(tuple(gone)):
            continue
        if excluded(rel, pats):
            if m == "d" and r.startswith("/"):
                gone.append(rel + "/")
            continue
        r2.append(r)
        s2.append(s)
        m2.append(m)
    return r2, s2, m2


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
