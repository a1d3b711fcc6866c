"""Dump, restore-verify and list against the suite's private MariaDB, with the real dump tools."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import stat
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from djtui.errors import OperationFailed
from djtui.services import dbbackup


def _backup(db, out: Path, schema: str, **kw) -> dbbackup.BackupResult:
    return dbbackup.run_backup(db, out, schemas=[schema], **kw)


def test_round_trip_verifies_and_lists(lab, tmp_path):
    """On each backend: dump, manifest (sizes, hashes, exact counts, tool versions), restore-verify, list."""
    out = tmp_path / "b"
    seen: list[str] = []
    res = _backup(lab.db, out, lab.schema, full_server=False, progress=seen.append)
    assert res.path.parent == out and res.path.is_dir()
    assert [p.name for p in out.iterdir()] == [res.path.name]  # no partial folder left
    mf = json.loads((res.path / "manifest.json").read_text())
    (entry,) = mf["schemas"]
    assert entry["name"] == lab.schema
    assert entry["tables"] == {"audit": 37, lab.odd: 5, "subject": 37}
    f = res.path / entry["file"]
    assert entry["bytes"] == f.stat().st_size
    assert entry["sha256"] == dbbackup.sha256_file(f)
    assert mf["backend"] == lab.backend
    assert mf["server"]["flavor"] in (("MariaDB", "MySQL") if lab.backend == "mysql" else ("PostgreSQL",))
    assert all(v and v != "?" for v in mf["tool_versions"].values()) and mf["tool"] in mf["tool_versions"]
    assert seen and lab.schema in seen[-1]
    assert dbbackup.list_backups(out)[0].verified is None

    v = dbbackup.verify_backup(res.path, scratch_dir=tmp_path / "scratch")
    assert v.ok, v.problems
    assert v.tables_checked == 3
    assert (res.path / "verified.json").is_file()
    (info,) = dbbackup.list_backups(out)
    assert info.verified and info.schemas == 1 and info.bytes > 0


def test_tampered_file_fails_and_unmarks(lab, tmp_path):
    res = _backup(lab.db, tmp_path / "b", lab.schema, full_server=False)
    (res.path / "verified.json").write_text(json.dumps({"verified": "old"}))
    entry = json.loads((res.path / "manifest.json").read_text())["schemas"][0]
    f = res.path / entry["file"]
    with open(f, "ab") as fh:
        fh.write(b"\0")
    v = dbbackup.verify_backup(res.path)
    assert not v.ok
    assert any("sha256" in p for p in v.problems)
    assert not (res.path / "verified.json").exists()


def test_a_dump_that_lost_rows_fails_the_restore_check(lab, tmp_path):
    """A schema file whose hash matches (manifest rewritten) but which holds fewer rows than the manifest
    says (a dump made after rows were deleted) fails restore-verify, on each backend."""
    res = _backup(lab.db, tmp_path / "b", lab.schema, full_server=False)
    lab.sql(f"DELETE FROM {lab.db.dialect.table(lab.schema, 'subject')} WHERE id >= 30")
    later = _backup(lab.db, tmp_path / "c", lab.schema, full_server=False, now=datetime(2030, 1, 1))
    mpath = res.path / "manifest.json"
    mf = json.loads(mpath.read_text())
    entry = mf["schemas"][0]
    shutil.copyfile(later.path / entry["file"], res.path / entry["file"])
    entry.update(sha256=dbbackup.sha256_file(res.path / entry["file"]), bytes=(res.path / entry["file"]).stat().st_size)
    mpath.write_text(json.dumps(mf))
    v = dbbackup.verify_backup(res.path)
    assert not v.ok, v.problems
    assert v.problems == [f"{lab.schema}.subject: 30 rows restored, manifest says 37"], v.problems


def test_row_count_mismatch_is_caught_by_restore(db, lab_schema, tmp_path):
    """A dump whose hash matches (manifest rewritten) but whose data lost rows fails the restore check."""
    res = _backup(db, tmp_path / "b", lab_schema, full_server=False)
    mpath = res.path / "manifest.json"
    mf = json.loads(mpath.read_text())
    entry = mf["schemas"][0]
    f = res.path / entry["file"]
    with open(f, "rb") as fh:
        sql = subprocess.run(dbbackup.decompressor_for(f), stdin=fh, capture_output=True, check=True).stdout
    # drop the rows of `subject` from the dump: the table is created but stays empty
    cut = re.sub(rb"INSERT INTO `subject` VALUES.*?\);\n", b"", sql, flags=re.S)
    assert len(cut) < len(sql)
    g = f.with_name(f.name.replace(".zst", ".gz"))
    g.write_bytes(gzip.compress(cut))
    f.unlink()
    entry.update(file=g.name, sha256=dbbackup.sha256_file(g), bytes=g.stat().st_size)
    mpath.write_text(json.dumps(mf))
    v = dbbackup.verify_backup(res.path)
    assert not v.ok, v.problems
    assert any(f"{lab_schema}.subject: 0 rows restored, manifest says 37" in p for p in v.problems), v.problems


def test_failed_dump_leaves_no_folder(lab, tmp_path):
    out = tmp_path / "b"
    with pytest.raises(OperationFailed) as ei:
        dbbackup.run_backup(lab.db, out, schemas=["no_such_schema_xyz"], full_server=False)
    assert "no_such_schema_xyz" in str(ei.value) or "Unknown database" in str(ei.value)
    assert list(out.iterdir()) == []
    assert dbbackup.list_backups(out) == []


def _cmdlines() -> dict[int, bytes]:
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                pass
    return out


def test_password_never_in_process_list(server, db, lab_schema, admin_conn, tmp_path):
    """Hold a write lock so the dump blocks, then read every process's argv while it runs."""
    password = server.password.reveal().encode()
    out = tmp_path / "b"
    with admin_conn.cursor() as cur:
        cur.execute(f"LOCK TABLES `{lab_schema}`.subject WRITE")
    box: dict = {}

    def work():
        try:
            box["res"] = dbbackup.run_backup(db, out, schemas=[lab_schema], parallel=1, full_server=True)
        except BaseException as exc:  # pragma: no cover - reported below
            box["err"] = exc

    t = threading.Thread(target=work)
    t.start()
    dump_cmd = None
    cnf_path = None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and dump_cmd is None:
            for _pid, cmd in _cmdlines().items():
                assert password not in cmd
                if b"--all-databases" in cmd and b"dump" in cmd.split(b"\0")[0]:
                    dump_cmd = cmd
            time.sleep(0.02)
        assert dump_cmd is not None, "never saw the dump process"
        args = dump_cmd.split(b"\0")
        cnf_path = Path(next(a for a in args if a.startswith(b"--defaults-extra-file=")).split(b"=", 1)[1].decode())
        assert stat.S_IMODE(cnf_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(cnf_path.parent.stat().st_mode) == 0o700
        for cmd in _cmdlines().values():
            assert password not in cmd
    finally:
        with admin_conn.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        t.join(120)
    assert "err" not in box, box.get("err")
    assert not cnf_path.exists() and not cnf_path.parent.exists()
    mf = json.loads((box["res"].path / "manifest.json").read_text())
    assert mf["server_dump"]["bytes"] > 0
