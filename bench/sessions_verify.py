"""Verification of 100,000 files: djtui by size vs `rsync -rn --size-only -i`, by checksum vs `rsync -rnc -i`.

Both sides are the same generated trees (same layout, so rsync can compare them whole); djtui
verifies session by session as `djtui verify` does, writing its verification records. Each
round runs rsync and djtui side by side, alternating which goes first; the checksum run starts
with an empty hash cache (cold), then a re-verify shows the cache. Ratios are of the medians
over the rounds, and each process's CPU time (self + children) is printed too: on a shared
machine wall times move with the neighbours' load, CPU time much less.

    python -m bench sessions_verify [--sessions 1000] [--files 100] [--size 16384] [--repeat 3]
                                    [--dir DIR [--reuse]]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench._sessions_lab import build, table


def cpu_now() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def measure(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process and its children, result)."""
    c, t = cpu_now(), time.perf_counter()
    res = fn()
    return time.perf_counter() - t, cpu_now() - c, res


def rsync_compare(out: Path, flags: list[str]) -> int:
    p = subprocess.run(["rsync", *flags, "-i", f"{out}/src/", f"{out}/dst/"], capture_output=True, text=True,
                       env={**os.environ, "LC_ALL": "C"})
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    return sum(1 for line in p.stdout.splitlines() if line.startswith((">f", "<f", "cf")))


def c_floor(out: Path) -> int:
    """What C alone costs for the same reads: `find` both trees, hash every file with two
    `xxh128sum` processes (one per core), compare nothing. No verifier can beat this by much."""
    p = subprocess.run(f"find src dst -type f -print0 | xargs -0 -P2 -n 5000 {shutil.which('xxh128sum')}",
                       shell=True, cwd=out, capture_output=True, env={**os.environ, "LC_ALL": "C"})
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode(errors="replace"))
    return p.stdout.count(b"\n")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench sessions_verify", description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--size", type=int, default=16384, help="bytes per file (real content: checksums read it)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported (default 3)")
    ap.add_argument("--dir", type=Path, help="build the trees here and keep them")
    ap.add_argument("--reuse", action="store_true", help="with --dir: use the trees a previous run left there")
    a = ap.parse_args(argv)
    from djtui.config import load_config
    from djtui.domain.sessions import SessionKey
    from djtui.services.sessions import SessionService
    from djtui.services.transfers import verify_many, verify_session

    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-sess-verify-"))
    saved = work / "bench-manifest.json"
    try:
        if a.reuse and saved.is_file():
            cfg_path, manifest = work / "djtui.yaml", json.loads(saved.read_text())
            print(f"reusing the trees in {work}")
        else:
            t = time.perf_counter()
            cfg_path, manifest = build(work, sessions=a.sessions, files=a.files, server=None, size=a.size,
                                       sparse=False, same_layout=True, states="full=0.95,partial=0.05")
            saved.write_text(json.dumps(manifest))
            n = a.sessions * a.files
            print(f"generated {n} files ({n * a.size / 1e9:.2f} GB per side) in {time.perf_counter() - t:.1f} s")
        cfg = load_config(cfg_path)
        svc = SessionService(cfg, None)
        dest = svc.destinations[0]
        keys = [SessionKey(m["participant_id"], dt.datetime.strptime(m["session_date"], "%Y%m%d").date())
                for m in manifest]
        bad_expected = sum(1 for m in manifest if m["backup"] == "partial")
        cache = cfg.state_dir / "hashcache.sqlite"

        def ours(checksum: bool, cold: bool = False) -> int:
            if cold:
                for p in (cache, Path(f"{cache}-wal"), Path(f"{cache}-shm")):
                    p.unlink(missing_ok=True)
            failed = sum(not o.ok for o in verify_many(svc, keys, dest, checksum=checksum))
            assert failed == bad_expected, (failed, bad_expected)
            return failed

        rsync_compare(work, ["-rn", "--size-only"])  # warm the page cache (metadata) for both
        rsync_compare(work, ["-rnc"])  # and the content
        floor = shutil.which("xxh128sum") is not None  # Debian package xxhash
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in
                                                     ("r_size", "o_size", "r_sum", "o_cold", "o_warm", "c_floor")}
        found = {}
        for i in range(a.repeat):
            order = [("r_size", lambda: rsync_compare(work, ["-rn", "--size-only"])),
                     ("o_size", lambda: ours(False))]
            order_sum = [("r_sum", lambda: rsync_compare(work, ["-rnc"])), ("o_cold", lambda: ours(True, True))]
            if i % 2:
                order.reverse()
                order_sum.reverse()
            extra = [("c_floor", lambda: c_floor(work))] if floor else []
            for name, fn in [*order, *order_sum, ("o_warm", lambda: ours(True)), *extra]:
                wall, cpu, res = measure(fn)
                runs[name].append((wall, cpu))
                found[name] = res
            print(f"round {i + 1}: " + "  ".join(f"{k} {runs[k][-1][0]:.2f}s" for k in runs if runs[k]))
        single, _cpu, _ = measure(lambda: [verify_session(svc, k, dest) for k in keys])
    finally:
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)

    def med(name: str, i: int = 0) -> float:
        return statistics.median(r[i] for r in runs[name])

    def row(label: str, name: str, note: str) -> tuple[str, str, str, str]:
        walls = ", ".join(f"{w:.2f}" for w, _c in runs[name])
        return (label, f"{med(name):.2f}  ({walls})", f"{med(name, 1):.2f}", note)

    print()
    print(table([
        ("what", "median s  (each round)", "CPU s", "found"),
        row("rsync -rn --size-only -i", "r_size", f"{found['r_size']} files differ"),
        row("djtui verify_many (size), all sessions in one pass", "o_size", f"{found['o_size']} sessions fail"),
        ("djtui verify (size), session by session", f"{single:.2f}", "", "as `djtui verify P D` per session"),
        row("rsync -rnc -i", "r_sum", f"{found['r_sum']} files differ"),
        row("djtui verify_many --checksum, cold cache", "o_cold", f"{found['o_cold']} sessions fail"),
        row("djtui verify_many --checksum, re-verify (cache)", "o_warm", ""),
        *([row("C floor: find | xargs -P2 xxh128sum, both trees", "c_floor", f"{found['c_floor']} digests")]
          if runs["c_floor"] else []),
    ]))
    print(f"\nsize:     djtui/rsync = {med('o_size') / med('r_size'):.2f}   (target <= 1.0)"
          f"   CPU djtui/rsync = {med('o_size', 1) / med('r_size', 1):.2f}")
    print(f"checksum: rsync/djtui = {med('r_sum') / med('o_cold'):.2f}x  (target >= 2x); "
          f"with the cache {med('r_sum') / med('o_warm'):.1f}x   CPU rsync/djtui = "
          f"{med('r_sum', 1) / med('o_cold', 1):.2f}x")
    if runs["c_floor"]:
        print(f"          rsync/C floor = {med('r_sum') / med('c_floor'):.2f}x: the most any verifier reading "
              f"every byte gets here (apt-get install xxhash for the floor)")
    print(f"(medians of {a.repeat} rounds; load average at the end: {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs)")
    return 0
