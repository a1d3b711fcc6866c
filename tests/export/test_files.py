"""The files an export needs: 0.14 ``~external_<store>`` rows reached by the cascade, with existence
checked in file stores (under a deadline) and S3 stores (a local moto server)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

from djtui.config import StoreSettings
from djtui.services.export import NeededFile, check_files
from tests.export.conftest import config_text


def _lab(admin_conn, schema) -> tuple[uuid.UUID, ...]:
    """``rec`` rows 1 and 2 reference three objects of store ``raw``; row 3 a fourth."""
    blob, att, fp, unused = (uuid.uuid4() for _ in range(4))
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema}`")
        cur.execute(f"CREATE TABLE `{schema}`.`~external_raw` (hash binary(16) NOT NULL, size bigint unsigned "
                    f"NOT NULL, attachment_name varchar(255) NULL, filepath varchar(1000) NULL, "
                    f"contents_hash binary(16) NULL, timestamp timestamp DEFAULT CURRENT_TIMESTAMP, "
                    f"PRIMARY KEY (hash))")
        cur.execute(f"CREATE TABLE `{schema}`.`rec` (id int NOT NULL, data binary(16) NULL, doc binary(16) NULL, "
                    f"PRIMARY KEY (id), FOREIGN KEY (data) REFERENCES `{schema}`.`~external_raw` (hash), "
                    f"FOREIGN KEY (doc) REFERENCES `{schema}`.`~external_raw` (hash))")
        cur.executemany(f"INSERT INTO `{schema}`.`~external_raw` (hash, size, attachment_name, filepath) "
                        f"VALUES (%s, %s, %s, %s)",
                        [(blob.bytes, 10, None, None), (att.bytes, 20, "notes.txt", None),
                         (fp.bytes, 30, None, "raw/session1/video.mp4"), (unused.bytes, 40, None, None)])
        cur.executemany(f"INSERT INTO `{schema}`.`rec` VALUES (%s, %s, %s)",
                        [(1, blob.bytes, att.bytes), (2, fp.bytes, None), (3, unused.bytes, None)])
    admin_conn.commit()
    return blob, att, fp, unused


def test_export_files_lists_referenced_objects(server, admin_conn, schema, tmp_path):
    blob, att, _fp, _unused = _lab(admin_conn, schema)
    store = tmp_path / "store"
    present = store / schema / blob.hex[:2] / blob.hex[2:4] / blob.hex
    present.parent.mkdir(parents=True)
    present.write_bytes(b"x" * 10)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path) + f"stores:\n  raw:\n    protocol: file\n"
                   f"    location: {store}\n")
    cfg.chmod(0o600)
    run = subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "export", "files", "--leaf",
                          f"{schema}.rec:id IN (1, 2)", "--prefix", schema, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr  # two of the three objects are missing on disk
    out = json.loads(run.stdout)
    paths = {f["path"]: (f["size"], f["exists"]) for f in out["files"]}
    assert paths == {
        f"{schema}/{blob.hex[:2]}/{blob.hex[2:4]}/{blob.hex}": (10, True),
        f"{schema}/{att.hex[:2]}/{att.hex[2:4]}/{att.hex}.notes.txt": (20, False),
        "raw/session1/video.mp4": (30, False),
    }
    assert out["total_bytes"] == 60 and out["missing"] == 2

    assert all(f["problem"] is None for f in out["files"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def test_export_files_checked_in_an_s3_store(server, admin_conn, schema, tmp_path, s3_endpoint):
    import boto3

    blob, att, _fp, unused = _lab(admin_conn, schema)
    client = boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    bucket = f"exp-{schema.replace('_', '-')}"
    client.create_bucket(Bucket=bucket)
    blob_key = f"{schema}/{blob.hex[:2]}/{blob.hex[2:4]}/{blob.hex}"
    att_key = f"{schema}/{att.hex[:2]}/{att.hex[2:4]}/{att.hex}.notes.txt"
    client.put_object(Bucket=bucket, Key=f"loc/{blob_key}", Body=b"x" * 10)
    client.put_object(Bucket=bucket, Key=f"loc/{att_key}", Body=b"y" * 21)  # the database says 20
    client.put_object(Bucket=bucket, Key="raw/session1/video.mp4", Body=b"z" * 30)  # outside location
    unused_key = f"{schema}/{unused.hex[:2]}/{unused.hex[2:4]}/{unused.hex}"
    client.put_object(Bucket=bucket, Key=f"loc/{unused_key}", Body=b"u" * 40)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path) + f"stores:\n  raw:\n    protocol: s3\n    location: loc\n"
                   f"    endpoint: {s3_endpoint}\n    bucket: {bucket}\n    access_key: testing\n"
                   f"    secret_key: testing\n    secure: false\n")
    cfg.chmod(0o600)
    run = subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "export", "files", "--leaf",
                          f"{schema}.rec:id IN (1, 2)", "--prefix", schema, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr  # the filepath object is not under loc/
    out = json.loads(run.stdout)
    got = {f["path"]: (f["exists"], f["problem"]) for f in out["files"]}
    assert got == {
        blob_key: (True, None),
        att_key: (True, "21 bytes in the store, 20 in the database"),
        "raw/session1/video.mp4": (False, None),
    }
    assert out["missing"] == 1 and "testing" not in run.stdout + run.stderr


def test_unreachable_s3_store_is_unknown_not_missing():
    store = StoreSettings(name="raw", protocol="s3", location="loc", endpoint=f"127.0.0.1:{_free_port()}",
                          bucket="nowhere")
    files = [NeededFile("raw", f"a/{i}", 1, "db.t") for i in range(3)]
    started = time.monotonic()
    out = check_files(files, [store])
    assert time.monotonic() - started < 60
    assert [f.exists for f in out] == [None, None, None]
    assert all("could not be checked" in (f.problem or "") for f in out)


def test_hung_file_store_is_reported_not_waited_on(tmp_path, monkeypatch):
    root = tmp_path / "store"
    (root / "a").mkdir(parents=True)
    (root / "a" / "1").write_bytes(b"1")
    gate = threading.Event()
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if str(path).endswith("/hangs"):
            gate.wait(10)  # like a stale NFS mount, stat blocks in the kernel
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    files = [NeededFile("raw", "a/1", 1, "db.t"), NeededFile("raw", "a/2", 1, "db.t"),
             NeededFile("raw", "b/hangs", 1, "db.t"), NeededFile("raw", "c/later", 1, "db.t"),
             NeededFile("other", "x", 1, "db.t")]
    started = time.monotonic()
    try:
        out = check_files(files, [StoreSettings(name="raw", protocol="file", location=str(root))], timeout=0.3)
    finally:
        gate.set()
    assert time.monotonic() - started < 3
    got = {(f.store, f.path): (f.exists, f.problem) for f in out}
    assert got[("raw", "a/1")] == (True, None) and got[("raw", "a/2")] == (False, None)
    for key in (("raw", "b/hangs"), ("raw", "c/later")):
        assert got[key][0] is None and "did not answer" in got[key][1]
    assert got[("other", "x")][0] is None and "not in the config" in got[("other", "x")][1]
    gone = check_files(files[:1], [StoreSettings(name="raw", protocol="file", location=str(tmp_path / "nope"))])
    assert gone[0].exists is None and "is the share mounted" in gone[0].problem


def test_export_files_human_output_shows_problems_as_notes(server, admin_conn, schema, tmp_path):
    """A ``?`` alone does not tell anyone what to fix: each distinct problem is printed once, numbered."""
    blob, _att, _fp, _unused = _lab(admin_conn, schema)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path))  # no stores: nothing can be checked
    cfg.chmod(0o600)
    args = [sys.executable, "-m", "djtui", "--config", str(cfg), "export", "files", "--leaf",
            f"{schema}.rec:id IN (1, 2)", "--prefix", schema]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr  # unknown is not missing
    lines = run.stdout.splitlines()
    assert sum("? [1]" in line for line in lines) == 3
    assert "3 files, 60 bytes, 0 missing, 3 not checked" in run.stdout
    assert "  [1] store 'raw' is not in the config (stores:), so its files were not checked" in lines
    assert run.stdout.count("not in the config") == 1

    store = tmp_path / "store"
    present = store / schema / blob.hex[:2] / blob.hex[2:4] / blob.hex
    present.parent.mkdir(parents=True)
    present.write_bytes(b"x" * 11)  # the database says 10
    cfg.write_text(config_text(server, tmp_path) + f"stores:\n  raw:\n    protocol: file\n    location: {store}\n")
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr  # two objects are missing
    row = next(line for line in run.stdout.splitlines() if blob.hex in line)
    assert "yes [1]" in row
    assert "  [1] 11 bytes in the store, 10 in the database" in run.stdout.splitlines()
    assert run.stdout.count("MISSING") == 2
