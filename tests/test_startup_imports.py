"""The first frame pays only for what it draws (issue 17 item 2).

The real app runs under a pseudo-terminal with the test hook that makes it write ``sys.modules``
right after its first frame and exit; the heavy libraries that only other screens or the CLI's
other commands use must not be among them. The CLI's help and ``doctor --help`` are checked the
same way with ``-X importtime``.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from djtui.services.testhook import FIRST_FRAME_ENV

HEAVY = ("networkx", "datajoint", "boto3", "botocore", "numpy")
# what the first frame (the Sessions screen) does not draw: the other screens, their services, the
# CLI's other commands (they import their services: 0.2 s), the drivers (the connection comes after the
# frame) and importlib.metadata (the version, only for --version)
NOT_DRAWN = ("djtui.tui.screens.transfers", "djtui.tui.screens.orphans", "djtui.tui.screens.export",
             "djtui.tui.screens.accounts", "djtui.tui.screens.backups", "djtui.services.orphans",
             "djtui.services.export", "djtui.services.accounts", "djtui.services.dbbackup",
             "djtui.services.maintenance", "djtui.services.stores", "djtui.domain.cascade",
             "djtui.cli.sessions", "djtui.cli.orphans", "djtui.cli.export", "djtui.cli.doctor",
             "djtui.cli.maintenance", "pymysql", "psycopg2", "importlib.metadata",
             # the Sessions screen's services load when its first listing starts, after the frame:
             # discovery (psutil), the verify records (sqlite3), deleting (locks, hashing), the job queue (rsync)
             "djtui.services.sessions", "djtui.services.transfers", "djtui.tui.widgets.confirm", "psutil",
             "sqlite3", "xxhash")


def _first_frame_modules(tmp_path: Path) -> set[str]:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database:\n  host: 127.0.0.1\n  port: 9\n  user: x\n  use_datajoint_config: false\n"
                   f"state_dir: {tmp_path}/state\n")
    report = tmp_path / "modules.txt"
    env = {**os.environ, FIRST_FRAME_ENV: str(report), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    pid, fd = pty.fork()
    if pid == 0:  # child: the real entry point, on a real terminal
        os.execvpe(sys.executable, [sys.executable, "-m", "djtui", "--config", str(cfg)], env)
    out = b""
    deadline = time.monotonic() + 30
    status = None
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    pass
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert report.exists(), f"the app did not report its first frame (status {status}); output: {out[-600:]!r}"
    assert b"config:" in out, "the first frame (the header) was not drawn before the report"
    return set(report.read_text().split())


def test_first_frame_does_not_import_heavy_libraries(tmp_path: Path) -> None:
    loaded = _first_frame_modules(tmp_path)
    assert "djtui.tui.screens.status" in loaded  # the sessions screen drew the first frame
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"imported before the first frame: {sorted({m.split('.')[0] for m in heavy})}"
    early = sorted(m for m in NOT_DRAWN if m in loaded)
    assert not early, f"the first frame imported what it does not draw: {early}"
    # start-up runs without the garbage collector (cli.main); the first frame turns it on again
    assert "gc-enabled=True" in loaded


def _cli_modules(*args: str, ok: tuple[int, ...] = (0,)) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "djtui", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in ok, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def test_cli_help_and_doctor_do_not_import_heavy_libraries(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database:\n  host: 127.0.0.1\n  port: 9\n  user: x\n  use_datajoint_config: false\n"
                   f"state_dir: {tmp_path}/state\n")
    for args, ok in ((("--help",), (0,)), (("doctor", "--help"), (0,)),
                     (("--config", str(cfg), "doctor"), (1,))):  # 1: doctor finds no server on port 9
        heavy = sorted(m for m in _cli_modules(*args, ok=ok) if m.split(".")[0] in HEAVY)
        assert not heavy, f"djtui {' '.join(args)} imported {heavy}"


def test_lazy_screen_table_matches_the_screens() -> None:
    """The key map, help and palette read titles from the table; each must be its screen's own title."""
    from djtui.tui.app import SCREEN_TABLE, SCREENS
    for name, entry in SCREEN_TABLE.items():
        key, cls = SCREENS[name]
        assert (key, entry.title) == (entry.key, cls.SCREEN_TITLE), name
