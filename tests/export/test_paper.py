"""Leaves from Spyglass's export log (``--paper``)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.export import randgraph
from tests.export.conftest import config_text
from tests.export.test_cascade import _fixed_schema


def test_plan_from_a_papers_logged_leaves(server, admin_conn, schema, tmp_path):
    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    log = f"{schema}_usage"
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{log}`")
        cur.execute(f"CREATE TABLE `{log}`.`export_selection` (export_id int NOT NULL AUTO_INCREMENT, "
                    f"paper_id varchar(32), analysis_id varchar(32), PRIMARY KEY (export_id))")
        cur.execute(f"CREATE TABLE `{log}`.`export_selection__table` (export_id int NOT NULL, table_id int NOT NULL,"
                    f" table_name varchar(128), restriction mediumblob, PRIMARY KEY (export_id, table_id), "
                    f"FOREIGN KEY (export_id) REFERENCES `{log}`.`export_selection` (export_id))")
        cur.execute(f"INSERT INTO `{log}`.`export_selection` VALUES (1, 'p1', 'a1'), (2, 'p1', 'a2'), (3, 'p2', 'a')")
        cur.executemany(f"INSERT INTO `{log}`.`export_selection__table` VALUES (%s, %s, %s, %s)", [
            (1, 1, f"`{schema}`.`session`", b"c1 = 1"),
            (2, 1, f"`{schema}`.`session`", b"c1 = 3"),
            (3, 1, f"`{schema}`.`subject`", b""),
        ])
    admin_conn.commit()
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path))
    cfg.chmod(0o600)

    def plan(*extra):
        return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "export", "plan", "--prefix",
                               schema, "--export-log", log, "--json", *extra],
                              capture_output=True, text=True, timeout=120)

    run = plan("--paper", "p1")
    assert run.returncode == 0, run.stderr
    rows = {p["table"]: p["rows"] for p in json.loads(run.stdout)}
    assert rows[f"{schema}.session"] == 2  # both analyses' leaves on one table are kept
    run = plan("--paper", "p1", "--analysis", "a2")
    assert {p["table"]: p["rows"] for p in json.loads(run.stdout)}[f"{schema}.session"] == 1
    run = plan("--paper", "nope")
    assert run.returncode == 2 and "no tables for paper 'nope'" in run.stderr
    run = subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "export", "plan", "--paper", "p1",
                          "--export-log", f"{schema}_none"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "no Spyglass export log" in run.stderr
