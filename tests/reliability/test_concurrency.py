"""Two operators at once, and acquisition still writing: locks make the outcome correct, the loser is told why.

Each case runs two real djtui processes against one lab. The first is held mid-action (the
test-only pause, or a slow rsync); the second must be refused with a message naming the
first (pid, host, what it is doing), and the first must finish its work correctly.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator

import pytest

from djtui.config import load_config
from djtui.services import dbbackup
from djtui.services.database import Database, resolve_connection
from djtui.services.locks import exclusive, lock_path

from ._r1_lab import DATE, R1Lab, children_named, lab_at, tree_files, wait_for


@pytest.fixture
def lab(server, tmp_path) -> Iterator[R1Lab]:
    with lab_at(server, tmp_path) as lab:
        yield lab


def synced(lab: R1Lab, pids: list[str], **kw) -> dict[str, dict[str, int]]:
    for pid in pids:
        lab.make_session(pid, **kw)
    res = lab.cli("batch", DATE)
    assert res.returncode == 0, res.stdout + res.stderr
    return {p: tree_files(lab.session_dir(p)) for p in pids}


def events(lab: R1Lab, event: str, action: str) -> list[dict]:
    return [e for e in lab.audit() if e.get("event") == event and e.get("action") == action]


def test_two_bulk_deletes_of_the_same_tree(lab):
    pids = ["p001", "p002", "p003"]
    synced(lab, pids)
    first = lab.start("bulk-delete", "--confirm", "DELETE ALL", "--json", pause=2)
    wait_for(lambda: events(lab, "outcome", "delete-session"))
    second = lab.cli("bulk-delete", "--confirm", "DELETE ALL", "--json")
    out, err = first.communicate(timeout=60)

    assert second.returncode == 1
    loser = json.loads(second.stdout)
    assert loser["deleted"] == 0 and loser["results"]
    for r in loser["results"]:
        assert f"locked by pid {first.pid}" in r["message"] and "bulk-delete of 3 sessions" in r["message"], r
    assert first.returncode == 0, out + err
    assert json.loads(out)["deleted"] == 3
    assert not any(lab.session_dir(p).exists() for p in pids)
    assert [e["status"] for e in events(lab, "outcome", "delete-session")] == ["ok"] * 3
    assert [e["status"] for e in events(lab, "outcome", "bulk-delete")] == ["ok"]  # the loser wrote no intent


def test_delete_during_a_sync_of_the_same_session(lab):
    """A verified session re-copied with -I (every file again): safe by every check but the lock."""
    synced(lab, ["p001"], files=2, size=600_000)
    lab.write_config(rsync_flags="-a -I --bwlimit=600")
    sync = lab.start("sync", "p001", DATE)
    wait_for(lambda: children_named(sync, "rsync"))
    res = lab.cli("delete", "p001", DATE, "--confirm", "DELETE", "--json")
    out, err = sync.communicate(timeout=60)

    assert res.returncode == 1
    refused = json.loads(res.stdout)
    assert f"locked by pid {sync.pid}" in refused["message"], refused
    assert f"(sync p001 {DATE} → net)" in refused["message"], refused
    assert lab.session_dir("p001").exists()
    assert sync.returncode == 0, out + err  # the sync was not disturbed
    assert not events(lab, "intent", "delete-session")
    lab.write_config()
    res = lab.cli("delete", "p001", DATE, "--confirm", "DELETE")
    assert res.returncode == 0 and not lab.session_dir("p001").exists(), res.stdout + res.stderr


def test_sync_refused_while_a_delete_holds_the_session(lab):
    synced(lab, ["p001"])
    with exclusive(lab.root / "state", f"source:{lab.session_dir('p001')}", purpose=f"delete p001 {DATE}"):
        res = lab.cli("sync", "p001", DATE)
    assert res.returncode == 1
    assert f"locked by pid {os.getpid()}" in res.stdout and f"(delete p001 {DATE})" in res.stdout, res.stdout


def stale_tree(lab: R1Lab, n: int = 3) -> dict[str, int]:
    tmp = lab.root / "store" / "tmp"
    old = time.time() - 5 * 86400
    for i in range(n):
        p = tmp / f"chunk{i}.part"
        p.write_bytes(os.urandom(300))
        os.utime(p, (old, old))
    return tree_files(tmp)


def test_quarantine_purge_during_a_restore(lab):
    tmp = lab.root / "store" / "tmp"
    before = stale_tree(lab)
    res = lab.cli("orphans", "quarantine", "--source", f"dir:{tmp}", "--confirm", "QUARANTINE", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    (batch,) = [d.name for d in (lab.root / "store" / "quarantine").iterdir()]
    assert tree_files(tmp) == {}

    restore = lab.start("orphans", "restore", batch, pause=2)
    wait_for(lambda: tree_files(tmp))  # the first file is back, the rest are still in the batch
    purge = lab.cli("orphans", "purge", "--older-than", "0")
    out, err = restore.communicate(timeout=60)

    assert purge.returncode == 1
    assert f"locked by pid {restore.pid}" in purge.stderr and "orphans restore" in purge.stderr, purge.stderr
    assert restore.returncode == 0, out + err
    assert tree_files(tmp) == before  # every file back, none purged under the restore
    assert not events(lab, "intent", "orphans-purge")


def test_backup_prune_during_a_restore_verify(lab):
    out = lab.root / "backups"
    lab.config_path.write_text(lab.config_path.read_text().replace(
        f"dbbackup:\n  out_dir: {out}\n",
        f"dbbackup:\n  out_dir: {out}\n  keep_daily: 1\n  keep_weekly: 0\n  keep_monthly: 0\n"))
    settings = resolve_connection(load_config(str(lab.config_path)).database, env=lab.env)
    db = Database(settings)
    try:
        res = dbbackup.run_backup(db, out, schemas=[lab.schemas["sessions"]], full_server=False)
    finally:
        db.close()
    old = out / "2020-01-01_000000"
    shutil.copytree(res.path, old)  # outside every retention policy: prune wants it gone
    verify = lab.start("dbbackup", "verify", str(old))
    holder = lock_path(lab.root / "state", dbbackup.lock_name(out))
    wait_for(lambda: holder.exists() and "dbbackup verify" in holder.read_text(), timeout=60)
    prune = lab.cli("dbbackup", "prune", "--confirm", "PRUNE")
    vout, verr = verify.communicate(timeout=120)

    assert prune.returncode == 1
    assert f"locked by pid {verify.pid}" in prune.stderr and "dbbackup verify" in prune.stderr, prune.stderr
    assert old.is_dir() and verify.returncode == 0, vout + verr  # the backup under restore was not touched
    assert lab.cli("dbbackup", "prune", "--confirm", "PRUNE").returncode == 0
    assert not old.exists()


def test_a_file_that_grows_after_verification_blocks_delete(lab):
    """Acquisition still writing: the file grows after the backup was verified."""
    synced(lab, ["p001", "p002"])
    with open(lab.session_dir("p001") / "cam0.mp4", "ab") as fh:
        fh.write(b"one more frame")
    res = lab.cli("bulk-delete", "--confirm", "DELETE ALL", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report["deleted"] == 1 and report["kept"] == 1
    assert lab.session_dir("p001").exists() and not lab.session_dir("p002").exists()
    res = lab.cli("delete", "p001", DATE, "--confirm", "DELETE")
    assert res.returncode == 1 and "cam0.mp4" in res.stdout, res.stdout
    assert (lab.session_dir("p001") / "cam0.mp4").exists()
