"""Proving copies: every file's size, and optionally a content hash (cached), on both sides.

A passing verification is written as a record that delete later holds the source against.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
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
    compare_scans,
    compare_sizes,
    mismatch_reason,
    scan_stats,
    standing_mismatches,
)
from djtui.services import filesystem
from djtui.services.sessions import SessionService
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
    with _collector_paused():
        return _verify_many(service, keys, dest, checksum=checksum, on_file=on_file)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic GC passes while a scan makes hundreds of thousands of strings (about 15% of the work).

    Nothing here makes cycles that matter: memory is still freed by reference counting.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _verify_many(service: SessionService, keys: Sequence[SessionKey], dest: Destination, *, checksum: bool,
                 on_file: Callable[[str], None] | None) -> list[VerifyOutcome]:
    method = "checksum" if checksum else "size"
    empty = Comparison()
    probe = service.probe(dest)
    if not probe.ok:
        service.records.forget_many(keys, dest.name)
        return [VerifyOutcome(k, dest.name, method, empty, 0, 0, error=f"{dest.name}: {probe.state}: {probe.detail}")
                for k in keys]
    started = time.time()
    src_paths = [service.source_path(k) for k in keys]
    dst_paths = [service.dest_path(dest, k) for k in keys]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            f_src = pool.submit(filesystem.scan_columns, src_paths, exclude=service.excludes, timeout=service.timeout)
            f_dst = pool.submit(filesystem.scan_columns, dst_paths, exclude=service.excludes, timeout=service.timeout)
            srcs, dsts = f_src.result(), f_dst.result()
    except filesystem.Hung as exc:
        return [VerifyOutcome(k, dest.name, method, empty, 0, 0, error=str(exc)) for k in keys]
    except OSError as exc:  # the Python scanner (no GNU find) met an unreadable folder
        service.records.forget_many(keys, dest.name)
        return [VerifyOutcome(k, dest.name, method, empty, 0, 0,
                              error=f"{exc.filename}: {exc.strerror or exc}; not verified") for k in keys]
    cmps = [compare_scans(s, d) if s.exists and d.exists and not (s.error or d.error) else None
            for s, d in zip(srcs, dsts, strict=True)]
    digests: dict[int, tuple[list[str], Sequence[str], list[str]]] = {}  # i -> src digests, dst rels, dst digests
    hashed = 0
    known = service.records.load_mismatches(keys, dest.name)
    if checksum:
        groups: list[tuple[str, Sequence[str], Sequence[str], Sequence[str]]] = []
        owners: list[int] = []
        for i, (sp, dp, s, d, c) in enumerate(zip(src_paths, dst_paths, srcs, dsts, cmps, strict=True)):
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
        if groups:
            cache = HashCache(service.config.state_dir)
            try:
                # a re-copy can keep the bad copy's size and mtime: a known difference is read again, never cached
                cache.forget((root, [m.rel for m in known[keys[i]]]) for n, i in enumerate(owners) if keys[i] in known
                             for root in (groups[2 * n][0], groups[2 * n + 1][0]))
                got, hashed = hash_files(groups, cache, service.settings.checksum_workers, service.timeout, on_file)
            except filesystem.Hung as exc:
                return [VerifyOutcome(k, dest.name, method, empty, 0, 0, error=str(exc)) for k in keys]
            except OSError as exc:  # a file (or the whole destination) vanished while it was being read
                service.records.forget_many(keys, dest.name)
                return [VerifyOutcome(k, dest.name, method, empty, 0, 0,
                                      error=f"{exc.filename or dest.name}: {exc.strerror or exc} during "
                                            "verification (removed or unmounted?); not verified")
                        for k in keys]
            finally:
                cache.close()
            for n, i in enumerate(owners):
                digests[i] = (got[2 * n], groups[2 * n + 1][1], got[2 * n + 1])
    out = []
    passed: list[VerifyRecord] = []
    failed: list[tuple[SessionKey, str]] = []
    found: dict[tuple[SessionKey, str], list[ContentMismatch]] = {}  # replaces what is remembered there
    for i, (k, sp, dp, s, d, c) in enumerate(zip(keys, src_paths, dst_paths, srcs, dsts, cmps, strict=True)):
        if not s.exists:
            out.append(VerifyOutcome(k, dest.name, method, empty, 0, 0, error=f"source {sp} does not exist"))
            continue
        if s.error or d.error:
            failed.append((k, dest.name))
            out.append(VerifyOutcome(k, dest.name, method, empty, s.count, s.bytes,
                                     error=f"could not list every file: {s.error or d.error}; not verified"))
            continue
        if c is None:
            failed.append((k, dest.name))
            out.append(VerifyOutcome(k, dest.name, method, compare_sizes(s.listing(), Listing(True)), s.count,
                                     s.bytes, error=f"no backup at {dp}"))
            continue
        table = s.file_table()
        remembered = known.get(k, ())
        standing: list[ContentMismatch] = []
        if checksum and c.ok:
            hashes, drels, dhashes = digests[i]
            bad: tuple[str, ...] = ()
            if dict(zip(table.rels, hashes, strict=True)) != dict(zip(drels, dhashes, strict=True)):
                other = dict(zip(drels, dhashes, strict=True))
                bad = tuple(r for r, h in zip(table.rels, hashes, strict=True) if other.get(r) != h)
            table = s.file_table(hashes)
            c = Comparison(c.missing, c.extra, c.size_mismatch, bad, c.compared, len(hashes))
            if bad or remembered:  # every file was read: what it found replaces what was remembered
                found[(k, dest.name)] = _content_mismatches(bad, s, d, started)
        elif remembered:
            rels = [m.rel for m in remembered]
            standing = standing_mismatches(remembered, scan_stats(s, rels), scan_stats(d, rels))
            if len(standing) != len(remembered):  # a file changed on either side: it no longer counts
                found[(k, dest.name)] = standing
        if standing:
            names = [m.rel for m in standing]
            why = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "") + ": " + mismatch_reason(standing)
            if not c.ok:
                why = f"{c.summary()}; {why}"
            c = Comparison(c.missing, c.extra, c.size_mismatch, tuple(names), c.compared, c.hashed)
            failed.append((k, dest.name))
            out.append(VerifyOutcome(k, dest.name, method, c, s.count, s.bytes, error=why))
            continue
        record_path = None
        if c.ok and s.count:
            passed.append(VerifyRecord(k.participant_id, k.date_str, dest.name, started, method, table))
            record_path = str(service.records.path)
        else:
            failed.append((k, dest.name))
        out.append(VerifyOutcome(k, dest.name, method, c, s.count, s.bytes, 0, record_path))
    service.records.save_many(passed, failed, found)
    if out:
        first = out[0]
        out[0] = VerifyOutcome(first.key, first.destination, first.method, first.comparison, first.source_files,
                               first.source_bytes, hashed, first.record_path, first.error)
    return out


def _content_mismatches(rels: Sequence[str], src: Scan, dst: Scan, when: float) -> list[ContentMismatch]:
    """Both sides' size and mtime of each file whose content differed, as this verify saw them."""
    if not rels:
        return []
    a, b = scan_stats(src, rels), scan_stats(dst, rels)
    return [ContentMismatch(r, *a[r], *b[r], when) for r in rels if r in a and r in b]
