"""Walking a local store directory fast: every file under a root, and 0.14's compact listing.

Never follows a symlink. ``cancelled`` is asked between directories; a yes raises
:class:`~djtui.services.stores.ScanCancelled`. Used by :class:`~djtui.services.stores.file.FileStore`
and by the scans of managed directories.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from djtui.domain import stores as ds


class ScanCancelled(Exception):
    """A scan stopped because its caller asked (a key, or the screen was left): nothing is half-done."""


def never() -> bool:
    return False


def list_files(root: Path, prefix: str = "", exclude: str | None = None,
               cancelled: Callable[[], bool] = never) -> Iterator[ds.StoredObject]:
    """Every regular file under ``root``, named ``<prefix>/<relative path>``, never following a symlink.

    ``exclude`` is a directory (absolute, resolved) not to descend into: the quarantine, when it
    lives inside a scanned tree, must not see its own files as untracked. ``cancelled`` is
    asked every 256 directories; when it says yes the walk raises :class:`ScanCancelled`.
    """
    base = str(root)
    stack = [("", prefix.strip("/"))]
    seen = 0
    while stack:
        seen += 1
        if seen % 256 == 0 and cancelled():
            raise ScanCancelled(str(root))
        rel, name = stack.pop()
        try:
            it = os.scandir(os.path.join(base, rel) if rel else base)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with it:
            for e in it:
                r = f"{rel}/{e.name}" if rel else e.name
                n = f"{name}/{e.name}" if name else e.name
                if e.is_dir(follow_symlinks=False):
                    if exclude is None or os.path.join(base, r) != exclude:
                        stack.append((r, n))
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    yield ds.StoredObject(n, st.st_size, st.st_mtime)


def _branch(entries: Iterable[os.DirEntry], base: str, rel: str, exclude: str | None, out: ds.LegacyListing,
            sizes: bool) -> list[str]:
    """A directory above the blob directories: its files go to ``out`` (their types come with the
    listing, no stat); returns its subdirectories' names (never the excluded one)."""
    dirs = []
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            if exclude is None or os.path.join(base, rel, e.name) != exclude:
                dirs.append(e.name)
        elif e.is_file(follow_symlinks=False):
            out.count += 1
            path = f"{rel}/{e.name}"
            out.others[path] = None
            if sizes and e.stat(follow_symlinks=False).st_size == 0:
                out.zero.add(path)
    return dirs


def _directories(base: str, stack: list[str], cancelled: Callable[[], bool]) -> Iterator[tuple[str, list[str], int]]:
    """Each directory of ``stack`` (relative to ``base``; the caller pushes more as it goes) as (relative
    path, its parts, an open descriptor closed after the caller's turn); never through a symlink."""
    while stack:
        rel = stack.pop()
        if cancelled():
            raise ScanCancelled(base)
        try:
            fd = os.open(os.path.join(base, rel), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            yield rel, rel.split("/"), fd
        finally:
            os.close(fd)


def _walk_top(base: str, db: str, top: str, exclude: str | None,
              cancelled: Callable[[], bool], sizes: bool = True) -> ds.LegacyListing:
    """One ``<db>/<top>`` subtree: names by ``listdir``, then one ``lstat`` relative to the directory's
    descriptor per entry (no path lookups, no per-entry objects beyond the name).

    Without ``sizes`` the types come from the directory entries themselves (no ``stat`` at all,
    as ``find -type f`` does): the listing is then blind to empty files.
    """
    if not sizes:
        return _walk_top_types(base, db, top, exclude, cancelled)
    out = ds.LegacyListing()
    stack = [f"{db}/{top}"]
    lstat, is_reg, is_dir = os.lstat, stat.S_ISREG, stat.S_ISDIR
    blob_names, others, zero = out.blob_names, out.others, out.zero
    for rel, parts, fd in _directories(base, stack, cancelled):
        if len(parts) < 3:
            with os.scandir(fd) as it:
                stack += [f"{rel}/{d}" for d in _branch(it, base, rel, exclude, out, True)]
            continue
        canonical = len(parts) == 3  # <db>/xx/yy: the blob directories
        prefix = parts[1] + parts[2] if canonical else ""
        for name in os.listdir(fd):
            try:
                st = lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue
            mode = st.st_mode
            if is_reg(mode):
                out.count += 1
                if canonical and len(name) == 32 and name[:4] == prefix:
                    blob_names.add(name)
                    if not st.st_size:
                        zero.add(f"{rel}/{name}")
                else:
                    path = f"{rel}/{name}"
                    others[path] = None
                    if not st.st_size:
                        zero.add(path)
            elif is_dir(mode) and (exclude is None or os.path.join(base, rel, name) != exclude):
                stack.append(f"{rel}/{name}")
    return out


def _walk_top_types(base: str, db: str, top: str, exclude: str | None,
                    cancelled: Callable[[], bool]) -> ds.LegacyListing:
    """The walk without sizes: directory entries only, and in the blob directories only names.

    A name of the blob layout in its blob directory is taken as an object without looking at it
    (one ``listdir`` per directory, no call per file); the candidates the set arithmetic leaves
    are looked at afterwards anyway. Any other entry is checked with ``lstat``: directories are
    descended into, regular files are listed, symlinks are never followed.
    """
    out = ds.LegacyListing()
    stack = [f"{db}/{top}"]
    blob_names, others = out.blob_names, out.others
    lstat, is_reg, is_dir = os.lstat, stat.S_ISREG, stat.S_ISDIR
    for rel, parts, fd in _directories(base, stack, cancelled):
        if len(parts) < 3:
            with os.scandir(fd) as it:
                stack += [f"{rel}/{d}" for d in _branch(it, base, rel, exclude, out, False)]
            continue
        names = os.listdir(fd)
        odd = names
        if len(parts) == 3:  # <db>/xx/yy: the blob directories
            prefix = parts[1] + parts[2]
            good = [n for n in names if len(n) == 32 and n[:4] == prefix]
            blob_names.update(good)
            out.count += len(good)
            odd = [n for n in names if len(n) != 32 or n[:4] != prefix] if len(good) != len(names) else []
        for name in odd:
            try:
                mode = lstat(name, dir_fd=fd).st_mode
            except FileNotFoundError:
                continue
            if is_reg(mode):
                out.count += 1
                others[f"{rel}/{name}"] = None
            elif is_dir(mode) and (exclude is None or os.path.join(base, rel, name) != exclude):
                stack.append(f"{rel}/{name}")
    return out


def walk_legacy(location: Path, db: str, exclude: str | None = None,
                cancelled: Callable[[], bool] = never, workers: int = 1, sizes: bool = True) -> ds.LegacyListing:
    """List ``<location>/<db>/`` in the compact form, a thread per top-level directory.

    ``scandir`` and ``stat`` release the GIL, so the threads overlap on the kernel's work; the
    size is the only thing read per file (for empty objects), ages only later for the candidates.
    Symlinks are never followed.
    """
    base = str(location)
    root = os.path.join(base, db)
    out = ds.LegacyListing()
    try:
        top = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return out
    dirs = _branch(top, base, db, exclude, out, sizes)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="djtui-walk") as pool:
        for part in pool.map(lambda d: _walk_top(base, db, d, exclude, cancelled, sizes), dirs):
            out.count += part.count
            out.blob_names |= part.blob_names
            out.others.update(part.others)
            out.zero |= part.zero
    return out
