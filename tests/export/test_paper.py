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


def test_a_papers_logged_analysis_files_are_exported(server, admin_conn, schema, db):
    """Spyglass logs the analysis files a paper read in ``export_selection__file``; their rows in
    the table that part references (AnalysisNwbfile) are leaves too, with or without logged tables."""
    from djtui.services.export import load_graph, paper_leaves, plan_export

    log, nwb = f"{schema}_usage", f"{schema}_nwb"
    with admin_conn.cursor() as cur:
        for sql in (
                f"CREATE DATABASE `{log}`", f"CREATE DATABASE `{nwb}`",
                f"CREATE TABLE `{nwb}`.`analysis_nwbfile` (analysis_file_name varchar(64) PRIMARY KEY, path text)",
                f"CREATE TABLE `{log}`.`export_selection` (export_id int PRIMARY KEY, paper_id varchar(32), "
                f"analysis_id varchar(32))",
                f"CREATE TABLE `{log}`.`export_selection__table` (export_id int, table_id int, table_name varchar(128),"
                f" restriction mediumblob, PRIMARY KEY (export_id, table_id), "
                f"FOREIGN KEY (export_id) REFERENCES `{log}`.`export_selection` (export_id))",
                f"CREATE TABLE `{log}`.`export_selection__file` (export_id int, analysis_file_name varchar(64), "
                f"PRIMARY KEY (export_id, analysis_file_name), "
                f"FOREIGN KEY (export_id) REFERENCES `{log}`.`export_selection` (export_id), "
                f"FOREIGN KEY (analysis_file_name) REFERENCES `{nwb}`.`analysis_nwbfile` (analysis_file_name))",
                f"INSERT INTO `{nwb}`.`analysis_nwbfile` VALUES ('a_1.nwb', '/x/a_1.nwb'), ('b''2.nwb', '/x/b2'), "
                f"('c_3.nwb', '/x/c_3.nwb')",
                f"INSERT INTO `{log}`.`export_selection` VALUES (1, 'p1', 'fig1'), (2, 'p1', 'fig2'), (3, 'p2', 'x')",
                f"INSERT INTO `{log}`.`export_selection__file` VALUES (1, 'a_1.nwb'), (2, 'b''2.nwb'), "
                f"(3, 'c_3.nwb')"):
            cur.execute(sql)
    admin_conn.commit()
    leaves = paper_leaves(db, "p1", log_schema=log)
    assert [lf.table for lf in leaves] == [f"{nwb}.analysis_nwbfile"]
    result = plan_export(db, leaves, graph=load_graph(db, [schema]))
    assert result.counts == {f"{nwb}.analysis_nwbfile": 2}
    assert plan_export(db, paper_leaves(db, "p1", "fig2", log_schema=log),
                       graph=load_graph(db, [schema])).counts == {f"{nwb}.analysis_nwbfile": 1}
