"""The private server: starts on loopback with a random admin password, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest

from djtui.errors import UserError
from djtui.services.servers.mariadb import PrivateServer
from djtui.services.servers.process import read_state, stop_detached


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie that is our child counts as gone
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_lifecycle_and_cleanup():
    srv = PrivateServer()
    srv.start()
    base, pid, port = srv.base_dir, srv.pid, srv.port
    try:
        assert srv.settings.host == "127.0.0.1" and port > 0
        conn = srv.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone()[0].startswith("djadmin@")
            cur.execute("SELECT COUNT(*) FROM mysql.user WHERE user = ''")
            assert cur.fetchone()[0] == 0  # no anonymous users
        conn.close()
        # root has no empty password any more
        with pytest.raises(pymysql.err.OperationalError):
            pymysql.connect(host="127.0.0.1", port=port, user="root", password="", connect_timeout=2)
        state = read_state(base)
        assert state and state["pid"] == pid
        assert "password" not in state
    finally:
        srv.stop()
    assert not _alive(pid)
    assert not base.exists()


def test_second_server_in_same_dir_is_refused(tmp_path, server):
    srv = PrivateServer(tmp_path / "x")
    srv.start()
    try:
        with pytest.raises(UserError, match="already uses"):
            PrivateServer(tmp_path / "x").start()
    finally:
        srv.stop()
    assert not (tmp_path / "x" / "data").exists()


def test_server_dies_with_its_parent_on_sigkill(tmp_path):
    code = (
        "import sys, time; from djtui.services.servers.mariadb import PrivateServer; "
        f"s = PrivateServer({str(tmp_path / 'k')!r}); s.start(); print(s.pid, flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())
    assert _alive(pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def test_detached_server_outlives_its_starter_and_stops(tmp_path):
    code = (
        "from djtui.services.servers.mariadb import PrivateServer; "
        f"s = PrivateServer({str(tmp_path / 'd')!r}, detached=True); s.start(); print(s.pid)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[-1])
    assert _alive(pid)
    assert stop_detached(tmp_path / "d") is True
    assert not _alive(pid)
    assert read_state(tmp_path / "d") is None
    assert stop_detached(tmp_path / "d") is False
