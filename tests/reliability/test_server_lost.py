"""A database server killed (SIGKILL to its whole process group: MariaDB's one process, PostgreSQL's
postmaster and every backend) and started again, on MariaDB and on PostgreSQL (issue 15).

Each test starts a private server of its own (the suite's shared ones must not die). A call after the
kill fails with a clear error (exit 1: the input was fine), never a driver traceback; after the
restart on the same port the next call works on a new connection (the lost one is retried once).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from djtui.services.database import Database, DatabaseLost
from djtui.services.servers.mariadb import PrivateServer
from djtui.services.servers.postgres import PrivatePostgres

CONNECTION_ID_SQL = {"mysql": "SELECT CONNECTION_ID()", "postgresql": "SELECT pg_backend_pid()"}


@pytest.fixture(params=["mariadb", "postgresql"])
def own_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PrivateServer | PrivatePostgres]:
    srv = PrivateServer(tmp_path / "srv") if request.param == "mariadb" else PrivatePostgres(tmp_path / "srv")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def kill_server(srv: PrivateServer | PrivatePostgres) -> None:
    """SIGKILL to the server's process group (it runs in a session of its own), then reap it."""
    assert srv.proc is not None and os.getpgid(srv.pid) == srv.pid
    os.killpg(srv.pid, signal.SIGKILL)
    srv.proc.wait(timeout=30)  # a zombie would still count as a running postmaster


def config_for(srv: PrivateServer | PrivatePostgres, path: Path) -> Path:
    backend = f"  backend: postgresql\n  name: {srv.dbname}\n" if srv.backend == "postgresql" else ""
    path.write_text(f"database:\n  host: 127.0.0.1\n  port: {srv.port}\n  user: djadmin\n"
                    f"  password: {srv.password.reveal()}\n  use_datajoint_config: false\n{backend}"
                    f"state_dir: {path.parent}/state\naudit_log: {path.parent}/audit.jsonl\n")
    path.chmod(0o600)
    return path


def test_a_killed_server_is_a_clear_error_and_a_restarted_one_is_used_again(own_server, tmp_path) -> None:
    srv = own_server
    db = Database(srv.settings)
    pool = ThreadPoolExecutor(1)  # one thread: its connection is the one the server drops
    try:
        before = pool.submit(db.query, CONNECTION_ID_SQL[srv.backend]).result(10)
        port = srv.port
        kill_server(srv)

        with pytest.raises(DatabaseLost) as err:
            pool.submit(db.query, "SELECT 1").result(30)
        text = err.value.render()
        assert err.value.exit_code == 1
        assert f"lost the connection to the database at 127.0.0.1:{port}" in text and "hint:" in text
        assert srv.password.reveal() not in text and "Traceback" not in text

        # a command started while it is down: the connection error names the server, no traceback
        cfg = config_for(srv, tmp_path / "djtui.yaml")
        r = subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "users", "list"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr  # as a wrong port: the server may never have been there
        assert "cannot connect" in r.stderr and "is the server running" in r.stderr
        assert "Traceback" not in r.stderr and srv.password.reveal() not in r.stdout + r.stderr

        srv.restart(srv.password, port=port)
        assert srv.port == port
        assert pool.submit(db.query, "SELECT 41 + 1").result(30) == [(42,)]
        assert pool.submit(db.query, CONNECTION_ID_SQL[srv.backend]).result(10) != before
        assert db.probe(timeout=3) is True
    finally:
        db.close()
        pool.shutdown(wait=False)


def test_a_server_restarted_between_two_calls_is_invisible_to_a_read(own_server) -> None:
    """connection_lost + one retry: the read that finds its connection dropped runs on a new one."""
    srv = own_server
    db = Database(srv.settings)
    pool = ThreadPoolExecutor(1)
    try:
        before = pool.submit(db.query, CONNECTION_ID_SQL[srv.backend]).result(10)
        port = srv.port
        kill_server(srv)
        srv.restart(srv.password, port=port)
        assert pool.submit(db.query, "SELECT 7").result(30) == [(7,)]
        assert pool.submit(db.query, CONNECTION_ID_SQL[srv.backend]).result(10) != before
    finally:
        db.close()
        pool.shutdown(wait=False)
        with contextlib.suppress(Exception):
            srv.stop()


def test_a_server_killed_in_the_middle_of_a_command_exits_1_without_a_traceback(own_server, tmp_path) -> None:
    """`roles init` runs its statements one by one (a pause between them, DJTUI_TEST_PAUSE_BETWEEN_ITEMS);
    the server dies after the first: the command says what ran and what did not, exit 1."""
    import json
    import time

    srv = own_server
    cfg = config_for(srv, tmp_path / "djtui.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "PG"))}
    env["DJTUI_TEST_PAUSE_BETWEEN_ITEMS"] = "3"
    proc = subprocess.Popen([sys.executable, "-m", "djtui", "--config", str(cfg), "roles", "init"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    audit = tmp_path / "audit.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if audit.exists() and any(json.loads(line).get("event") == "intent" for line in audit.read_text().splitlines()):
            break
        time.sleep(0.05)
    time.sleep(1.0)  # the first statement ran; djtui waits before the second
    kill_server(srv)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err and srv.password.reveal() not in out + err
    assert "statements ran before it" in err, err
    # a dead server refused nothing: the message says the connection was lost, and names its cause once
    assert "connection to the server was lost" in err and "server refused" not in err, err
    outcome = [json.loads(line) for line in audit.read_text().splitlines() if '"outcome"' in line]
    assert outcome and outcome[-1]["status"] != "ok"
