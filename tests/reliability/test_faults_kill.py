"""djtui SIGKILLed, and its database connection KILLed, in the middle of destructive actions.

Every test runs the real CLI as a subprocess and strikes from outside: ``kill -9`` of the djtui
process (by its Popen handle), or ``KILL <id>`` of the lab user's connections from an admin
connection. ``DJTUI_TEST_PAUSE_BETWEEN_ITEMS`` holds djtui between two items so the blow lands
there every time. After each fault: the state is consistent, the audit log says what happened,
and the next start of djtui reports an interrupted action.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from djtui.config import load_config
from djtui.tui.app import DjtuiApp

from ._r1_lab import DATE, R1Lab, lab_at, sigkill, tree_files, wait_for


@pytest.fixture
def lab(server, tmp_path) -> Iterator[R1Lab]:
    with lab_at(server, tmp_path) as lab:
        yield lab


def synced(lab: R1Lab, pids: list[str]) -> dict[str, dict[str, int]]:
    for pid in pids:
        lab.make_session(pid)
    res = lab.cli("batch", DATE)
    assert res.returncode == 0, res.stdout + res.stderr
    return {p: tree_files(lab.session_dir(p)) for p in pids}


def outcomes(lab: R1Lab, action: str) -> list[dict]:
    return [e for e in lab.audit() if e.get("event") == "outcome" and e.get("action") == action]


def intents(lab: R1Lab, action: str) -> list[dict]:
    return [e for e in lab.audit() if e.get("event") == "intent" and e.get("action") == action]


# --- SIGKILL ------------------------------------------------------------------------------------


def test_sigkill_during_bulk_delete_leaves_whole_sessions_and_is_reported(lab):
    pids = ["p001", "p002", "p003"]
    before = synced(lab, pids)
    proc = lab.start("bulk-delete", "--confirm", "DELETE ALL", pause=60)
    wait_for(lambda: outcomes(lab, "delete-session"))
    sigkill(proc)

    gone = [p for p in pids if not lab.session_dir(p).exists()]
    assert gone == ["p001"]  # the first session went whole, none was cut in half
    for p in pids[1:]:
        assert tree_files(lab.session_dir(p)) == before[p]
    assert tree_files(lab.dest_dir("p001")) == before["p001"]  # and its backup is intact
    assert [o["status"] for o in outcomes(lab, "delete-session")] == ["ok"]

    # the next start names the cut-off action, on any command
    res = lab.cli("status-range")
    assert res.returncode == 0
    assert "bulk-delete of 3 sessions" in res.stderr and "was interrupted" in res.stderr, res.stderr
    cut = json.loads(lab.cli("audit", "interrupted", "--json").stdout)
    assert [c["action"] for c in cut] == ["bulk-delete"]

    # the rest can be finished safely, and the warning stops once acknowledged
    res = lab.cli("bulk-delete", "--confirm", "DELETE ALL")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not any(lab.session_dir(p).exists() for p in pids)
    assert lab.cli("audit", "ack", cut[0]["id"], "--note", "checked").returncode == 0
    assert "interrupted" not in lab.cli("status-range").stderr


def stale_temp_tree(lab: R1Lab, n: int = 6) -> dict[str, int]:
    tmp = lab.root / "store" / "tmp"
    old = time.time() - 5 * 86400
    for i in range(n):
        p = tmp / f"run{i % 2}" / f"chunk{i}.part"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(500 + i))
        os.utime(p, (old, old))
    return tree_files(tmp)


def batch_dirs(lab: R1Lab) -> list[Path]:
    q = lab.root / "store" / "quarantine"
    return sorted(d for d in q.iterdir() if d.is_dir()) if q.is_dir() else []


def moved_files(lab: R1Lab) -> int:
    return sum(len(tree_files(d / "files")) for d in batch_dirs(lab) if (d / "files").is_dir())


def assert_manifest_matches(lab: R1Lab, batch: Path) -> dict:
    """Every moved file is listed, every listed file is in exactly one place, nothing else moved."""
    manifest = json.loads((batch / "manifest.json").read_text())
    listed = {e["stored"]: e for e in manifest["items"]}
    present = {f"files/{rel}" for rel in tree_files(batch / "files")}
    assert present <= set(listed), f"moved but not in the manifest: {present - set(listed)}"
    for stored, e in listed.items():
        assert (stored in present) != os.path.exists(e["original"]), f"{stored} is in both or neither place"
    return manifest


async def test_sigkill_during_quarantine_manifest_lists_every_moved_file_and_restore_is_exact(lab):
    tmp = lab.root / "store" / "tmp"
    before = stale_temp_tree(lab)
    proc = lab.start("orphans", "quarantine", "--source", f"dir:{tmp}", "--confirm", "QUARANTINE", pause=60)
    wait_for(lambda: moved_files(lab) >= 1)
    sigkill(proc)

    (batch,) = batch_dirs(lab)
    manifest = assert_manifest_matches(lab, batch)
    assert manifest["state"] == "open" and moved_files(lab) == 1
    assert len(tree_files(tmp)) == len(before) - 1

    res = lab.cli("orphans", "list-quarantine")
    assert "orphans-quarantine of dir:" in res.stderr and "was interrupted" in res.stderr, res.stderr
    notes: list[str] = []  # and the app says the same when it starts
    app = DjtuiApp(config=load_config(str(lab.config_path)), connect=False)
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    assert any("orphans-quarantine" in n and "interrupted" in n for n in notes), notes
    res = lab.cli("orphans", "restore", batch.name)
    assert res.returncode == 0, res.stdout + res.stderr
    assert tree_files(tmp) == before


# --- KILL <connection id> ---------------------------------------------------------------------


def test_connection_killed_during_bulk_delete_refuses_the_rest(lab):
    """Sessions are checked against the database at the moment of deletion: no database, no delete."""
    pids = ["p001", "p002", "p003"]
    before = synced(lab, pids)
    proc = lab.start("bulk-delete", "--confirm", "DELETE ALL", "--json", pause=1.5)
    try:
        wait_for(lambda: outcomes(lab, "delete-session"))
        killed = lab.kill_connections(lock_account=True)  # and it cannot come back
        out, err = proc.communicate(timeout=60)
    finally:
        lab.unlock_account()
    assert killed, "djtui held no connection to kill"
    assert proc.returncode == 1, out + err
    report = json.loads(out)
    assert report["deleted"] == 1 and report["failed"] == 2
    for r in report["results"][1:]:
        assert not r["ok"] and "database unreachable" in r["message"], r["message"]
    assert not lab.session_dir("p001").exists()
    for p in pids[1:]:
        assert tree_files(lab.session_dir(p)) == before[p]
    (bulk,) = outcomes(lab, "bulk-delete")
    assert bulk["status"] == "partial" and bulk["details"]["deleted"] == 1 and bulk["details"]["failed"] == 2
    assert not [e for e in json.loads(lab.cli("audit", "interrupted", "--json").stdout)]


def subject_ids(lab: R1Lab) -> set[str]:
    conn = lab.server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT participant_id FROM `{lab.schemas['sessions']}`.`subject`")
            return {r[0] for r in cur.fetchall()}
    finally:
        conn.close()


def test_connection_killed_during_orphan_row_delete_deletes_none(lab):
    conn = lab.server.connect()
    try:
        with conn.cursor() as cur:
            for i in range(5):
                cur.execute(f"INSERT INTO `{lab.schemas['sessions']}`.`subject` VALUES (%s)", (f"orphan{i}",))
    finally:
        conn.close()
    source = f"table:{lab.schemas['sessions']}.subject"
    proc = lab.start("orphans", "quarantine", "--source", source, "--confirm", "QUARANTINE", pause=1.5)
    wait_for(lambda: intents(lab, "orphans-delete-rows"))
    time.sleep(0.5)  # inside the pause after the first DELETE of the transaction
    assert lab.kill_connections()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "rolled back: no row was deleted" in err and "internal error" not in err, err
    assert subject_ids(lab) == {f"orphan{i}" for i in range(5)}  # all or none: none
    (outcome,) = outcomes(lab, "orphans-delete-rows")
    assert outcome["status"] == "failed"
    # with the database back, the same command finishes the job
    res = lab.cli("orphans", "quarantine", "--source", source, "--confirm", "QUARANTINE")
    assert res.returncode == 0, res.stdout + res.stderr
    assert subject_ids(lab) == set()


def test_connection_killed_during_quarantine_moves_does_not_matter(lab):
    """File moves need no database: the batch completes and its manifest matches the files."""
    tmp = lab.root / "store" / "tmp"
    before = stale_temp_tree(lab, 4)
    proc = lab.start("orphans", "quarantine", "--source", f"dir:{tmp}", "--confirm", "QUARANTINE", pause=0.7)
    wait_for(lambda: moved_files(lab) >= 1)
    lab.kill_connections()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    (batch,) = batch_dirs(lab)
    manifest = assert_manifest_matches(lab, batch)
    assert manifest["state"] == "done" and len(manifest["items"]) == len(before)
    assert outcomes(lab, "orphans-quarantine")[0]["status"] == "ok"


def test_status_calls_do_not_pile_up_idle_connections(lab):
    """A bulk delete checks each session against the database; 200 sessions must not mean 200 open connections
    (the server's default max_connections is 151: the tail of a big bulk delete would be refused)."""
    from djtui.domain.sessions import SessionKey, parse_date
    from djtui.services.database import Database, resolve_connection
    from djtui.services.sessions import SessionService

    lab.make_session("p001")
    cfg = load_config(str(lab.config_path))
    svc = SessionService(cfg, Database(resolve_connection(cfg.database, env=lab.env)))
    try:
        for _ in range(20):
            assert svc.status(SessionKey("p001", parse_date(DATE))).dj.imported
        assert len(lab.connection_ids()) <= 2
    finally:
        svc.db.close()


def test_a_session_cut_in_half_is_named_at_the_next_start_and_can_be_finished(lab):
    """A SIGKILL between two unlinks of one session: the state that leaves is made here by hand.

    The intent is written by a real process that then dies without an outcome; two of the
    session's files are gone, as if unlinked just before the kill. Every remaining file is still
    one that was verified, so nothing is lost; djtui refuses to go on blindly (the record no
    longer matches), names the cut-off action, and `verify` then `delete` finish the job.
    """
    import subprocess
    import sys

    synced(lab, ["p001"])
    src = lab.session_dir("p001")
    subprocess.run([sys.executable, "-c", "import sys; from djtui.services.audit import AuditLog; "
                    "AuditLog(sys.argv[1]).intent('delete-session', session=sys.argv[2], path=sys.argv[3])",
                    str(lab.audit_path), f"p001 {DATE}", str(src)], check=True)
    (src / "cam0.mp4").unlink()
    (src / "cam1.mp4").unlink()

    res = lab.cli("delete", "p001", DATE, "--confirm", "DELETE")
    assert f"delete-session of p001 {DATE}" in res.stderr and "was interrupted" in res.stderr, res.stderr
    assert res.returncode == 1 and "gone since verification" in res.stdout, res.stdout
    assert tree_files(lab.dest_dir("p001")).keys() >= {"cam0.mp4", "cam1.mp4"}  # the backup still has them
    assert lab.cli("verify", "p001", DATE).returncode == 0
    res = lab.cli("delete", "p001", DATE, "--confirm", "DELETE")
    assert res.returncode == 0 and not src.exists(), res.stdout + res.stderr
