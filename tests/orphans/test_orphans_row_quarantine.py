"""Quarantine of table rows (issue 13 item 4): rows are kept whole in a batch and put back byte-identical.

CLI end to end against the suite's private server: `orphans quarantine` of `orphans.tables` rows and of
unused `~external_*` rows, `orphans restore [--skip-existing]`, `orphans purge`.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from orphans_lab import config_text

from djtui.cli import main
from djtui.domain import stores as ds
from djtui.services.orphans.rows import RAW

BLOB = os.urandom(3 << 20) + b"\x00\xff\xfe"  # a longblob of 3 MiB, not valid text
EMOJI = "caf\u00e9 \U0001f9e0\U0001f42d spike"  # a 4-byte utf8mb4 character among others


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def lab(server, admin_conn, schema_name, tmp_path):
    s = schema_name
    cur = admin_conn.cursor()
    cur.execute(f"CREATE DATABASE `{s}`")
    cur.execute(f"CREATE TABLE `{s}`.`session` (subject VARCHAR(32) CHARACTER SET utf8mb4, n INT, "
                "data LONGBLOB NULL, note VARCHAR(200) CHARACTER SET utf8mb4 NULL, at DATETIME(6) NOT NULL, "
                "amount DECIMAL(20,8) NOT NULL, ratio DOUBLE NULL, PRIMARY KEY (subject, n)) "
                "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
    cur.execute(f"CREATE TABLE `{s}`.`trial` (subject VARCHAR(32) CHARACTER SET utf8mb4, n INT, t INT, "
                "PRIMARY KEY (subject, n, t), FOREIGN KEY (subject, n) REFERENCES `session` (subject, n)) "
                "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
    cur.executemany(f"INSERT INTO `{s}`.`session` VALUES (%s, %s, %s, %s, %s, %s, %s)", [
        ("m\U0001f42d1", 1, BLOB, EMOJI, "2024-02-29 23:59:59.123456", "-12345678901.12345678", 0.1),
        ("m2", 2, None, None, "1999-12-31 00:00:00.000001", "0.00000001", None),
        ("kept", 3, b"x", "referenced", "2020-01-01 00:00:00", "1", 1.5)])
    cur.execute(f"INSERT INTO `{s}`.`trial` VALUES ('kept', 3, 1)")
    cur.close()
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path, f"orphans:\n  tables: [{s}.session]\n  max_share: 1.0\n"))
    cfg.chmod(0o600)
    return s, cfg, tmp_path


def raw_rows(server, schema: str) -> dict[tuple, tuple]:
    """Every row of the table as the server's bytes, by key."""
    conn = server.connect(**RAW)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT subject, n, data, note, at, amount, ratio FROM `{schema}`.`session`")
            return {(r[0], r[1]): r for r in cur.fetchall()}
    finally:
        conn.close()


def quarantine(capsys, cfg, schema) -> dict:
    code, out, err = run(capsys, "--config", str(cfg), "orphans", "quarantine", "--source",
                         f"table:{schema}.session", "--confirm", "QUARANTINE", "--json")
    assert code == 0, err
    return json.loads(out)


def test_rows_are_saved_whole_and_restored_byte_identical(capsys, server, lab):
    schema, cfg, tmp = lab
    before = raw_rows(server, schema)
    assert len(before) == 3
    code, out, _ = run(capsys, "--config", str(cfg), "orphans", "quarantine", "--source",
                       f"table:{schema}.session", "--dry-run")
    assert code == 0 and "2 row(s) to delete" in out
    assert "rows are saved in the batch and `djtui orphans restore BATCH` puts them back" in out

    done = quarantine(capsys, cfg, schema)
    assert done["rows"] == 2 and done["row_batch"]
    batch = done["row_batch"]
    assert set(raw_rows(server, schema)) == {(b"kept", b"3")}

    manifest = json.loads((tmp / "state" / "quarantine" / batch / "manifest.json").read_text())
    assert manifest["backend"] == "rows" and manifest["state"] == "done"
    assert manifest["table"] == f"{schema}.session" and manifest["primary_key"] == ["subject", "n"]
    assert "CREATE TABLE `session`" in manifest["create_table"]
    types = {c["name"]: c["type"] for c in manifest["columns"]}
    assert types["at"] == "datetime(6)" and types["amount"] == "decimal(20,8)" and types["data"] == "longblob"
    assert len(manifest["items"]) == 2
    rows_file = tmp / "state" / "quarantine" / batch / "files" / "rows.jsonl"
    assert len(rows_file.read_text().splitlines()) == 2

    code, out, _ = run(capsys, "--config", str(cfg), "orphans", "list-quarantine", "--json")
    listed = {b["batch"]: b for b in json.loads(out)["batches"]}
    assert listed[batch]["items"] == 2 and listed[batch]["bytes"] > len(BLOB)

    code, out, err = run(capsys, "--config", str(cfg), "orphans", "restore", batch)
    assert code == 0, err
    assert f"restored 2 row(s) of batch {batch} into {schema}.session" in out
    after = raw_rows(server, schema)
    assert after == before  # every column's bytes: the longblob, NULLs, DATETIME(6), DECIMAL, emoji text
    assert after[("m\U0001f42d1".encode(), b"1")][2] == BLOB
    assert after[(b"m2", b"2")][2] is None and after[(b"m2", b"2")][3] is None

    events = [json.loads(line) for line in (tmp / "state" / "audit.jsonl").read_text().splitlines()]
    deletes = [e for e in events if e.get("action") == "orphans-delete-rows"]
    restores = [e for e in events if e.get("action") == "orphans-restore"]
    assert any(e["event"] == "intent" and e["details"]["batch"] == batch for e in deletes)
    assert any(e["event"] == "outcome" and e["details"]["deleted"] == 2 for e in deletes)
    assert any(e["event"] == "outcome" and e["details"]["restored"] == 2 for e in restores)

    code, _, err = run(capsys, "--config", str(cfg), "orphans", "restore", batch)
    assert code == 2 and "already restored" in err


def test_a_key_taken_again_refuses_the_batch_unless_skip_existing(capsys, server, lab, admin_conn):
    schema, cfg, _tmp = lab
    before = raw_rows(server, schema)
    batch = quarantine(capsys, cfg, schema)["row_batch"]
    with admin_conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{schema}`.`session` (subject, n, at, amount) "
                    "VALUES ('m2', 2, '2030-01-01', 7)")
    code, _, err = run(capsys, "--config", str(cfg), "orphans", "restore", batch)
    assert code == 1
    assert "1 key(s)" in err and "subject='m2', n='2'" in err and "nothing was restored" in err
    assert "--skip-existing" in err
    assert set(raw_rows(server, schema)) == {(b"kept", b"3"), (b"m2", b"2")}

    code, out, err = run(capsys, "--config", str(cfg), "orphans", "restore", batch, "--skip-existing")
    assert code == 0, err
    assert "restored 1 row(s)" in out and "1 kept: their keys exist again" in out
    after = raw_rows(server, schema)
    key = ("m\U0001f42d1".encode(), b"1")
    assert after[key] == before[key]
    assert after[(b"m2", b"2")][4] == b"2030-01-01 00:00:00.000000"  # the newer row stays


def test_a_table_that_lost_a_column_refuses_the_restore(capsys, server, lab, admin_conn):
    schema, cfg, _tmp = lab
    batch = quarantine(capsys, cfg, schema)["row_batch"]
    with admin_conn.cursor() as cur:
        cur.execute(f"ALTER TABLE `{schema}`.`session` DROP COLUMN ratio")
    code, _, err = run(capsys, "--config", str(cfg), "orphans", "restore", batch)
    assert code == 2 and "lost column(s) ratio" in err and "nothing was restored" in err
    assert set(raw_rows_no_ratio(server, schema)) == {(b"kept", b"3")}


def raw_rows_no_ratio(server, schema):
    conn = server.connect(**RAW)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT subject, n FROM `{schema}`.`session`")
            return {tuple(r) for r in cur.fetchall()}
    finally:
        conn.close()


def test_purge_drops_row_batches_after_the_grace_period(capsys, server, lab):
    schema, cfg, tmp = lab
    batch = quarantine(capsys, cfg, schema)["row_batch"]
    rows_file = tmp / "state" / "quarantine" / batch / "files" / "rows.jsonl"
    code, out, _ = run(capsys, "--config", str(cfg), "orphans", "purge")  # default grace: not yet
    assert code == 0 and rows_file.exists()
    code, out, _ = run(capsys, "--config", str(cfg), "orphans", "purge", "--older-than", "0")
    assert code == 0 and "purged 1 batch(es)" in out and not rows_file.exists()
    code, _, err = run(capsys, "--config", str(cfg), "orphans", "restore", batch)
    assert code == 2 and "purged" in err


def test_a_batch_listed_but_never_deleted_restores_nothing_twice(capsys, server, lab):
    """A kill between the write-ahead and the COMMIT leaves rows listed that are still in the table."""
    schema, cfg, tmp = lab
    before = raw_rows(server, schema)
    batch = quarantine(capsys, cfg, schema)["row_batch"]
    run(capsys, "--config", str(cfg), "orphans", "restore", batch)
    mpath = tmp / "state" / "quarantine" / batch / "manifest.json"
    m = json.loads(mpath.read_text())
    m["state"] = "open"  # as the batch stood when the DELETE's transaction was cut off
    mpath.write_text(json.dumps(m))
    code, out, err = run(capsys, "--config", str(cfg), "orphans", "restore", batch)
    assert code == 0, err
    assert "restored 0 row(s)" in out and "2 were still in the table, identical" in out
    assert raw_rows(server, schema) == before


@pytest.fixture
def ext_cfg(server, tmp_path, legacy_lab):
    path = tmp_path / "djtui.yaml"
    path.write_text(config_text(server, tmp_path,
                                f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n"))
    path.chmod(0o600)
    return path


def ext_rows(server, schema):
    conn = server.connect(**RAW)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM `{schema}`.`~external_main`")
            return {r[0]: r for r in cur.fetchall()}
    finally:
        conn.close()


def test_unused_external_rows_are_restored_and_referenced_ones_reported(capsys, server, ext_cfg, legacy_lab):
    src = f"external:{legacy_lab.schema}:main"
    before = ext_rows(server, legacy_lab.schema)
    base = ("--config", str(ext_cfg), "orphans", "quarantine", "--source", src,
            "--reason", ds.UNUSED_ROW, "--reason", ds.MISSING_OBJECT)
    code, out, _ = run(capsys, *base, "--dry-run", "--json")
    dry = json.loads(out)
    assert dry["reported_only"] == 1 and dry["rows"] == 1
    code, out, err = run(capsys, *base, "--confirm", "QUARANTINE", "--json")
    assert code == 0, err
    done = json.loads(out)
    assert done["rows"] == 1 and done["reported_only"] == 1  # the referenced missing-object row, as in the dry run
    unused = legacy_lab.hashes["unused"].bytes
    assert unused not in ext_rows(server, legacy_lab.schema)
    code, out, err = run(capsys, "--config", str(ext_cfg), "orphans", "restore", done["row_batch"])
    assert code == 0, err
    assert ext_rows(server, legacy_lab.schema) == before
    assert isinstance(uuid.UUID(bytes=unused), uuid.UUID) and Path(ext_cfg).exists()
