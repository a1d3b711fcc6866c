"""A store that is a local (or mounted) directory: DataJoint's ``protocol: file``.

Paths are relative to the store's directory, exactly as S3 keys are relative to its
``location`` prefix. Listings never follow a symlink and skip the quarantine directory when
it lives inside the store. Moving into the quarantine is a ``rename`` on the same
filesystem (:meth:`Quarantine.move_in`), so a restore puts back the very same bytes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from djtui.domain import stores as ds
from djtui.services.stores.quarantine import Quarantine
from djtui.services.stores.walk import list_files, never, walk_legacy


class FileStore:
    """A directory of objects. ``exclude``: a directory (resolved) never listed (the quarantine)."""

    kind = "file"

    def __init__(self, name: str, root: Path, *, exclude: str | None = None):
        self.name = name
        self.root: Path | None = Path(root)
        self._root = Path(root)
        self.exclude = exclude

    def describe(self) -> str:
        return str(self._root)

    def list(self, prefix: str = "", *, cancelled: Callable[[], bool] = never) -> Iterator[ds.StoredObject]:
        """Every regular file under ``<root>/<prefix>/``, named relative to the root."""
        prefix = prefix.strip("/")
        return list_files(self._root / prefix if prefix else self._root, prefix, self.exclude, cancelled)

    def stat(self, rel: str) -> ds.StoredObject | None:
        """The object at ``rel``; None when absent, or when a link or a directory stands there."""
        try:
            st = os.lstat(self._root / rel)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return ds.StoredObject(rel, st.st_size, st.st_mtime)

    def legacy_listing(self, db: str, folds: tuple[int, ...], *, cancelled: Callable[[], bool] = never,
                       sizes: bool = True) -> ds.LegacyListing:
        """One 0.14 schema's objects in the compact form; the fast walk knows the 2/2 layout only."""
        if folds == ds.DEFAULT_SUBFOLDING:
            return walk_legacy(self._root, db, self.exclude, cancelled, sizes=sizes)
        out = ds.LegacyListing()
        for o in self.list(db, cancelled=cancelled):
            out.add(db, o, folds)
        return out

    def move_to_quarantine(self, quarantine: Quarantine, source: str,
                           moves: Iterable[tuple[str, str, Any]]) -> tuple[str, list[dict]]:
        """Rename each ``(path, reason, verify)`` into a new batch; ``verify`` re-checks at the moment."""
        return quarantine.move_in(source, self._root, moves)

    def restore_from_quarantine(self, quarantine: Quarantine, batch_id: str) -> list[dict]:
        return quarantine.restore(batch_id)

    def delete(self, rel: str) -> None:
        """Unlink one object (the quarantine's purge is the usual way; this is for callers that own it)."""
        os.unlink(self._root / rel)
