"""Time from `djtui` start to its first frame on a real pseudo-terminal (target: under 0.5 s).

Starts the real binary under a pty, reads the terminal output until the
header has been drawn, and reports the median of several runs, beside the
time Python itself needs to start and the time `import datajoint` takes (what
the shell tool paid per question).
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def first_frame(cmd: list[str], marker: bytes, timeout: float = 20.0) -> float:
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.environ.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
        os.execvp(cmd[0], cmd)
    start = time.perf_counter()
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
                    return time.perf_counter() - start
        raise RuntimeError(f"no first frame within {timeout} s; output: {buf[-400:]!r}")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench startup", description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--config", help="config to open (default: one pointing at a closed port)")
    args = ap.parse_args(argv)
    cfg = args.config
    if cfg is None:
        tmp = Path(tempfile.mkdtemp(prefix="djtui-bench-"))
        cfg = str(tmp / "c.yaml")
        Path(cfg).write_text(f"database:\n  host: 127.0.0.1\n  port: 9\n  user: x\n  use_datajoint_config: false\n"
                             f"state_dir: {tmp}/state\n")
    djtui = [sys.executable, "-m", "djtui", "--config", cfg]
    frames = [first_frame(djtui, b"config:") for _ in range(args.runs)]
    python = [timed([sys.executable, "-c", "pass"]) for _ in range(args.runs)]
    dj = [timed([sys.executable, "-c", "import datajoint"]) for _ in range(3)]
    f, p, d = statistics.median(frames), statistics.median(python), statistics.median(dj)
    print(f"{'what':<42}{'median s':>10}")
    print(f"{'djtui start -> first frame':<42}{f:>10.3f}")
    print(f"{'python -c pass (interpreter floor)':<42}{p:>10.3f}")
    print(f"{'python -c import datajoint (per shell query)':<42}{d:>10.3f}")
    print(f"first frame target 0.5 s: {'met' if f < 0.5 else 'MISSED'}; "
          f"ratio to one DataJoint import: {f / d:.2f}")
    return 0
