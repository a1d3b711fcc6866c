"""The files an export needs: 0.14 ``~external_<store>`` rows reached by the cascade, with existence."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from tests.export.conftest import config_text


def test_export_files_lists_referenced_objects(server, admin_conn, schema, tmp_path):
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
