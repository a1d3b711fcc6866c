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


# -- every audited CLI action names its real actor (issue 13.2) ------------------------------------------


@pytest.fixture(scope="module")
def alab(server, tmp_path_factory):
    """R3's lab (session, stale temp files, a backup), the lab user as djtui's database user."""
    import datetime as dt
    import shutil

    from djtui import labschema
    from djtui.cli import main
    from tests.reliability._r3_lab import DATE, PASSWORD, PASSWORD_ENV, PID, build, drop

    lab = build(server, tmp_path_factory.mktemp("audit_actor"))
    old = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = PASSWORD
    try:
        conn = server.connect()
        with conn.cursor() as cur:
            labschema.insert_session(cur, "002", dt.date(2025, 1, 4), labschema.ImportPlan(),
                                     sessions=lab.schemas["sessions"], multicamera=lab.schemas["multicamera"],
                                     pose=lab.schemas["pose"])
        conn.close()
        second = lab.root / "source" / "p002" / DATE
        second.mkdir(parents=True)
        (second / "cam0.mp4").write_bytes(os.urandom(1000))
        cfg = str(lab.config_path)
        for pid in (PID, "p002"):
            assert main(["--config", cfg, "sync", pid, DATE]) == 0
            assert main(["--config", cfg, "verify", pid, DATE]) == 0
        assert main(["--config", cfg, "dbbackup", "run", "--no-copy", "--schemas-only"]) == 0
        backup = next((lab.root / "backups").iterdir())
        for day in range(1, 13):
            shutil.copytree(backup, backup.with_name(f"2020-01-{day:02d}_000000"))
        yield lab
    finally:
        if old is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = old
        conn = server.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT User, Host FROM mysql.user WHERE User LIKE 'aud\\_%'")
            for u, h in cur.fetchall():
                cur.execute("DROP USER %s@%s", (u, h))
            cur.execute("SHOW GRANTS FOR dj_user")
            if any("auditmod" in line for (line,) in cur.fetchall()):
                cur.execute("REVOKE ALL PRIVILEGES ON `auditmod\\_%`.* FROM dj_user")
        conn.close()
        drop(lab)


AUD_USER = f"aud_{os.getpid()}"
PW_USER = f"aud_pw{os.getpid()}"


def _sql(lab, *statements: str) -> None:
    conn = lab.server.connect()
    try:
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s)
    finally:
        conn.close()


def _passwd_config(lab) -> list[str]:
    from tests.reliability._r3_lab import PASSWORD_ENV, config_text
    _sql(lab, f"CREATE USER '{PW_USER}'@'%' IDENTIFIED BY 'Old-pass-123'")
    cfg = lab.root / "pw.yaml"
    cfg.write_text(config_text(lab).replace(f"user: {lab.user}", f"user: {PW_USER}").replace(
        f"password_env: {PASSWORD_ENV}", "password: Old-pass-123"))
    cfg.chmod(0o600)
    return ["--config", str(cfg), "passwd", "--password-stdin"]


def _batch(lab) -> str:
    done = [e for e in AuditLog(lab.root / "audit.jsonl").entries()
            if e.get("action") == "orphans-quarantine" and e.get("event") == "outcome"]
    return done[-1]["details"]["batch"]


def _stale(lab) -> list[str]:
    old = time.time() - 5 * 86400
    path = lab.root / "tmp" / "again.part"
    path.write_bytes(b"z" * 100)
    os.utime(path, (old, old))
    return ["orphans", "quarantine", "--source", f"dir:{lab.root}/tmp", "--confirm", "QUARANTINE"]


def _purge(lab) -> list[str]:
    assert _cli(["--config", str(lab.config_path), *_stale(lab)]) == 0  # something in the quarantine to purge
    return ["orphans", "purge", "--older-than", "0"]


# (id, argv or a function of the lab giving argv, action, target, db user: "lab"/"pw"/None, a `user` detail)
AUDITED = [
    ("users add", lambda lab: ["users", "add", AUD_USER, "--role", "guest"], "users-add", AUD_USER, "lab", True),
    ("users reset-password", lambda lab: ["users", "reset-password", AUD_USER], "users-reset-password", AUD_USER,
     "lab", True),
    ("users set-role", lambda lab: ["users", "set-role", AUD_USER, "collab", "--confirm", AUD_USER],
     "users-set-role", f"{AUD_USER}@%", "lab", True),
    ("users lock", lambda lab: ["users", "lock", AUD_USER, "--confirm", AUD_USER], "users-lock", f"{AUD_USER}@%",
     "lab", True),
    ("users unlock", lambda lab: ["users", "unlock", AUD_USER, "--confirm", AUD_USER], "users-unlock",
     f"{AUD_USER}@%", "lab", True),
    ("users fix", lambda lab: (_sql(lab, f"GRANT DELETE ON mysql.* TO '{AUD_USER}'@'%'"),
                               ["users", "fix", AUD_USER, "--confirm", "FIX"])[1], "users-fix", AUD_USER, "lab", False),
    ("users drop", lambda lab: ["users", "drop", AUD_USER, "--confirm", f"DROP {AUD_USER}"], "users-drop",
     f"{AUD_USER}@%", "lab", True),
    ("roles add-module", lambda lab: ["roles", "add-module", "auditmod"], "roles-add-module", "auditmod", "lab", False),
    ("roles init", lambda lab: (_sql(lab, "REVOKE ALL PRIVILEGES ON `auditmod\\_%`.* FROM dj_user",
                                     "REVOKE SELECT ON `%\\_%`.* FROM dj_guest"), ["roles", "init"])[1],
     "roles-init", "roles init: the four djtui roles", "lab", False),
    ("passwd", _passwd_config, "passwd", PW_USER, "pw", False),
    ("delete", lambda lab: ["delete", "p001", "20250104", "--confirm", "DELETE"], "delete-session", "p001 20250104",
     "lab", False),
    ("bulk-delete", lambda lab: ["bulk-delete", "--confirm", "DELETE ALL"], "bulk-delete", "1 sessions", "lab", False),
    ("orphans quarantine", _stale, "orphans-quarantine", None, "lab", False),
    ("orphans restore", lambda lab: ["orphans", "restore", _batch(lab)], "orphans-restore", None, "lab", False),
    ("orphans purge", lambda lab: _purge(lab), "orphans-purge", "quarantine batches older than 0 days", None,
     False),
    ("maintenance tmp-clean", lambda lab: ["maintenance", "tmp-clean", "--days", "1"], "tmp-clean", None, None,
     False),
    ("dbbackup prune", lambda lab: ["dbbackup", "prune", "--confirm", "PRUNE"], "dbbackup-prune", None, None, False),
]


def _cli(argv: list[str]) -> int:
    from djtui.cli import main
    return main(argv)


@pytest.mark.parametrize(("case", "make_argv", "action", "target", "db", "user_detail"), AUDITED,
                         ids=[c[0] for c in AUDITED])
def test_every_audited_cli_action_names_the_real_actor(alab, case, make_argv, action, target, db, user_detail,
                                                       monkeypatch, capsys):
    import getpass
    import io
    import socket
    log = AuditLog(alab.root / "audit.jsonl")
    before = len(log.entries())
    argv = make_argv(alab)
    if argv[0] != "--config":
        argv = ["--config", str(alab.config_path), *argv]
    monkeypatch.setattr(sys, "stdin", io.StringIO("New-pass-456\n"))
    code = _cli(argv)
    out = capsys.readouterr()
    assert code == 0, (case, out.out[-2000:], out.err[-2000:])
    mine = [e for e in log.entries()[before:] if e.get("action") == action]
    assert [e["event"] for e in mine][-2:] == ["intent", "outcome"], (case, mine)
    want_db = {"lab": alab.user, "pw": PW_USER, None: None}[db]
    for e in mine:
        assert e["actor"] == {"os_user": getpass.getuser(), "db_user": want_db, "host": socket.gethostname(),
                              "pid": os.getpid()}, (case, e)
        assert not {"user", "host", "pid"} & set(e), (case, e)  # who acted lives in `actor` only
        if target is not None:
            assert e["target"] == target, (case, e)
        else:
            assert e["target"], (case, e)
    if user_detail:  # the detail that used to overwrite the actor is kept, as a detail
        assert mine[-2]["details"]["user"] == AUD_USER
