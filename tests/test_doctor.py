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


def _run_doctor(args, *, home, cwd, env_extra=None, columns=80):
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "COLUMNS": str(columns), "LC_ALL": "C.UTF-8",
           **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "djtui", *args, "doctor"], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**env, "PYTHONPATH": os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__)))})


def test_doctor_in_an_empty_home_names_the_files_it_searched_and_what_to_do(tmp_path):
    from rich.cells import cell_len
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    out = _run_doctor([], home=home, cwd=cwd)
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout
    for searched in ("./backup_config.yaml", "~/.config/djtui/config.yaml", "~/.datajoint_config.json",
                     "./dj_local_conf.json"):
        assert searched in text
    assert "$DJTUI_CONFIG" in text and "datajoint.json" in text and "DJ_*" in text
    assert "djtui init" in text and "djtui demo" in text
    assert "1 problem:" in text and "problem(s)" not in text
    assert max(cell_len(line) for line in text.splitlines()) <= 80, text
    # the missing user is said once, not once in the message and again in its hint
    assert text.count("no database user") == 1, text


def test_doctor_says_where_each_connection_value_came_from_never_the_value(server, tmp_path):
    (tmp_path / "cwd").mkdir()
    cfg = write_config(tmp_path / "djtui.yaml", f"database:\n  host: 127.0.0.1\n  port: {server.port}\n"
                                                f"state_dir: {tmp_path}/state\n")
    out = _run_doctor(["--config", str(cfg)], home=tmp_path, cwd=tmp_path / "cwd",
                      env_extra={"DJ_USER": "djadmin", "DJ_PASS": server.password.reveal()}, columns=200)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "password from DJ_PASS" in out.stdout and "user from DJ_USER" in out.stdout
    assert "host from config file" in out.stdout
    assert server.password.reveal() not in out.stdout + out.stderr


def test_doctor_on_a_datajoint_0_14_lab_does_not_warn_about_2x_on_mariadb(server, tmp_path, admin_conn, schema_name):
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema_name}`")
        cur.execute(f"CREATE TABLE `{schema_name}`.`~external_raw` (hash BINARY(16) PRIMARY KEY)")
    cfg = parse_config(_cfg_text(server, tmp_path, tmp_path))
    checks = run_checks(cfg, timeout=2)
    dj = next(c for c in checks if c.name == "datajoint")
    assert dj.detail.startswith("0.14"), dj
    assert not any("best-effort" in c.detail for c in checks)


def test_doctor_checks_stores_orphan_directories_and_quarantine(server, tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "managed").mkdir()
    text = _cfg_text(server, tmp_path, tmp_path) + (
        f"stores:\n  raw:\n    protocol: file\n    location: {tmp_path}/store\n"
        f"  gone:\n    protocol: file\n    location: {tmp_path}/no-such-store\n"
        f"orphans:\n  directories:\n    - path: {tmp_path}/managed\n      table: lab.files\n      column: path\n"
        f"  quarantine_dir: {tmp_path}/quarantine\n")
    checks = {(c.area, c.name): c for c in run_checks(parse_config(text), timeout=2)}
    assert checks[("stores", "raw")].ok and "writable" in checks[("stores", "raw")].detail
    assert " at /" in checks[("stores", "raw")].detail  # names the filesystem and its mount point
    assert not checks[("stores", "gone")].ok and "does not exist" in checks[("stores", "gone")].detail
    assert checks[("orphans", "directory (lab.files)")].ok
    q = checks[("orphans", "quarantine")]
    assert q.ok and "created at first use" in q.detail
