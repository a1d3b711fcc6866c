"""Quarantine: orphan files are moved aside, never deleted outright.

A batch is a directory ``<quarantine>/<batch id>/`` holding the moved files and a
``manifest.json`` (original path, size, hash, source, reason, time). Moving is a
``rename`` on the same filesystem, so a restore puts back the very same bytes;
``purge`` deletes batches only after a grace period. The manifest is written
before each chunk of moves and after, so an interrupted batch can still be restored.
"""

from __future__ import annotations

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

MANIFEST = "manifest.json"


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
        self._write_manifest(batch_dir, manifest)
        for n, (rel, reason, verify) in enumerate(moves):
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
            stored = Path("files") / rel
            (batch_dir / stored).parent.mkdir(parents=True, exist_ok=True)
            entry = {"original": str(original), "stored": str(stored), "size": st.st_size, "mtime": st.st_mtime,
                     "source": source, "reason": reason, "time": time.time(), "hash": None}
            manifest["items"].append(entry)
            if n % 500 == 0:
                self._write_manifest(batch_dir, manifest)
            os.rename(original, batch_dir / stored)
            entry["hash"] = file_hash(batch_dir / stored)
        manifest["state"] = "done"
        self._write_manifest(batch_dir, manifest)
        return batch_id, manifest["items"]

    def move_in_s3(self, source: str, store: Any, moves: Iterable[tuple[str, str, Any]]) -> tuple[str, list[dict]]:
        """The S3 twin of :meth:`move_in`: copy-then-delete into a quarantine prefix, manifest kept here."""
        batch_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        batch_dir = self.root / batch_id
        batch_dir.mkdir(parents=True)
        manifest: dict[str, Any] = {"batch": batch_id, "created": time.time(), "source": source, "backend": "s3",
                                    "store": store.settings.name, "bucket": store.bucket, "state": "open",
                                    "items": [], "skipped": []}
        self._write_manifest(batch_dir, manifest)
        store.quarantine(batch_id, source, moves, manifest, lambda: self._write_manifest(batch_dir, manifest))
        manifest["state"] = "done"
        self._write_manifest(batch_dir, manifest)
        return batch_id, manifest["items"]

    def restore(self, batch_id: str, *, s3: Any = None) -> list[dict]:
        """Put every file of a batch back where it was; refuses to overwrite anything."""
        manifest = self.read_manifest(batch_id)
        if manifest.get("state") == "restored":
            raise UserError(f"batch {batch_id} was already restored")
        if manifest.get("state") == "purged":
            raise UserError(f"batch {batch_id} was purged; its files are gone")
        batch_dir = self.root / batch_id
        if manifest.get("backend") == "s3":
            if s3 is None:
                raise UserError(f"batch {batch_id} lives on s3 store {manifest.get('store')!r}, "
                                "which is not configured", where="stores")
            restored = s3.restore(manifest["items"])
            manifest["state"] = "restored"
            manifest["restored_at"] = time.time()
            self._write_manifest(batch_dir, manifest)
            return restored
        conflicts = [e["original"] for e in manifest["items"] if os.path.lexists(e["original"])]
        if conflicts:
            raise OperationFailed(f"{len(conflicts)} original path(s) exist again, e.g. {conflicts[0]}; "
                                  "nothing was restored")
        restored = []
        for e in manifest["items"]:
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
              s3_for: Any = None) -> list[BatchInfo]:
        """Delete the files of batches older than the grace period; the manifest stays as the record."""
        now = time.time() if now is None else now
        purged = []
        for b in self.batches():
            if b.state not in ("done", "open") or now - b.created < older_than_days * 86400:
                continue
            batch_dir = self.root / b.batch_id
            m = self.read_manifest(b.batch_id)
            if m.get("backend") == "s3":
                if s3_for is None:
                    continue
                s3_for(m["store"]).purge(m["items"])
            else:
                shutil.rmtree(batch_dir / "files", ignore_errors=True)
            m["state"] = "purged"
            m["purged_at"] = now
            self._write_manifest(batch_dir, m)
            purged.append(b)
        return purged
