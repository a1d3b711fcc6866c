"""Verification of 100,000 files: djtui by size vs `rsync -rn --size-only -i`, by checksum vs `rsync -rnc -i`.

Both sides are the same generated trees (same layout, so rsync can compare them whole); djtui
verifies session by session as `djtui verify` does, writing its verification records. Each
round runs rsync and djtui side by side as a pair, alternating which goes first; the ratio is the
median of the pairs' ratios (rounds move by +-20% with the neighbours' load, a pair much less),
printed with its spread. The checksum run starts with an empty hash cache (cold), then a re-verify
shows the cache. Each process's CPU time (self + children) is printed too.

The trees are kept in --dir (default /tmp/djtui-bench-verify-<sessions>x<files>x<size>) and reused.

    python -m bench sessions_verify [--sessions 1000] [--files 100] [--size 16384] [--repeat 7]
                                    [--only size|checksum] [--dir DIR] [--fresh]
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


def find_floor(out: Path) -> int:
    """What the size check's reads cost in C: `find` of both trees at once (size and mtime of every
    file), output read and dropped. A verifier that stats every file on both sides needs this much."""
    procs = [subprocess.Popen(["find", str(out / side), "-printf", "%P\\0%s\\0%T@\\0"], stdout=subprocess.PIPE)
             for side in ("src", "dst")]
    total = 0
    for p in procs:
        assert p.stdout is not None
        total += len(p.stdout.read())
        p.wait()
    return total


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench sessions_verify", description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--size", type=int, default=16384, help="bytes per file (real content: checksums read it)")
    ap.add_argument("--repeat", type=int, default=7, help="paired rounds; medians are reported (default 7)")
    ap.add_argument("--only", choices=("size", "checksum"), help="run one half only")
    ap.add_argument("--dir", type=Path, help="where the trees are kept (default /tmp/djtui-bench-verify-...)")
    ap.add_argument("--fresh", action="store_true", help="build new trees even if --dir holds some")
    a = ap.parse_args(argv)
    from djtui.config import load_config
    from djtui.domain.sessions import SessionKey
    from djtui.services.sessions import SessionService
    from djtui.services.transfers import verify_many, verify_session

    work = a.dir or Path(f"/tmp/djtui-bench-verify-{a.sessions}x{a.files}x{a.size}")
    saved = work / "bench-manifest.json"
    if not a.fresh and saved.is_file():
        cfg_path, manifest = work / "djtui.yaml", json.loads(saved.read_text())
        print(f"reusing the trees in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
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
    if a.only != "size":
        rsync_compare(work, ["-rnc"])  # and the content
    floor = a.only != "size" and shutil.which("xxh128sum") is not None  # Debian package xxhash
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in
                                                 ("r_size", "o_size", "f_size", "r_sum", "o_cold", "o_warm", "c_floor")}
    found: dict[str, object] = {}
    for i in range(a.repeat):
        order = [("r_size", lambda: rsync_compare(work, ["-rn", "--size-only"])),
                 ("o_size", lambda: ours(False)),
                 ("f_size", lambda: find_floor(work))] if a.only != "checksum" else []
        order_sum = [("r_sum", lambda: rsync_compare(work, ["-rnc"])),
                     ("o_cold", lambda: ours(True, True))] if a.only != "size" else []
        if i % 2:
            order.reverse()
            order_sum.reverse()
        extra = [("c_floor", lambda: c_floor(work))] if floor else []
        warm = [("o_warm", lambda: ours(True))] if a.only != "size" else []
        for name, fn in [*order, *order_sum, *warm, *extra]:
            wall, cpu, res = measure(fn)
            runs[name].append((wall, cpu))
            found[name] = res
        print(f"round {i + 1}: " + "  ".join(f"{k} {runs[k][-1][0]:.2f}s" for k in runs if len(runs[k]) > i),
              flush=True)
    single = measure(lambda: [verify_session(svc, k, dest) for k in keys])[0] if a.only != "checksum" else 0.0
    report(runs, found, single, a.repeat)
    return 0


def paired(runs: dict[str, list[tuple[float, float]]], ours: str, theirs: str, invert: bool = False) -> str:
    """Median of the per-round ratios, with their spread (min..max and quartiles)."""
    rs = sorted((t[0] / o[0]) if invert else (o[0] / t[0]) for o, t in zip(runs[ours], runs[theirs], strict=True))
    q = statistics.quantiles(rs, n=4) if len(rs) > 1 else [rs[0]] * 3
    return f"{statistics.median(rs):.2f} (spread {rs[0]:.2f}..{rs[-1]:.2f}, quartiles {q[0]:.2f}..{q[2]:.2f})"


def report(runs: dict[str, list[tuple[float, float]]], found: dict[str, object], single: float, repeat: int) -> None:
    def med(name: str, i: int = 0) -> float:
        return statistics.median(r[i] for r in runs[name])

    def row(label: str, name: str, note: str) -> tuple[str, str, str, str]:
        walls = ", ".join(f"{w:.2f}" for w, _c in runs[name])
        return (label, f"{med(name):.2f}  ({walls})", f"{med(name, 1):.2f}", note)

    rows = [("what", "median s  (each round)", "CPU s", "found")]
    if runs["o_size"]:
        rows += [row("rsync -rn --size-only -i", "r_size", f"{found['r_size']} files differ"),
                 row("djtui verify_many (size), all sessions in one pass", "o_size",
                     f"{found['o_size']} sessions fail"),
                 ("djtui verify (size), session by session", f"{single:.2f}", "", "as `djtui verify P D` per session"),
                 row("floor: find both trees at once, output read", "f_size", f"{found['f_size']} bytes")]
    if runs["o_cold"]:
        rows += [row("rsync -rnc -i", "r_sum", f"{found['r_sum']} files differ"),
                 row("djtui verify_many --checksum, cold cache", "o_cold", f"{found['o_cold']} sessions fail"),
                 row("djtui verify_many --checksum, re-verify (cache)", "o_warm", "")]
    if runs["c_floor"]:
        rows.append(row("C floor: find | xargs -P2 xxh128sum, both trees", "c_floor", f"{found['c_floor']} digests"))
    print()
    print(table(rows))
    if runs["o_size"]:
        print(f"\nsize:     djtui/rsync, paired rounds = {paired(runs, 'o_size', 'r_size')}   (target <= 0.8)"
              f"\n          ratio of the medians {med('o_size') / med('r_size'):.2f}; "
              f"CPU djtui/rsync = {med('o_size', 1) / med('r_size', 1):.2f}"
              f"\n          floor/rsync, paired rounds = {paired(runs, 'f_size', 'r_size')}; "
              f"djtui/floor = {paired(runs, 'o_size', 'f_size')}")
    if runs["o_cold"]:
        print(f"checksum: rsync/djtui, paired rounds = {paired(runs, 'o_cold', 'r_sum', invert=True)}x  "
              f"(target >= 2x); with the cache {med('r_sum') / med('o_warm'):.1f}x   CPU rsync/djtui = "
              f"{med('r_sum', 1) / med('o_cold', 1):.2f}x")
    if runs["c_floor"]:
        print(f"          rsync/C floor = {med('r_sum') / med('c_floor'):.2f}x: the most any verifier reading "
              f"every byte gets here (apt-get install xxhash for the floor)")
    print(f"(medians of {repeat} paired rounds, order alternating; load average at the end: "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
