"""Verification of 100,000 files: djtui by size vs `rsync -rn --size-only -i`, by checksum vs `rsync -rnc -i`.

Both sides are the same generated trees (same layout, so rsync can compare them whole); djtui
verifies session by session as `djtui verify` does, writing its verification records. The
checksum run starts with an empty hash cache (cold), then a re-verify shows the cache.

    python -m bench sessions_verify [--sessions 1000] [--files 100] [--size 16384]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench._sessions_lab import build, table


def rsync_compare(out: Path, flags: list[str]) -> tuple[float, int]:
    t = time.perf_counter()
    p = subprocess.run(["rsync", *flags, "-i", f"{out}/src/", f"{out}/dst/"], capture_output=True, text=True,
                       env={**os.environ, "LC_ALL": "C"})
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    return elapsed, sum(1 for line in p.stdout.splitlines() if line.startswith((">f", "<f", "cf")))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench sessions_verify", description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--size", type=int, default=16384, help="bytes per file (real content: checksums read it)")
    ap.add_argument("--dir", type=Path)
    a = ap.parse_args(argv)
    from djtui.config import load_config
    from djtui.domain.sessions import SessionKey
    from djtui.services.sessions import SessionService
    from djtui.services.transfer import verify_many, verify_session

    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-sess-verify-"))
    try:
        t = time.perf_counter()
        cfg_path, manifest = build(work, sessions=a.sessions, files=a.files, server=None, size=a.size, sparse=False,
                                   same_layout=True, states="full=0.95,partial=0.05")
        n = a.sessions * a.files
        print(f"generated {n} files ({n * a.size / 1e9:.2f} GB per side) in {time.perf_counter() - t:.1f} s")
        cfg = load_config(cfg_path)
        svc = SessionService(cfg, None)
        dest = svc.destinations[0]
        import datetime as dt
        keys = [SessionKey(m["participant_id"], dt.datetime.strptime(m["session_date"], "%Y%m%d").date())
                for m in manifest]
        bad_expected = sum(1 for m in manifest if m["backup"] == "partial")

        def ours(checksum: bool) -> tuple[float, int]:
            t = time.perf_counter()
            failed = sum(not o.ok for o in verify_many(svc, keys, dest, checksum=checksum))
            return time.perf_counter() - t, failed

        def ours_one_by_one() -> float:
            t = time.perf_counter()
            for k in keys:
                verify_session(svc, k, dest)
            return time.perf_counter() - t

        rsync_compare(work, ["-rn", "--size-only"])  # warm the page cache for both
        r_size, r_size_n = rsync_compare(work, ["-rn", "--size-only"])
        o_size, o_size_bad = ours(False)
        r_size2, _ = rsync_compare(work, ["-rn", "--size-only"])
        o_size2, _ = ours(False)
        r_sum, r_sum_n = rsync_compare(work, ["-rnc"])
        cache = cfg.state_dir / "hashcache.sqlite"
        cache.unlink(missing_ok=True)
        o_sum, o_sum_bad = ours(True)
        o_sum_warm, _ = ours(True)
        o_single = ours_one_by_one()
        assert o_size_bad == bad_expected and o_sum_bad == bad_expected, (o_size_bad, o_sum_bad, bad_expected)
    finally:
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    size_ratio = min(o_size, o_size2) / min(r_size, r_size2)
    print(table([
        ("what", "seconds", "found"),
        ("rsync -rn --size-only -i", f"{min(r_size, r_size2):.2f}", f"{r_size_n} files differ"),
        ("djtui verify_many (size), all sessions in one pass", f"{min(o_size, o_size2):.2f}",
         f"{o_size_bad} sessions fail"),
        ("djtui verify (size), session by session", f"{o_single:.2f}", "as `djtui verify P D` per session"),
        ("rsync -rnc -i", f"{r_sum:.2f}", f"{r_sum_n} files differ"),
        ("djtui verify_many --checksum, cold cache", f"{o_sum:.2f}", f"{o_sum_bad} sessions fail"),
        ("djtui verify_many --checksum, re-verify (cache)", f"{o_sum_warm:.2f}", ""),
    ]))
    print(f"\nsize:     djtui/rsync = {size_ratio:.2f}   (target <= 1.0)")
    print(f"checksum: rsync/djtui = {r_sum / o_sum:.2f}x  (target >= 2x); with the cache {r_sum / o_sum_warm:.1f}x")
    return 0
