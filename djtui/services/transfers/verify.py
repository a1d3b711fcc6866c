"""Proving copies: every file's size, and optionally a content hash (cached), on both sides.

A passing verification is written as a record that delete later holds the source against.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from djtui.config import Destination
from djtui.domain.sessions import (
    Comparison,
    ContentMismatch,
    Listing,
    Scan,
    SessionKey,
    VerifyRecord,
    compare_sizes,
    mismatch_reason,
    scan_stats,
    standing_mismatches,
)
from djtui.services import filesystem
from djtui.services.sessions import SessionService
from djtui.services.sessions.lazy import collector_paused
from djtui.services.transfers.hashcache import HashCache
from djtui.services.transfers.hashrun import hash_files


@dataclass(frozen=True)
class VerifyOutcome:
    key: SessionKey
    destination: str
    method: str
    comparison: Comparison
    source_files: int
    source_bytes: int
    hashed_now: int = 0
    record_path: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.comparison.ok and self.source_files > 0

    @property
    def message(self) -> str:
        if self.error:
            return self.error
        if self.source_files == 0:
            return "the source folder holds no files"
        return self.comparison.summary()

    def to_json(self) -> dict[str, Any]:
        c = self.comparison
        return {"participant_id": self.key.participant_id, "session_date": self.key.date_str,
                "destination": self.destination, "method": self.method, "ok": self.ok, "message": self.message,
                "files": self.source_files, "bytes": self.source_bytes, "missing": list(c.missing),
                "extra": list(c.extra), "size_mismatch": list(c.size_mismatch),
                "hash_mismatch": list(c.hash_mismatch), "hashed_now": self.hashed_now,
                "record": self.record_path}


def verify_session(service: SessionService, key: SessionKey, dest: Destination, *, checksum: bool = False,
                   on_file: Callable[[str], None] | None = None) -> VerifyOutcome:
    """Blocking: compare one session's source and destination file by file; store a record when it passes."""
    return verify_many(service, [key], dest, checksum=checksum, on_file=on_file)[0]


def verify_many(service: SessionService, keys: Sequence[SessionKey], dest: Destination, *, checksum: bool = False,
                on_file: Callable[[str], None] | None = None) -> list[VerifyOutcome]:
    """Blocking: verify many sessions in one pass (one scan per side, one hashing pool, one cache).

    Folders whose two sides agree are proven equal by one dict comparison over the scan's text
    columns; only folders that differ get a file-by-file diff. Records are written once at the end.
    A content difference a checksum verify found is remembered, and fails every later verify
    while the file's size and mtime are unchanged on both sides, until a checksum verify passes.
    """
    with collector_paused():
        return _verify_many(service, keys, dest, checksum=checksum, on_file=on_file)


def _verify_many(service: SessionService, keys: Sequence[SessionKey], dest: Destination, *, checksum: bool,
                 on_file: Callable[[str], None] | None) -> list[VerifyOutcome]:
    return _Verification(service, keys, dest, checksum, on_file).run()


class _Failed(Exception):
    """The whole batch failed the same way (a hung mount, an unreadable folder): every key gets ``error``."""

    def __init__(self, error: str, *, forget: bool):
        super().__init__(error)
        self.error, self.forget = error, forget


class _Verification:
    """One batch: scan both sides, hash what must be hashed, judge each session, write the records once."""

    def __init__(self, service: SessionService, keys: Sequence[SessionKey], dest: Destination, checksum: bool,
                 on_file: Callable[[str], None] | None):
        self.service, self.keys, self.dest, self.checksum, self.on_file = service, keys, dest, checksum, on_file
        self.method = "checksum" if checksum else "size"
        self.started = time.time()
        self.src_paths = [service.source_path(k) for k in keys]
        self.dst_paths = [service.dest_path(dest, k) for k in keys]
        self.digests: dict[int, tuple[list[str], Sequence[str], list[str]]] = {}  # i -> src, dst rels, dst digests
        self.hashed = 0
        self.passed: list[VerifyRecord] = []
        self.failed: list[tuple[SessionKey, str]] = []
        self.found: dict[tuple[SessionKey, str], list[ContentMismatch]] = {}  # replaces what is remembered there

    def _all_failed(self, error: str) -> list[VerifyOutcome]:
        return [VerifyOutcome(k, self.dest.name, self.method, Comparison(), 0, 0, error=error) for k in self.keys]

    def run(self) -> list[VerifyOutcome]:
        probe = self.service.probe(self.dest)
        if not probe.ok:
            self.service.records.forget_many(self.keys, self.dest.name)
            return self._all_failed(f"{self.dest.name}: {probe.state}: {probe.detail}")
        try:
            srcs, dsts, cmps = self._scan()
            known = self.service.records.load_mismatches(self.keys, self.dest.name)
            if self.checksum:
                self._hash(srcs, dsts, cmps, known)
        except _Failed as exc:
            if exc.forget:
                self.service.records.forget_many(self.keys, self.dest.name)
            return self._all_failed(exc.error)
        out = [self._judge(i, srcs[i], dsts[i], cmps[i], known.get(k, ())) for i, k in enumerate(self.keys)]
        self.service.records.save_many(self.passed, self.failed, self.found)
        if out:
            first = out[0]
            out[0] = VerifyOutcome(first.key, first.destination, first.method, first.comparison, first.source_files,
                                   first.source_bytes, self.hashed, first.record_path, first.error)
        return out

    def _scan(self) -> tuple[list[Scan], list[Scan], list[Comparison | None]]:
        """Both sides at once, each session compared by size as soon as both sides have listed it."""
        svc = self.service
        try:
            return filesystem.scan_compare(self.src_paths, self.dst_paths, exclude=svc.excludes, timeout=svc.timeout)
        except filesystem.Hung as exc:
            raise _Failed(str(exc), forget=False) from None
        except OSError as exc:  # the Python scanner (no GNU find) met an unreadable folder
            raise _Failed(f"{exc.filename}: {exc.strerror or exc}; not verified", forget=True) from None

    def _hash(self, srcs: list[Scan], dsts: list[Scan], cmps: list[Comparison | None],
              known: dict[SessionKey, list[ContentMismatch]]) -> None:
        groups: list[tuple[str, Sequence[str], Sequence[str], Sequence[str]]] = []
        owners: list[int] = []
        for i, (sp, dp, s, d, c) in enumerate(zip(self.src_paths, self.dst_paths, srcs, dsts, cmps, strict=True)):
            if c is None or not c.ok:
                continue
            srels, ssizes, smtimes = s.file_columns()
            drels, dsizes, dmtimes = d.file_columns()
            if len(drels) != len(srels):  # extra files at the destination are not read
                have = set(srels)
                keep = [j for j, r in enumerate(drels) if r in have]
                drels, dsizes, dmtimes = ([col[j] for j in keep] for col in (drels, dsizes, dmtimes))
            groups += [(os.path.abspath(sp), srels, ssizes, smtimes), (os.path.abspath(dp), drels, dsizes, dmtimes)]
            owners.append(i)
        if not groups:
            return
        cache = HashCache(self.service.config.state_dir)
        try:
            # a re-copy can keep the bad copy's size and mtime: a known difference is read again, never cached
            cache.forget((root, [m.rel for m in known[self.keys[i]]]) for n, i in enumerate(owners)
                         if self.keys[i] in known for root in (groups[2 * n][0], groups[2 * n + 1][0]))
            got, self.hashed = hash_files(groups, cache, self.service.settings.checksum_workers,
                                          self.service.timeout, self.on_file)
        except filesystem.Hung as exc:
            raise _Failed(str(exc), forget=False) from None
        except OSError as exc:  # a file (or the whole destination) vanished while it was being read
            raise _Failed(f"{exc.filename or self.dest.name}: {exc.strerror or exc} during verification "
                          "(removed or unmounted?); not verified", forget=True) from None
        finally:
            cache.close()
        for n, i in enumerate(owners):
            self.digests[i] = (got[2 * n], groups[2 * n + 1][1], got[2 * n + 1])

    def _judge(self, i: int, s: Scan, d: Scan, c: Comparison | None,
               remembered: Sequence[ContentMismatch]) -> VerifyOutcome:
        k, name, method = self.keys[i], self.dest.name, self.method
        if not s.exists:
            return VerifyOutcome(k, name, method, Comparison(), 0, 0,
                                 error=f"source {self.src_paths[i]} does not exist")
        if s.error or d.error:
            self.failed.append((k, name))
            return VerifyOutcome(k, name, method, Comparison(), s.count, s.bytes,
                                 error=f"could not list every file: {s.error or d.error}; not verified")
        if c is None:
            self.failed.append((k, name))
            return VerifyOutcome(k, name, method, compare_sizes(s.listing(), Listing(True)), s.count, s.bytes,
                                 error=f"no backup at {self.dst_paths[i]}")
        table = s.file_table()
        standing: list[ContentMismatch] = []
        if self.checksum and c.ok:
            hashes, drels, dhashes = self.digests[i]
            bad: tuple[str, ...] = ()
            if dict(zip(table.rels, hashes, strict=True)) != dict(zip(drels, dhashes, strict=True)):
                other = dict(zip(drels, dhashes, strict=True))
                bad = tuple(r for r, h in zip(table.rels, hashes, strict=True) if other.get(r) != h)
            table = s.file_table(hashes)
            c = Comparison(c.missing, c.extra, c.size_mismatch, bad, c.compared, len(hashes))
            if bad or remembered:  # every file was read: what it found replaces what was remembered
                self.found[(k, name)] = _content_mismatches(bad, s, d, self.started)
        elif remembered:
            rels = [m.rel for m in remembered]
            standing = standing_mismatches(remembered, scan_stats(s, rels), scan_stats(d, rels))
            if len(standing) != len(remembered):  # a file changed on either side: it no longer counts
                self.found[(k, name)] = standing
        if standing:
            names = [m.rel for m in standing]
            why = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "") + ": " + mismatch_reason(standing)
            if not c.ok:
                why = f"{c.summary()}; {why}"
            c = Comparison(c.missing, c.extra, c.size_mismatch, tuple(names), c.compared, c.hashed)
            self.failed.append((k, name))
            return VerifyOutcome(k, name, method, c, s.count, s.bytes, error=why)
        record_path = None
        if c.ok and s.count:
            self.passed.append(VerifyRecord(k.participant_id, k.date_str, name, self.started, method, table))
            record_path = str(self.service.records.path)
        else:
            self.failed.append((k, name))
        return VerifyOutcome(k, name, method, c, s.count, s.bytes, 0, record_path)


def _content_mismatches(rels: Sequence[str], src: Scan, dst: Scan, when: float) -> list[ContentMismatch]:
    """Both sides' size and mtime of each file whose content differed, as this verify saw them."""
    if not rels:
        return []
    a, b = scan_stats(src, rels), scan_stats(dst, rels)
    return [ContentMismatch(r, *a[r], *b[r], when) for r in rels if r in a and r in b]
