"""Time from `djtui` start to its first frame on a real pseudo-terminal (target: 0.3 s).

Starts the real binary under a pty, reads the terminal output until the
header has been drawn, and reports the median, p99 and maximum of several runs,
beside `djtui --help`, the time Python itself needs to start and the time
`import datajoint` takes (what the shell tool paid per question). The
temporary config folder it makes is removed at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import pty
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.3


def first_frame(cmd: list[str], marker: bytes, timeout: float = 20.0) -> tuple[float, float]:
    """Wall seconds from exec to the marker on the terminal, and the CPU seconds the child used until then.

    CPU time (user+sys, the child is killed at the marker) is steadier than wall time on a busy machine.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.environ.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
        os.execvp(cmd[0], cmd)
    start = time.perf_counter()
    wall = None
    buf = b""
    try:
        while time.perf_counter() - start < timeout:
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                buf += chunk
                if marker in buf:
                    wall = time.perf_counter() - start
                    break
        if wall is None:
            raise RuntimeError(f"no first frame within {timeout} s; output: {buf[-400:]!r}")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: with fewer than 100 runs, p99 is the maximum."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def row(what: str, values: list[float]) -> str:
    return (f"{what:<44}{statistics.median(values):>9.3f}{percentile(values, 99):>9.3f}{max(values):>9.3f}"
            f"{min(values):>9.3f}{len(values):>6}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench startup", description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--config", help="config to open (default: one pointing at a closed port)")
    args = ap.parse_args(argv)
    # what an install has: byte-compiled modules (pip writes them; a checkout run with PYTHONDONTWRITEBYTECODE=1
    # would otherwise time Python compiling djtui's UI modules, ~50 ms, on every start)
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "djtui"), quiet=1)
    tmp = None
    cfg = args.config
    try:
        if cfg is None:
            tmp = Path(tempfile.mkdtemp(prefix="djtui-bench-"))
            cfg = str(tmp / "c.yaml")
            Path(cfg).write_text(f"database:\n  host: 127.0.0.1\n  port: 9\n  user: x\n"
                                 f"  use_datajoint_config: false\nstate_dir: {tmp}/state\n")
        djtui = [sys.executable, "-m", "djtui", "--config", cfg]
        frames: list[float] = []
        cpu: list[float] = []
        python: list[float] = []
        helps: list[float] = []
        floor: list[float] = []
        bare = [sys.executable, str(Path(__file__).resolve().parent / "_textual_floor.py")]
        for _ in range(args.runs):  # interleaved, so a busy moment on a shared machine hits every row alike
            wall, used = first_frame(djtui, b"config:")
            frames.append(wall)
            cpu.append(used)
            python.append(timed([sys.executable, "-c", "pass"]))
            helps.append(timed([sys.executable, "-m", "djtui", "--help"]))
            floor.append(first_frame(bare, b"config:")[0])
        dj = [timed([sys.executable, "-c", "import datajoint"]) for _ in range(3)]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    f, d = statistics.median(frames), statistics.median(dj)
    print(f"{'what (seconds)':<44}{'median':>9}{'p99':>9}{'max':>9}{'min':>9}{'runs':>6}")
    print(row("djtui start -> first frame", frames))
    print(row("  the same, CPU seconds (user+sys)", cpu))
    print(row("bare Textual app, same widgets -> first frame", floor))
    print(row("djtui --help", helps))
    print(row("python -c pass (interpreter floor)", python))
    print(row("python -c import datajoint (per shell query)", dj))
    print(f"first frame target {TARGET_S} s (median): {'met' if f <= TARGET_S else 'MISSED'}; "
          f"ratio to one DataJoint import: {f / d:.2f}; to the bare Textual app: {f / statistics.median(floor):.2f}")
    return 0
