"""The fast scanner: GNU `find` over many session folders at once, cut into one ``Scan`` per folder.

The output is parsed as it arrives (whole records only, by C-level split and slice), so Python
work overlaps the `find` process instead of following it; a run is fed one read at a time, so
one thread can drive the source's and the destination's runs together and pair sessions as soon
as both sides have listed them. Start points go in through ``-files0-from`` (find 4.9+): one
process per tree whatever the number of sessions. Error lines are read back to the start point
they belong to (``find_errors``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import subprocess
import tempfile

from djtui.domain.sessions import Scan, excluded


@functools.cache
def find_exe() -> str | None:
    """GNU find (it has -printf), by absolute path; None when there is none."""
    import shutil
    exe = shutil.which("find")
    if exe is None:
        return None
    try:
        probe = subprocess.run([exe, "/", "-maxdepth", "0", "-printf", "%y"], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return exe if probe.stdout == b"d" else None


@functools.cache
def takes_files0() -> bool:
    """Does find read its start points from a file (``-files0-from``, GNU find 4.9)?"""
    exe = find_exe()
    if exe is None:
        return False
    try:
        probe = subprocess.run([exe, "-files0-from", "-", "-maxdepth", "0", "-printf", "%y"], input=b"/\0",
                               capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0 and probe.stdout == b"d"


# Regular files: rel, size, mtime. Anything else: "/" + rel, the starting point, its kind. A starting
# point prints as "/" (empty %P) with kind d when it is a folder, so it also marks where its block begins.
FIND_FORMAT = ["(", "-type", "f", "-printf", "%P\\0%s\\0%T@\\0", ")",
               "-o", "(", "-type", "d", "-printf", "/%P\\0%H\\0d\\0", ")",
               "-o", "(", "-type", "l", "-printf", "/%P\\0%H\\0l\\0", ")",
               "-o", "-printf", "/%P\\0%H\\0s\\0"]
READ = 1 << 20  # bytes per read, and the pipe's size where the kernel allows it: fewer, larger batches


class FindRun:
    """One `find` process over ``paths``, started at once; ``feed()`` reads and parses what it wrote so far.

    ``by_root`` holds the Scan of every start point whose block is closed (the next one began);
    ``take()`` gives the start points closed since the last call. ``finish()`` closes the last block
    and pins find's error lines on their folders. A start point with no block is absent.
    """

    def __init__(self, paths: list[str], pats: tuple[str, ...]):
        self.paths, self.pats = paths, pats
        self.rels: list[str] = []
        self.sizes: list[str] = []
        self.mtimes: list[str] = []
        self.by_root: dict[str, Scan] = {}
        self._closed: list[str] = []
        self._searched = 0  # rels[:searched] hold no block start we have not seen
        self._starts: list[int] = []
        self._tail = b""
        self._loose: list[str] = []  # fields of a record not yet complete
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close()): a file, never a full pipe
        self._list = None
        exe = find_exe() or "find"
        if takes_files0():
            self._list = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            self._list.write(b"\0".join(os.fsencode(p) for p in paths))
            self._list.seek(0)
            args = [exe, "-files0-from", "-", *FIND_FORMAT]
        else:
            args = [exe, *paths, *FIND_FORMAT]
        self.prog = args[0]
        self.proc = subprocess.Popen(args, stdin=self._list or subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._err, env={"LC_ALL": "C"})
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        with contextlib.suppress(OSError, AttributeError):
            import fcntl
            fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, READ)

    def feed(self) -> int:
        """One read of find's output, parsed; how many bytes it read (0: the output has ended)."""
        chunk = os.read(self.fd, READ)
        if not chunk:
            return 0
        buf = self._tail + chunk
        cut = buf.rfind(b"\0") + 1
        self._tail = buf[cut:]
        if not cut:
            return len(chunk)
        fields = self._loose + buf[:cut].decode("utf-8", "surrogateescape").split("\0")
        fields.pop()  # after the last separator
        whole = len(fields) - len(fields) % 3
        self.rels += fields[0:whole:3]
        self.sizes += fields[1:whole:3]
        self.mtimes += fields[2:whole:3]
        self._loose = fields[whole:]
        self._close_blocks(final=False)
        return len(chunk)

    def take(self) -> list[str]:
        out, self._closed = self._closed, []
        return out

    def _close_blocks(self, final: bool) -> None:
        """Turn every block whose end is known into a Scan (the last one only at the end)."""
        rels, starts = self.rels, self._starts
        i = self._searched - 1
        while True:
            try:
                i = rels.index("/", i + 1)
            except ValueError:
                break
            starts.append(i)
        self._searched = len(rels)
        ends = [*starts[1:], len(rels)] if final else starts[1:]
        for a, b in zip(starts, ends, strict=False):
            self._block(a, b)
        del starts[:len(ends)]
        if starts and starts[0] > 0:  # what came before the open block is parsed: let it go
            s0 = starts[0]
            del self.rels[:s0], self.sizes[:s0], self.mtimes[:s0]
            self._searched -= s0
            starts[0] = 0

    def _block(self, a: int, b: int) -> None:
        if self.mtimes[a] != "d":  # a starting point that is a symlink or a FIFO: not a folder
            return
        r, s, m = self.rels[a + 1:b], self.sizes[a + 1:b], self.mtimes[a + 1:b]
        if "" in r:  # a starting point that is a regular file: it lands inside the previous block
            cut = r.index("")
            r, s, m = r[:cut], s[:cut], m[:cut]
        if self.pats and _excluded_entries(r, self.pats):
            r, s, m = _apply_excludes(r, s, m, self.pats)
        others = m.count("d") + m.count("l") + m.count("s")
        if others:  # a subfolder's size column held its start point: "" on both sides, so they compare equal
            s = ["" if rel[:1] == "/" else size for rel, size in zip(r, s, strict=True)]
        root = self.sizes[a]
        self.by_root[root] = Scan(True, r, s, m, others)
        self._closed.append(root)

    def finish(self) -> None:
        """After the output ended: the last block, then find's errors pinned on their folders."""
        self.proc.wait()
        self._close_blocks(final=True)
        if self.proc.returncode:
            self._err.seek(0)
            text = self._err.read().decode("utf-8", "surrogateescape")
            for root, why in find_errors(text, self.paths, set(self.by_root), self.prog).items():
                self.by_root[root] = dataclasses.replace(self.by_root.get(root, Scan(False)), error=why)

    def scans(self) -> list[Scan]:
        missing = Scan(False)
        return [self.by_root.get(p, missing) for p in self.paths]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.proc.wait()
        self._err.close()
        if self._list is not None:
            self._list.close()


_GONE = ("No such file or directory", "Not a directory")  # a start point that is not there: absent, no error
_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}


def find_errors(text: str, paths: list[str], present: set[str] | None = None, prog: str = "find"
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
    end = msg.find("': ")
    if end > 0 and "\\" not in msg[:end]:  # nothing escaped: the common case, without a loop per character
        return msg[1:end]
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


