"""The audit log records intent before and outcome after; locks exclude a second operator."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import pytest

from djtui.services import commandlog
from djtui.services.audit import AuditLog
from djtui.services.locks import LockBusy, exclusive


def test_intent_then_outcome(tmp_path):
    log = AuditLog(tmp_path / "a" / "audit.jsonl")
    with log.action("delete-session", session="p1/20250101", files=3) as rec:
        assert [e["event"] for e in log.entries()] == ["intent"]
    entries = log.entries()
    assert [e["event"] for e in entries] == ["intent", "outcome"]
    assert entries[1]["status"] == "ok" and entries[1]["id"] == rec.action_id
    assert entries[0]["details"]["session"] == "p1/20250101" and entries[0]["actor"]["os_user"]
    assert entries[0]["actor"]["host"]
    assert oct((tmp_path / "a" / "audit.jsonl").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(RuntimeError), log.action("delete-session"):
        raise RuntimeError("disk gone")
    last = log.entries()[-1]
    assert last["status"] == "failed" and "disk gone" in last["details"]["error"]
    assert log.interrupted() == []


def test_sigkilled_action_is_reported_as_interrupted(tmp_path):
    path = tmp_path / "audit.jsonl"
    code = ("import time; from djtui.services.audit import AuditLog; "
            f"log = AuditLog({str(path)!r}); rec = log.intent('bulk-delete', sessions=5); "
            "print('ready', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    log = AuditLog(path)
    assert log.interrupted() == []  # still running: not interrupted
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (cut,) = log.interrupted()
    assert cut["action"] == "bulk-delete"
    log.acknowledge(cut["id"], "checked by hand")
    assert log.interrupted() == []


def test_torn_last_line_is_skipped(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write({"event": "intent", "id": "x", "action": "a"})
    with open(log.path, "a") as fh:
        fh.write('{"event": "outc')
    assert len(log.entries()) == 1


def test_secrets_are_masked_in_the_audit_log(tmp_path):
    commandlog.add_secret("s3cr3t-value-42")
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write({"event": "intent", "id": "y", "action": "x", "note": "password s3cr3t-value-42"})
    assert "s3cr3t-value-42" not in log.path.read_text()


def _hold(state_dir, name, ready, release):
    with exclusive(state_dir, name, purpose="bulk delete"):
        ready.set()
        release.wait(30)


def test_second_holder_is_refused_and_told_who(tmp_path):
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(tmp_path, "source:/data", ready, release))
    proc.start()
    try:
        assert ready.wait(10)
        with pytest.raises(LockBusy) as info, exclusive(tmp_path, "source:/data"):
            pass
        assert f"pid {proc.pid}" in str(info.value) and "bulk delete" in str(info.value)
        with exclusive(tmp_path, "source:/other"):
            pass  # another name is free
    finally:
        release.set()
        proc.join(10)
    with exclusive(tmp_path, "source:/data"):
        pass


def test_lock_of_a_killed_holder_is_free(tmp_path):
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(tmp_path, "n", ready, release))
    proc.start()
    assert ready.wait(10)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    start = time.monotonic()
    with exclusive(tmp_path, "n", wait=5):
        assert time.monotonic() - start < 5
    info = json.loads(next((tmp_path / "locks").iterdir()).read_text())
    assert info["pid"] == os.getpid()


def test_details_named_user_or_host_never_replace_the_actor(tmp_path):
    """`users add alice` used to log `"user": "alice"` where the actor (the OS user) belonged."""
    import getpass
    import socket
    log = AuditLog(tmp_path / "audit.jsonl", db_user="root")
    with log.action("users-add", target="alice", user="alice", host="10.0.%", pid=1, actor="mallory"):
        pass
    refused = log.event("outcome", "delete-session", status="refused", target="p1 2025-01-01", user="x")
    for e in log.entries():
        assert e["actor"] == {"os_user": getpass.getuser(), "db_user": "root", "host": socket.gethostname(),
                              "pid": os.getpid()}, e
        assert "user" not in e and "host" not in e
    intent, outcome, refusal = log.entries()
    assert intent["target"] == "alice" and intent["details"] == {"user": "alice", "host": "10.0.%", "pid": 1,
                                                                 "actor": "mallory"}
    assert outcome["status"] == "ok" and outcome["target"] == "alice"
    assert refusal["id"] == refused and refusal["details"] == {"user": "x"}


def test_interrupted_reads_lines_written_before_the_actor_field(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write({"event": "intent", "id": "old1", "action": "bulk-delete", "user": "op", "host": "elsewhere",
               "pid": 1, "sessions": ["a", "b"]})
    (cut,) = log.interrupted()
    from djtui.cli.audit import describe
    assert "bulk-delete of 2 sessions (a, b)" in describe(cut) and "by op" in describe(cut)
