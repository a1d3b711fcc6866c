"""`djtui doctor` against a real server, real directories, and a hung mount."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from djtui.config import parse_config
from djtui.services.health import probe_path, run_checks


def write_config(path, text):
    path.write_text(text)
    path.chmod(0o600)
    return path


def _cfg_text(server, tmp_path, dest_base):
    (tmp_path / "data").mkdir(exist_ok=True)
    return (f"backup:\n  source:\n    base_path: {tmp_path}/data\n"
            f"  destinations:\n    - name: nas\n      base_path: {dest_base}\n      verify_mount: false\n"
            f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
            f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
            f"state_dir: {tmp_path}/state\n")


def test_doctor_all_good_exits_0(server, tmp_path):
    (tmp_path / "backup").mkdir()
    cfg = write_config(tmp_path / "djtui.yaml", _cfg_text(server, tmp_path, tmp_path / "backup"))
    out = subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "doctor", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] is True
    server_row = next(c for c in report["checks"] if c["area"] == "database")
    assert server.flavor in server_row["detail"] and "djadmin" in server_row["detail"]
    assert server.password.reveal() not in out.stdout + out.stderr


def test_doctor_missing_destination_exits_1(server, tmp_path):
    cfg = write_config(tmp_path / "djtui.yaml", _cfg_text(server, tmp_path, tmp_path / "gone"))
    out = subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "doctor"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "does not exist" in out.stdout and "✗" in out.stdout


def test_hung_path_is_reported_not_waited_on(tmp_path):
    # a FIFO opened for reading blocks like a hung mount; probe a directory whose scandir we block instead
    gate = threading.Event()
    real_scandir = os.scandir

    def slow_scandir(path):
        if str(path) == str(tmp_path):
            gate.wait(10)
        return real_scandir(path)

    os.scandir = slow_scandir
    try:
        start = time.monotonic()
        probe = probe_path(tmp_path, timeout=0.3)
        assert time.monotonic() - start < 2
        assert probe.state == "hung" and "umount" in probe.detail
    finally:
        gate.set()
        os.scandir = real_scandir


def test_checks_report_tools(server, tmp_path):
    cfg = parse_config(_cfg_text(server, tmp_path, tmp_path))
    names = {(c.area, c.name): c for c in run_checks(cfg, timeout=2)}
    assert names[("tools", "rsync")].ok and "rsync" in names[("tools", "rsync")].detail
    assert names[("tools", "dump tool")].ok
    assert "free of" in names[("disk", "state dir")].detail
