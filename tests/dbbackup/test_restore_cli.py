"""`djtui dbbackup restore` as a user runs it, against the suite's private server: really restored, byte for byte."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from djtui.errors import UserError
from djtui.services import dbbackup
from djtui.services.database import Database


def _djtui(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def _rows(conn, schema: str) -> dict[str, list[tuple]]:
    """Every row of every table, in key order, as the server returns them (bytes for blobs)."""
    with conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema=%s ORDER BY 1", (schema,))
        tables = [r[0] for r in cur.fetchall()]
        out = {}
        for t in tables:
            q = t.replace("`", "``")
            cur.execute(f"SELECT * FROM `{schema}`.`{q}` ORDER BY 1")
            out[t] = list(cur.fetchall())
    return out


def _fk_targets(conn, schema: str) -> set[tuple[str, str, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT table_name, referenced_table_schema, referenced_table_name "
                    "FROM information_schema.key_column_usage "
                    "WHERE table_schema=%s AND referenced_table_name IS NOT NULL", (schema,))
        return {tuple(r) for r in cur.fetchall()}


@pytest.fixture
def two_schemas(lab_schema, admin_conn):
    """``lab_schema`` and ``<lab>_b``, whose table references lab_schema.subject (a cross-schema foreign key)."""
    b = f"{lab_schema}_b"
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{b}`")
        cur.execute(f"CREATE TABLE `{b}`.session (id INT PRIMARY KEY, subject_id INT, note BLOB, "
                    f"FOREIGN KEY (subject_id) REFERENCES `{lab_schema}`.subject (id)) ENGINE=InnoDB")
        cur.executemany(f"INSERT INTO `{b}`.session VALUES (%s, %s, %s)",
                        [(i, i % 37, bytes([i % 256]) * 3 + b"\n'`\0") for i in range(45)])
        # data that looks like the statements a rename rewrites: data is never rewritten
        cur.executemany(f"INSERT INTO `{b}`.session VALUES (%s, %s, %s)",
                        [(i, 0, f"`{lab_schema}`.subject {lab_schema}.subject\nUSE `{lab_schema}`;".encode())
                         for i in range(45, 50)])
    admin_conn.commit()
    yield lab_schema, b
    admin_conn.rollback()
    with admin_conn.cursor() as cur:  # children of other schemas first would not be enough: checks off
        cur.execute("SET SESSION foreign_key_checks = 0")
        cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                    (lab_schema.replace("_", "\\_") + "%",))
        for (name,) in cur.fetchall():
            cur.execute(f"DROP DATABASE `{name}`")
        cur.execute("SET SESSION foreign_key_checks = 1")


@pytest.fixture
def backup(server, two_schemas, tmp_path) -> Path:
    db = Database(server.settings)
    try:
        return dbbackup.run_backup(db, tmp_path / "backups", schemas=list(two_schemas), full_server=False).path
    finally:
        db.close()


def test_restore_over_same_names_is_byte_identical(cli_config, two_schemas, backup, admin_conn, server, tmp_path):
    a, b = two_schemas
    before = {s: _rows(admin_conn, s) for s in (a, b)}
    assert before[a]["odd`name"][0][1] == bytes(range(256)) * 4
    with admin_conn.cursor() as cur:
        cur.execute(f"DELETE FROM `{a}`.`odd``name` WHERE id < 3")
        cur.execute(f"UPDATE `{b}`.session SET note = 'changed'")
        cur.execute(f"CREATE TABLE `{a}`.later (x INT)")  # made after the backup: not in it
    admin_conn.commit()

    r = _djtui(cli_config, "dbbackup", "restore", str(backup), "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["confirm"] == "OVERWRITE 2 SCHEMAS"
    by = {s["target"]: s for s in plan["schemas"]}
    assert by[a]["current"]["odd`name"] == 2 and by[a]["tables"]["odd`name"] == 5
    assert by[a]["left_alone"] == ["later"]
    assert _rows(admin_conn, a)["odd`name"] != before[a]["odd`name"]  # the dry run changed nothing

    r = _djtui(cli_config, "dbbackup", "restore", str(backup), "--confirm", "RESTORE")
    assert r.returncode == 2 and "OVERWRITE 2 SCHEMAS" in r.stderr
    r = _djtui(cli_config, "dbbackup", "restore", str(backup))
    assert r.returncode == 2 and "--confirm" in r.stderr  # no terminal, no --confirm
    assert len(_rows(admin_conn, a)["odd`name"]) == 2

    r = _djtui(cli_config, "dbbackup", "restore", str(backup), "--confirm", "OVERWRITE 2 SCHEMAS")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OVERWRITES" in r.stdout and "later" in r.stdout and "restored: 2 schema(s)" in r.stdout
    # what was overwritten was dumped first, outside what `dbbackup list` shows (prune keeps it as a series
    # of its own: test_prune_also_prunes_pre_restore_safety_dumps_as_their_own_series)
    (safety,) = (tmp_path / "backups" / "pre-restore").iterdir()
    assert f"the overwritten schemas as they were: {safety}" in r.stdout
    tables = {s["name"]: s["tables"] for s in json.loads((safety / "manifest.json").read_text())["schemas"]}
    assert tables[a] == {"audit": 37, "later": 0, "odd`name": 2, "subject": 37}
    assert [x.path for x in dbbackup.list_backups(tmp_path / "backups")] == [backup]
    assert server.password.reveal() not in r.stdout + r.stderr
    admin_conn.commit()  # a fresh snapshot
    after = {s: _rows(admin_conn, s) for s in (a, b)}
    for s in (a, b):
        for t, rows in before[s].items():
            assert after[s][t] == rows, (s, t)
    assert after[a]["later"] == []  # not in the backup: left as it was
    log = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    ev = [e for e in log if e["action"] == "dbbackup-restore"]
    assert [e["event"] for e in ev] == ["intent", "outcome"] and ev[1]["status"] == "ok"
    assert ev[0]["details"]["overwrites"] == {a: 2 + 37 + 37, b: 50}


def test_restore_renamed_moves_foreign_keys_with_it(cli_config, two_schemas, backup, admin_conn):
    a, b = two_schemas
    a2, b2 = f"{a}_r1", f"{a}_r2"
    r = _djtui(cli_config, "dbbackup", "restore", str(backup), "--rename", f"{a}={a2}", "--rename", f"{b}={b2}",
               "--dry-run")
    assert r.returncode == 0, r.stderr
    assert f"foreign keys {b} -> {a}: restored as {b2} -> {a2}" in r.stdout
    assert "confirm with 'RESTORE'" in r.stdout
    r = _djtui(cli_config, "dbbackup", "restore", str(backup), "--rename", f"{a}={a2}", "--rename", f"{b}={b2}",
               "--confirm", "RESTORE")
    assert r.returncode == 0, r.stdout + r.stderr
    admin_conn.commit()
    assert _rows(admin_conn, a2) == _rows(admin_conn, a)
    assert _rows(admin_conn, b2) == _rows(admin_conn, b)
    # both restored together: the child's foreign key points at the renamed parent, not at the live one
    assert _fk_targets(admin_conn, b2) == {("session", a2, "subject")}
    # the trigger body named its schema (`a`.audit): it now writes into the renamed copy
    with admin_conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{a2}`.subject VALUES (1000, 'new')")
        cur.execute(f"SELECT COUNT(*) FROM `{a2}`.audit WHERE n = 1000")
        assert cur.fetchone()[0] == 1
        cur.execute(f"SELECT COUNT(*) FROM `{a}`.audit WHERE n = 1000")
        assert cur.fetchone()[0] == 0
    admin_conn.rollback()


def test_restore_one_schema_renamed_keeps_foreign_keys_on_the_live_parent(cli_config, two_schemas, backup,
                                                                          admin_conn):
    a, b = two_schemas
    b3 = f"{a}_r3"
    r = _djtui(cli_config, "dbbackup", "restore", str(backup), "--schema", b, "--rename", f"{b}={b3}",
               "--confirm", "RESTORE")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"foreign keys {b3} -> {a}: {a} is not restored, they point at the live {a} (exists)" in r.stdout
    admin_conn.commit()
    assert _fk_targets(admin_conn, b3) == {("session", a, "subject")}
    assert _rows(admin_conn, b3) == _rows(admin_conn, b)


def test_restore_refuses_a_changed_dump(cli_config, two_schemas, backup, admin_conn, tmp_path):
    a, _b = two_schemas
    with admin_conn.cursor() as cur:
        cur.execute(f"DELETE FROM `{a}`.`odd``name` WHERE id > 2")
    admin_conn.commit()
    entry = next(s for s in json.loads((backup / "manifest.json").read_text())["schemas"] if s["name"] == a)
    f = backup / entry["file"]
    f.write_bytes(f.read_bytes() + b"\0")
    r = _djtui(cli_config, "dbbackup", "restore", str(backup), "--confirm", "OVERWRITE 2 SCHEMAS")
    assert r.returncode == 1 and "sha256 differs" in r.stderr and "nothing was loaded" in r.stderr
    with admin_conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{a}`.`odd``name`")
        assert cur.fetchone()[0] == 3


def test_restore_refused_read_only_and_bad_input(cli_config, two_schemas, backup, admin_conn):
    a, b = two_schemas
    r = _djtui(cli_config, "--readonly", "dbbackup", "restore", str(backup), "--confirm", "OVERWRITE 2 SCHEMAS")
    assert r.returncode == 2 and "read-only" in r.stderr
    r = _djtui(cli_config, "dbbackup", "restore", str(backup), "--schema", "nope", "--dry-run")
    assert r.returncode == 2 and "not in this backup" in r.stderr
    r = _djtui(cli_config, "dbbackup", "restore", str(backup), "--rename", "x", "--dry-run")
    assert r.returncode == 2 and "S=NEW" in r.stderr
    r = _djtui(cli_config, "dbbackup", "restore", str(backup), "--rename", f"{a}=mysql", "--dry-run")
    assert r.returncode == 2 and "cannot be a schema name" in r.stderr
    r = _djtui(cli_config, "dbbackup", "restore", str(backup), "--rename", f"{a}={b}", "--schema", a, "--dry-run")
    assert r.returncode == 0 and "OVERWRITE 1 SCHEMA" in r.stdout  # onto another existing schema: an overwrite


def test_restore_rechecks_the_plan_and_is_locked(server, two_schemas, backup, admin_conn, tmp_path):
    """What the confirmed plan said it overwrites is re-checked under the lock; a second restore is refused."""
    from djtui.services.audit import AuditLog
    from djtui.services.locks import LockBusy, exclusive

    a, _b = two_schemas
    new = f"{a}_r4"
    db = Database(server.settings)
    try:
        plan = dbbackup.plan_restore(db, backup, schemas=[a], renames={a: new})
        assert plan.confirm_word == "RESTORE"
        with admin_conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{new}`")  # appears between the plan and the action
        with pytest.raises(dbbackup.OperationFailed, match="changed since the plan"):
            dbbackup.restore_backup(db, plan, tmp_path / "state", AuditLog(tmp_path / "a.jsonl"))
        with admin_conn.cursor() as cur:
            cur.execute(f"DROP DATABASE `{new}`")
        with exclusive(tmp_path / "state", dbbackup.restore_lock_name(db), purpose="another restore"), \
                pytest.raises(LockBusy, match="another restore"):
            dbbackup.restore_backup(db, plan, tmp_path / "state", AuditLog(tmp_path / "a.jsonl"))
    finally:
        db.close()


def test_restore_compares_checksum_table_where_the_manifest_has_it(server, two_schemas, backup, admin_conn, tmp_path):
    """A manifest that carries CHECKSUM TABLE values gets them compared after the load (right ones pass)."""
    from djtui.services.audit import AuditLog

    a, _b = two_schemas
    with admin_conn.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE `{a}`.subject EXTENDED")
        right = int(cur.fetchone()[1])
    mpath = backup / "manifest.json"
    mf = json.loads(mpath.read_text())
    entry = next(s for s in mf["schemas"] if s["name"] == a)
    db = Database(server.settings)
    try:
        for value, ok in ((right, True), (right + 1, False)):
            entry["checksums"] = {"subject": value}
            mpath.write_text(json.dumps(mf))
            new = f"{a}_c{int(ok)}"
            plan = dbbackup.plan_restore(db, backup, schemas=[a], renames={a: new})
            res = dbbackup.restore_backup(db, plan, tmp_path / "state", AuditLog(tmp_path / "a.jsonl"))
            assert res.ok is ok, res.problems
            assert ok or res.problems == [f"{new}.subject: CHECKSUM TABLE differs from the manifest"]
            if ok:  # a plan runs once: the same plan again is refused before anything is loaded
                with admin_conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE `{new}`")
                with pytest.raises(UserError, match="executed already"):
                    dbbackup.restore_backup(db, plan, tmp_path / "state", AuditLog(tmp_path / "a.jsonl"))
                admin_conn.commit()
                with admin_conn.cursor() as cur:
                    cur.execute("SHOW DATABASES LIKE %s", (new,))
                    assert cur.fetchall() == ()
    finally:
        db.close()
