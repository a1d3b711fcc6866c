"""The disk fills during a dump and during a quarantine: a clear failure, nothing half-done left looking good.

A full disk is made for real where the test may mount (a tiny tmpfs: ``ENOSPC``); the dump
case also runs without root by capping the process' file size (``RLIMIT_FSIZE``: the dump
tool's write fails, as on a full disk). The quarantine case needs the mount (a cap on file
size cannot stop ``mkdir``), so it is skipped where mounting is not allowed.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ._r1_lab import PASSWORD, R1Lab, lab_at, tree_files, unique


@pytest.fixture
def lab(server, tmp_path) -> Iterator[R1Lab]:
    with lab_at(server, tmp_path) as lab:
        yield lab


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A real small filesystem at ``path``; the test is skipped where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "r1tmpfs", str(path)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True, capture_output=True)


def dump_lab(lab: R1Lab) -> tuple[str, str]:
    """A user that sees only the lab's schemas, and a schema of incompressible blobs (~1.2 MB)."""
    user = unique("r1dump")
    base = lab.schemas["sessions"].rsplit("_", 1)[0]
    schema = f"{base}_blob"
    conn = lab.server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, PASSWORD))
            cur.execute(f"GRANT ALL PRIVILEGES ON `{base.replace('_', chr(92) + '_')}\\_%`.* TO '{user}'@'%'")
            cur.execute(f"CREATE DATABASE `{schema}`")
            cur.execute(f"CREATE TABLE `{schema}`.big (id INT PRIMARY KEY, b LONGBLOB)")
            for i in range(3):
                cur.execute(f"INSERT INTO `{schema}`.big VALUES (%s, %s)", (i, os.urandom(400_000)))
    finally:
        conn.close()
    lab.config_path.write_text(lab.config_path.read_text().replace(f"user: {lab.user}", f"user: {user}"))
    return user, schema


def drop_dump_lab(lab: R1Lab, user: str, schema: str) -> None:
    conn = lab.server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{schema}`")
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["tmpfs", "rlimit"])
def test_disk_full_during_dump_leaves_no_backup_and_exits_1(lab, how):
    user, schema = dump_lab(lab)
    out = lab.root / "backups"
    try:
        if how == "tmpfs":
            with tmpfs(out, "size=256k"):
                res = lab.cli("dbbackup", "run", "--schemas-only", "--no-copy")
                left = sorted(p.name for p in out.iterdir())
        else:
            def cap() -> None:  # runs in the child: it and the dump tools it starts may write 200 kB per file
                resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
            res = subprocess.run(lab.argv("dbbackup", "run", "--schemas-only", "--no-copy"), capture_output=True,
                                 text=True, env=lab.env, cwd=lab.root, preexec_fn=cap, timeout=120)
            left = sorted(p.name for p in out.iterdir())
    finally:
        drop_dump_lab(lab, user, schema)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "djtui: failed:" in res.stderr and "internal error" not in res.stderr, res.stderr
    if how == "tmpfs":
        assert "No space left on device" in res.stderr, res.stderr
    assert left == [], f"a failed dump left {left}"  # no dated folder, no .partial-, no manifest
    listed = lab.cli("dbbackup", "list", "--json")
    assert listed.returncode == 0 and listed.stdout.strip() in ("[]", "")


def test_disk_full_during_quarantine_puts_every_file_back(lab):
    store = lab.root / "store"
    with tmpfs(store, "size=4m"):
        tmp, quarantine = store / "tmp", store / "quarantine"
        tmp.mkdir()
        quarantine.mkdir()
        old = time.time() - 5 * 86400
        for d in range(6):
            for f in range(3):
                p = tmp / f"d{d}" / f"chunk{f}.part"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(os.urandom(300))
                os.utime(p, (old, old))
        before = tree_files(tmp)
        vfs = os.statvfs(store)
        used = vfs.f_files - vfs.f_ffree
        # room for the batch folder, files/, the manifest and its temp copy, and 3 of the 6 sub-folders:
        # a later mkdir fails with ENOSPC after some files have moved
        remount(store, f"nr_inodes={used + 4 + 3}")
        res = lab.cli("orphans", "quarantine", "--source", f"dir:{tmp}", "--confirm", "QUARANTINE")
        after = tree_files(tmp)
        batches = sorted(quarantine.iterdir())
    assert res.returncode == 1, res.stdout + res.stderr
    m = re.search(r"the (\d+) file\(s\) it had moved were put back", res.stderr)
    assert "No space left on device" in res.stderr and m, res.stderr
    assert 0 < int(m.group(1)) < len(before)  # it failed half-way, not before the first move
    assert "internal error" not in res.stderr
    assert after == before  # rolled back: every file where it was
    assert batches == []  # and no batch that looks like it holds them
    (outcome,) = [e for e in lab.audit() if e.get("event") == "outcome" and e.get("action") == "orphans-quarantine"]
    assert outcome["status"] == "failed" and "No space left" in outcome["details"]["error"]
