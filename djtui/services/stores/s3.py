"""S3-compatible stores (MinIO, AWS): listing, and the copy-then-delete quarantine.

boto3 is imported lazily so file-only labs never pay for it. Keys are handled
relative to the store's ``location`` prefix, exactly as file stores handle paths
relative to their directory, so the orphan rules are the same for both. Quarantined
objects are copied to ``_djtui_quarantine/<batch>/<key>`` in the same bucket, checked, then
deleted; the batch's manifest stays in the local quarantine directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from djtui.config import StoreSettings
from djtui.domain import stores as ds
from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog
from djtui.services.stores.quarantine import Quarantine
from djtui.services.stores.walk import ScanCancelled, never

QUARANTINE_PREFIX = "_djtui_quarantine"


class S3Store:
    """A bucket (and a ``location`` prefix in it) of S3 objects."""

    kind = "s3"
    root: Path | None = None  # no local directory

    def __init__(self, settings: StoreSettings, client: Any = None):
        if settings.protocol != "s3" or not settings.bucket:
            raise UserError(f"store {settings.name!r} is not an s3 store with a bucket",
                            where=f"stores.{settings.name}")
        self.settings = settings
        self.name = settings.name
        self.bucket = settings.bucket
        self.location = settings.location.strip("/")
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config as BotoConfig
            s = self.settings
            endpoint = s.endpoint or ""
            if endpoint and "://" not in endpoint:
                endpoint = ("https://" if s.secure else "http://") + endpoint
            for secret in (s.access_key, s.secret_key):
                if secret:
                    commandlog.add_secret(secret.reveal())
            self._client = boto3.client(
                "s3", endpoint_url=endpoint or None,
                aws_access_key_id=s.access_key.reveal() if s.access_key else None,
                aws_secret_access_key=s.secret_key.reveal() if s.secret_key else None,
                region_name="us-east-1",
                config=BotoConfig(retries={"max_attempts": 3}, connect_timeout=10, read_timeout=60),
            )
        return self._client

    def key(self, rel: str) -> str:
        return ds.join(self.location, rel)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.location}"

    def list(self, prefix: str = "", *, cancelled: Callable[[], bool] = never) -> Iterator[ds.StoredObject]:
        """Objects under ``<location>/<prefix>/`` (the slash keeps ``a`` from listing ``a_v2``)."""
        full = self.key(prefix.strip("/"))
        if full:
            full += "/"
        strip = len(self.location) + 1 if self.location else 0
        commandlog.record("exec", f"s3 list s3://{self.bucket}/{full}")
        paginator = self.client.get_paginator("list_objects_v2")
        n = 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", ()):
                if n % 1000 == 0 and cancelled():
                    raise ScanCancelled(f"s3://{self.bucket}/{full}")
                n += 1
                yield ds.StoredObject(obj["Key"][strip:], int(obj["Size"]), obj["LastModified"].timestamp())

    def legacy_listing(self, db: str, folds: tuple[int, ...], *, cancelled: Callable[[], bool] = never,
                       sizes: bool = True) -> ds.LegacyListing:
        """One 0.14 schema's objects in the compact form (a listing brings sizes and ages for free)."""
        out = ds.LegacyListing()
        for o in self.list(db, cancelled=cancelled):
            out.add(db, o, folds)
        return out

    def stat(self, rel: str) -> ds.StoredObject | None:
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self.key(rel))
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ds.StoredObject(rel, int(r["ContentLength"]), r["LastModified"].timestamp())

    def _move(self, src: str, dst: str) -> str:
        r = self.client.copy_object(Bucket=self.bucket, Key=dst, CopySource={"Bucket": self.bucket, "Key": src})
        etag = r.get("CopyObjectResult", {}).get("ETag", "").strip('"')
        h = self.client.head_object(Bucket=self.bucket, Key=dst)
        if h["ETag"].strip('"') != etag:
            raise OperationFailed(f"copy of s3://{self.bucket}/{src} does not match; the original was kept")
        self.client.delete_object(Bucket=self.bucket, Key=src)
        return etag

    def move_to_quarantine(self, quarantine: Quarantine, source: str,
                           moves: Iterable[tuple[str, str, Any]]) -> tuple[str, list[dict]]:
        """Copy-then-delete each ``(path, reason, verify)`` into a new batch (manifest kept locally)."""
        return quarantine.move_in_s3(source, self, moves)

    def restore_from_quarantine(self, quarantine: Quarantine, batch_id: str) -> list[dict]:
        return quarantine.restore(batch_id, store=self)

    def delete(self, rel: str) -> None:
        commandlog.record("exec", f"s3 delete s3://{self.bucket}/{self.key(rel)}")
        self.client.delete_object(Bucket=self.bucket, Key=self.key(rel))

    def copy_into_quarantine(self, batch_id: str, source: str,
                   moves: Iterable[tuple[str, str, Callable[[str, ds.StoredObject], str | None] | None]],
                   manifest: dict[str, Any], save: Callable[[], None]) -> None:
        """Copy each object to ``_djtui_quarantine/<batch>/<key>`` then delete it, re-checking first."""
        for rel, reason, verify in moves:
            obj = self.stat(rel)
            if obj is None:
                manifest["skipped"].append({"path": rel, "why": "gone"})
                continue
            why = verify(rel, obj) if verify else None
            if why:
                manifest["skipped"].append({"path": rel, "why": why})
                continue
            src = self.key(rel)
            dst = f"{QUARANTINE_PREFIX}/{batch_id}/{src}"
            entry = {"original": src, "stored": dst, "size": obj.size, "mtime": obj.mtime, "source": source,
                     "reason": reason, "time": time.time(), "hash": None}
            manifest["items"].append(entry)
            save()
            entry["hash"] = "etag:" + self._move(src, dst)
        save()

    def restore(self, items: list[dict]) -> list[dict]:
        for e in items:
            try:
                self.client.head_object(Bucket=self.bucket, Key=e["original"])
            except self.client.exceptions.ClientError:
                continue
            raise OperationFailed(f"s3://{self.bucket}/{e['original']} exists again; nothing was restored")
        done = []
        for e in items:
            self._move(e["stored"], e["original"])
            done.append(e)
        return done

    def purge(self, items: list[dict]) -> None:
        for e in items:
            self.client.delete_object(Bucket=self.bucket, Key=e["stored"])
