"""Where a lab's objects live, behind one ``Store`` protocol: a local directory or an S3 bucket.

Holds: the :class:`Store` protocol and :func:`open_store` (settings -> store); ``file.py``
(a directory), ``s3.py`` (a bucket, boto3 imported lazily), ``walk.py`` (fast directory walks),
``quarantine.py`` (batches of objects moved aside, their manifests, restore and purge).
Capabilities never ask which protocol a store speaks: another kind of store adds a module here.
May import: ``djtui.domain``, ``djtui.config``, ``djtui.errors`` and the leaf services
(``commandlog``, ``testhook``); never a capability, the TUI or the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from djtui.config import StoreSettings
from djtui.domain import stores as ds
from djtui.errors import UserError
from djtui.services.stores.quarantine import Quarantine
from djtui.services.stores.walk import ScanCancelled, list_files, never


class Store(Protocol):
    """One store's objects, by path relative to the store's location (a directory or a key prefix)."""

    name: str
    kind: str  # "file" | "s3": for messages and manifests, never for branching outside this package
    root: Path | None  # the local directory the paths are relative to; None when the store is remote

    def describe(self) -> str:
        """Where the store is, for messages (a path, or ``s3://bucket/location``)."""

    def list(self, prefix: str = "", *, cancelled: Callable[[], bool] = never) -> Iterator[ds.StoredObject]:
        """Stream every object under ``<prefix>/`` ("" = all) with size and mtime; never follows a link.

        ``cancelled`` is asked as the listing goes; a yes raises :class:`ScanCancelled`."""

    def stat(self, rel: str) -> ds.StoredObject | None:
        """The object at ``rel`` (size, mtime), or None when there is none."""

    def legacy_listing(self, db: str, folds: tuple[int, ...], *, cancelled: Callable[[], bool] = never,
                       sizes: bool = True) -> ds.LegacyListing:
        """One DataJoint 0.14 schema's objects (``<db>/...``) in the compact form of the set arithmetic."""

    def move_to_quarantine(self, quarantine: Quarantine, source: str,
                           moves: Iterable[tuple[str, str, Any]]) -> tuple[str, list[dict]]:
        """Move ``(path, reason, verify)`` objects into a new batch; ``verify(path, stat)`` returns a
        reason to skip (the re-check at the moment of action) or None. Returns (batch id, moved items)."""

    def restore_from_quarantine(self, quarantine: Quarantine, batch_id: str) -> list[dict]:
        """Put a batch's objects back where they were; refuses to overwrite anything."""

    def delete(self, rel: str) -> None:
        """Remove one object for good (orphans never call it: they quarantine and purge)."""


def open_store(settings: StoreSettings, *, exclude: str | None = None) -> Store:
    """The store a config entry describes. ``exclude``: a local directory never listed (the quarantine)."""
    if settings.protocol == "file":
        from djtui.services.stores.file import FileStore
        return FileStore(settings.name, Path(settings.location), exclude=exclude)
    if settings.protocol == "s3":
        from djtui.services.stores.s3 import S3Store
        return S3Store(settings)
    raise UserError(f"store {settings.name!r} has protocol {settings.protocol!r}, which djtui cannot read",
                    where=f"stores.{settings.name}.protocol", hint="use file or s3")


def directory_store(root: Path, *, exclude: str | None = None) -> Store:
    """A plain local directory seen as a store (managed directories, temp directories)."""
    from djtui.services.stores.file import FileStore
    return FileStore(str(root), Path(root), exclude=exclude)


def local_root(settings: StoreSettings) -> Path | None:
    """The directory a store's paths start at when it is local (so layouts can be checked); else None."""
    return Path(settings.location) if settings.protocol == "file" else None


def batch_place(manifest: dict[str, Any]) -> StoreSettings | None:
    """The remote store a quarantine batch lives on, from its manifest, without keys; None for a batch
    kept in the local quarantine directory (files and rows)."""
    spec = manifest.get("store_spec")
    if manifest.get("backend") != "s3" or not spec:
        return None
    return StoreSettings(name=manifest.get("store") or "?", protocol=str(spec.get("protocol") or "s3"),
                         location=str(spec.get("location") or ""), endpoint=spec.get("endpoint"),
                         bucket=spec.get("bucket"), secure=bool(spec.get("secure", False)))


def is_remote_batch(manifest: dict[str, Any]) -> bool:
    """A batch whose objects are in a remote store (restore and purge need that store's keys)."""
    return manifest.get("backend") == "s3"


__all__ = ["Quarantine", "ScanCancelled", "Store", "batch_place", "directory_store", "is_remote_batch",
           "list_files", "local_root", "never", "open_store"]
