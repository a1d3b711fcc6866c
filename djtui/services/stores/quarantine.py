"""Quarantine: orphan files are moved aside, never deleted outright.

A batch is a directory ``<quarantine>/<batch id>/`` holding the moved files and a
``manifest.json`` (original path, size, hash, source, reason, time). Moving is a
``rename`` on the same filesystem, so a restore puts back the very same bytes;
``purge`` deletes batches only after a grace period. The manifest is written
before each chunk of moves (listing the chunk) and after, so a batch cut off by a crash
still lists every file it moved and can be restored; one that fails (disk full) moves its
files back.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from djtui.errors import OperationFailed, UserError
from djtui.services.testhook import pause_between_items

MANIFEST = "manifest.json"
CHUNK = 500  # manifest entries written ahead of each group of moves


def file_hash(path: Path) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return "xxh3_128:" + h.hexdigest()


@dataclass(frozen=True)
class BatchInfo:
    batch_id: str
    created: float
    source: str
    items: int
    bytes: int
    state: str  # open | done | restored

    def to_json(self) -> dict[str, Any]:
        return {"batch": self.batch_id, "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.created)),
                "source": self.source, "items": self.items, "bytes": self.bytes, "state": self.state}


def inside(root: Path, path: Path) -> bool:
    """True when ``path``'s real parent directory lies inside ``root`` (no symlink leads out)."""
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(path.parent)
    return real_parent == real_root or real_parent.startswith(real_root.rstrip("/") + "/")


class Quarantine:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _write_manifest(self, batch_dir: Path, manifest: dict[str, Any]) -> None:
        tmp = batch_dir / (MANIFEST + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, batch_dir / MANIFEST)

    def read_manifest(self, batch_id: str) -> dict[str, Any]:
        if not batch_id or "/" in batch_id or batch_id.startswith("."):
            raise UserError(f"{batch_id!r} is not a batch id", hint="see `djtui orphans list-quarantine`")
        path = self.root / batch_id / MANIFEST
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"no quarantine batch {batch_id!r} in {self.root}",
                            hint="see `djtui orphans list-quarantine`") from None

    def move_in(self, source: str, store_root: Path, moves: Iterable[tuple[str, str, Any]]) -> tuple[str, list[dict]]:
        """Move ``(relative path, reason, verify)`` items of ``store_root`` into a new batch.

        ``verify(path, st)`` is the re-check at the moment of action: it returns a reason
        to skip (a string) or None to go ahead. Returns the batch id and the manifest items.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        store_root = Path(store_root)
        if os.stat(self.root).st_dev != os.stat(store_root).st_dev:
            raise UserError(f"quarantine {self.root} is not on the same filesystem as {store_root}",
                            where="orphans.quarantine_dir",
                            hint="set orphans.quarantine_dir to a directory on the store's filesystem")
        batch_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        batch_dir = self.root / batch_id
        (batch_dir / "files").mkdir(parents=True)
        manifest: dict[str, Any] = {"batch": batch_id, "created": time.time(), "source": source,
                                    "root": str(store_root), "state": "open", "items": [], "skipped": []}
        try:
            self._write_manifest(batch_dir, manifest)
            moves = iter(moves)
            while chunk := list(itertools.islice(moves, CHUNK)):
                planned = []
                for rel, reason, verify in chunk:
                    original = store_root / rel
                    try:
                        st = os.lstat(original)
                    except FileNotFoundError:
                        manifest["skipped"].append({"path": rel, "why": "gone"})
                        continue
                    if not os.path.isfile(original) or os.path.islink(original) or not inside(store_root, original):
                        manifest["skipped"].append({"path": rel, "why": "not a regular file inside the store"})
                        continue
                    why = verify(rel, st) if verify else None
                    if why:
                        manifest["skipped"].append({"path": rel, "why": why})
                        continue
                    planned.append((rel, st, {"original": str(original), "stored": str(Path("files") / rel),
                                              "size": st.st_size, "mtime": st.st_mtime, "source": source,
                                              "reason": reason, "time": time.time(), "hash": None}))
                if not planned:
                    continue
                # write-ahead: a chunk's entries are on disk before any of its files moves, so a crash
                # leaves every moved file listed (restore skips the listed ones that never moved)
                manifest["items"] += [e for _r, _s, e in planned]
                self._write_manifest(batch_dir, manifest)
                for n, (rel, st, entry) in enumerate(planned):
                    if n:
                        pause_between_items()
                    original = Path(entry["original"])
                    try:
                        now = os.lstat(original)
                    except FileNotFoundError:
                        now = None
                    if now is None or (now.st_size, now.st_mtime_ns, now.st_ino) != \
                            (st.st_size, st.st_mtime_ns, st.st_ino):
                        manifest["items"].remove(entry)
                        manifest["skipped"].append({"path": rel, "why": "changed while the batch ran"})
                        continue
                    target = batch_dir / entry["stored"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(original, target)
                    entry["hash"] = file_hash(target)
                self._write_manifest(batch_dir, manifest)
            manifest["state"] = "done"
            self._write_manifest(batch_dir, manifest)
        except OSError as exc:  # disk full, I/O error: a clear failure, with the files put back
            moved = sum(os.path.lexists(batch_dir / e["stored"]) for e in manifest["items"])
            kept = self._roll_back(batch_dir, manifest, exc)
            where = (f"{len(kept)} moved file(s) could not be put back; they stay listed in "
                     f"{batch_dir / MANIFEST} (`djtui orphans restore {batch_id}`)") if kept else \
                f"the {moved} file(s) it had moved were put back"
            raise OperationFailed(f"quarantine batch {batch_id} failed: {exc.strerror or exc}"
                                  f"{f' ({exc.filename})' if exc.filename else ''}; {where}") from exc
        except BaseException as exc:
            self._roll_back(batch_dir, manifest, exc)
            raise
        return batch_id, manifest["items"]

    def _roll_back(self, batch_dir: Path, manifest: dict[str, Any], exc: BaseException) -> list[dict]:
        """A batch that failed half-way (disk full, I/O error) puts its moved files back.

        Renames need no free space, so this works on a full disk; whatever cannot go back
        stays listed in the manifest (state ``failed``) and ``restore`` can retry it.
        """
        kept = []
        for e in manifest["items"]:
            stored = batch_dir / e["stored"]
            if not os.path.lexists(stored):
                continue
            try:
                if os.path.lexists(e["original"]):
                    raise FileExistsError(e["original"])
                os.rename(stored, e["original"])
            except OSError:
                kept.append(e)
        manifest["items"] = kept
        manifest["state"] = "failed" if kept else "rolled-back"
        manifest["error"] = f"{type(exc).__name__}: {exc}"
        try:
            self._write_manifest(batch_dir, manifest)
        except OSError:
            pass
        if not kept:
            shutil.rmtree(batch_dir, ignore_errors=True)
        return kept

    def move_in_s3(self, source: str, store: Any, moves: Iterable[tuple[str, str, Any]]) -> tuple[str, list[dict]]:
        """The S3 twin of :meth:`move_in`: copy-then-delete into a quarantine prefix, manifest kept here."""
        batch_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        batch_dir = self.root / batch_id
        batch_dir.mkdir(parents=True)
        manifest: dict[str, Any] = {"batch": batch_id, "created": time.time(), "source": source, "backend": "s3",
                                    "store": store.settings.name, "bucket": store.bucket, "state": "open",
                                    # where the batch lives, enough to restore it with no store configured;
                                    # never a secret (keys come from the config or the cleaner TOML again)
                                    "store_spec": {"protocol": "s3", "endpoint": store.settings.endpoint,
                                                   "bucket": store.bucket, "location": store.settings.location,
                                                   "secure": store.settings.secure},
                                    "items": [], "skipped": []}
        self._write_manifest(batch_dir, manifest)
        store.copy_into_quarantine(batch_id, source, moves, manifest, lambda: self._write_manifest(batch_dir, manifest))
        manifest["state"] = "done"
        self._write_manifest(batch_dir, manifest)
        return batch_id, manifest["items"]

    def restore(self, batch_id: str, *, store: Any = None) -> list[dict]:
        """Put every file of a batch back where it was; refuses to overwrite anything."""
        manifest = self.read_manifest(batch_id)
        if manifest.get("state") == "restored":
            raise UserError(f"batch {batch_id} was already restored")
        if manifest.get("state") == "purged":
            raise UserError(f"batch {batch_id} was purged; its files are gone")
        batch_dir = self.root / batch_id
        if manifest.get("backend") == "s3":
            if store is None:
                raise UserError(f"batch {batch_id} lives on s3 store {manifest.get('store')!r}, "
                                "which is not configured", where="stores")
            restored = store.restore(manifest["items"])
            manifest["state"] = "restored"
            manifest["restored_at"] = time.time()
            self._write_manifest(batch_dir, manifest)
            return restored
        # an entry whose file never moved (a batch cut off mid-chunk) is still at its original path: skip it
        conflicts = [e["original"] for e in manifest["items"]
                     if os.path.lexists(batch_dir / e["stored"]) and os.path.lexists(e["original"])]
        if conflicts:
            raise OperationFailed(f"{len(conflicts)} original path(s) exist again, e.g. {conflicts[0]}; "
                                  "nothing was restored")
        restored = []
        for n, e in enumerate(manifest["items"]):
            if n:
                pause_between_items()
            stored = batch_dir / e["stored"]
            if not stored.exists():
                continue
            if e.get("hash") and file_hash(stored) != e["hash"]:
                raise OperationFailed(f"{stored} no longer matches its recorded hash; stopped")
            Path(e["original"]).parent.mkdir(parents=True, exist_ok=True)
            os.rename(stored, e["original"])
            os.utime(e["original"], (e["mtime"], e["mtime"]))
            restored.append(e)
        manifest["state"] = "restored"
        manifest["restored_at"] = time.time()
        self._write_manifest(batch_dir, manifest)
        return restored

    def batches(self) -> list[BatchInfo]:
        out = []
        if not self.root.is_dir():
            return out
        for d in sorted(self.root.iterdir()):
            try:
                m = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            items = m.get("items", [])
            out.append(BatchInfo(m.get("batch", d.name), float(m.get("created", 0)), m.get("source", "?"),
                                 len(items), sum(int(e.get("size", 0)) for e in items), m.get("state", "?")))
        return out

    def purge(self, older_than_days: float, *, now: float | None = None,
              store_for: Any = None) -> list[BatchInfo]:
        """Delete the files of batches older than the grace period; the manifest stays as the record."""
        now = time.time() if now is None else now
        purged = []
        for b in self.batches():
            if b.state not in ("done", "open") or now - b.created < older_than_days * 86400:
                continue
            batch_dir = self.root / b.batch_id
            m = self.read_manifest(b.batch_id)
            if m.get("backend") == "s3":
                if store_for is None:
                    continue
                store_for(m).purge(m["items"])
            else:
                shutil.rmtree(batch_dir / "files", ignore_errors=True)
            m["state"] = "purged"
            m["purged_at"] = now
            self._write_manifest(batch_dir, m)
            purged.append(b)
        return purged
