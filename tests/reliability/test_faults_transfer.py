"""Transfers and verification under faults: rsync SIGKILLed, the destination vanishing or hanging mid-verify.

Hangs are real kernel hangs (see _r1_hang): a FUSE mount whose daemon never answers (a
directory whose scan never returns), and a file whose ``open`` blocks (a lease). djtui must
give up after ``sessions.mount_timeout`` (2 s in the lab), say so with the remount hint,
and never mark anything verified or safe.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator

import psutil
import pytest

from djtui.config import load_config
from djtui.domain.sessions import SessionKey, parse_date
from djtui.services.database import Database
from djtui.services.sessions import SessionService
from djtui.services.transfers import verify_session

from ._r1_hang import blocking_open, hung_mount
from ._r1_lab import DATE, R1Lab, lab_at, tree_files, wait_for

KEY = SessionKey("p001", parse_date(DATE))


@pytest.fixture
def lab(server, tmp_path) -> Iterator[R1Lab]:
    with lab_at(server, tmp_path) as lab:
        yield lab


def status(lab: R1Lab) -> dict:
    res = lab.cli("status", "p001", DATE, "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def test_rsync_killed_mid_transfer_fails_the_job_and_a_resync_verifies(lab):
    lab.make_session("p001", files=3, size=1_000_000)
    lab.write_config(rsync_flags="-a --bwlimit=1500")  # about 2 s of copying: time to strike
    proc = lab.start("sync", "p001", DATE)

    def rsync_child() -> list[psutil.Process]:
        return [c for c in psutil.Process(proc.pid).children() if c.name() == "rsync"]

    (child,) = wait_for(rsync_child)
    wait_for(lambda: lab.dest_dir("p001").is_dir() and tree_files(lab.dest_dir("p001")))  # bytes are landing
    child.kill()  # SIGKILL, to the rsync djtui started (found from our own child's pid)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 1, out + err
    assert "✗ sync p001" in out and "rsync failed" in out and "killed by signal 9" in out, out
    st = status(lab)
    assert not st["verified"] and not st["safe"]
    res = lab.cli("delete", "p001", DATE, "--confirm", "DELETE")
    assert res.returncode == 1 and lab.session_dir("p001").exists()

    lab.write_config()
    res = lab.cli("sync", "p001", DATE)
    assert res.returncode == 0 and "verified" in res.stdout, res.stdout + res.stderr
    st = status(lab)
    assert st["verified"] and st["safe"]
    assert tree_files(lab.dest_dir("p001")) == tree_files(lab.session_dir("p001"))


def service(lab: R1Lab) -> SessionService:
    cfg = load_config(str(lab.config_path))
    cfg = dataclasses.replace(cfg, sessions=dataclasses.replace(cfg.sessions, checksum_workers=1))
    from djtui.services.database import resolve_connection
    return SessionService(cfg, Database(resolve_connection(cfg.database, env=lab.env)))


def test_destination_removed_mid_verify_is_a_clear_failure(lab):
    lab.make_session("p001", files=6, size=200_000)
    assert lab.cli("sync", "p001", DATE).returncode == 0
    svc = service(lab)
    assert svc.status(KEY).verified
    moved = lab.root / "dest-unmounted"
    seen: list[str] = []

    def on_file(path: str) -> None:  # the share goes away after the first file was hashed
        seen.append(path)
        if len(seen) == 1:
            os.rename(lab.dest, moved)

    (svc.config.state_dir / "hashcache.sqlite").unlink(missing_ok=True)
    out = verify_session(svc, KEY, svc.destinations[0], checksum=True, on_file=on_file)
    assert not out.ok
    assert "No such file or directory during verification" in out.message and "not verified" in out.message
    os.rename(moved, lab.dest)  # even with the share back, the old record was withdrawn: verify again first
    st = svc.status(KEY)
    assert not st.verified and not st.safe
    svc.db.close()


def test_a_directory_whose_scan_never_returns_times_out_mid_verify(lab):
    lab.make_session("p001")
    assert lab.cli("sync", "p001", DATE).returncode == 0
    with hung_mount(lab.dest_dir("p001") / "stale"):  # a share mounted inside the backup, gone stale
        start = time.monotonic()
        res = lab.cli("verify", "p001", DATE, timeout=60)
        elapsed = time.monotonic() - start
        delete = lab.cli("delete", "p001", DATE, "--confirm", "DELETE", "--json", timeout=60)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "did not answer within 2 s (stale mount?)" in res.stdout and "remount it" in res.stdout, res.stdout
    assert elapsed < 20  # python start + 2 s deadline, not forever
    refused = json.loads(delete.stdout)
    assert delete.returncode == 1 and "not answering" in refused["message"], refused
    assert lab.session_dir("p001").exists()


def test_a_hung_destination_mount_shows_hung_with_the_remount_hint(lab):
    lab.make_session("p001")
    with hung_mount(lab.dest):  # the whole share is stale
        start = time.monotonic()
        text = lab.cli("status", "p001", DATE, timeout=60)
        verify = lab.cli("verify", "p001", DATE, timeout=60)
        elapsed = time.monotonic() - start
    assert text.returncode == 0
    assert "⚠ hung" in text.stdout and "remount it" in text.stdout, text.stdout
    assert "Safe to delete: ✗ no" in text.stdout
    assert verify.returncode == 1 and "hung" in verify.stdout and "remount it" in verify.stdout, verify.stdout
    assert elapsed < 30


def test_a_file_whose_open_blocks_times_out_the_checksum(lab):
    lab.make_session("p001")
    assert lab.cli("sync", "p001", DATE).returncode == 0
    with blocking_open(lab.dest_dir("p001") / "cam2.mp4"):
        start = time.monotonic()
        res = lab.cli("verify", "p001", DATE, "--checksum", timeout=60)
        elapsed = time.monotonic() - start
    assert res.returncode == 1, res.stdout + res.stderr
    assert "did not answer within 2 s" in res.stdout and "remount it" in res.stdout, res.stdout
    assert elapsed < 20
