"""Writing the SQL export of 100,000 rows: djtui's writer vs mysqldump of the same rows (target <= 1.5x).

Three tables (parent, child, grandchild with a blob) hold exactly the rows an export of the
grandchild needs, so ``mysqldump --hex-blob db`` of the whole schema dumps the same rows.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def _fill(conn, db: str, rows: int) -> None:
    rng = random.Random(5)
    n1, n2 = rows // 100, rows * 3 // 10
    n3 = rows - n1 - n2
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}`")
        cur.execute(f"CREATE TABLE `{db}`.`subject` (subject_id int NOT NULL, name varchar(40), born date, "
                    f"PRIMARY KEY (subject_id)) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{db}`.`session` (subject_id int NOT NULL, session_id int NOT NULL, "
                    f"started datetime(3), note varchar(255), PRIMARY KEY (subject_id, session_id), "
                    f"FOREIGN KEY (subject_id) REFERENCES `{db}`.`subject` (subject_id)) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{db}`.`_trace` (subject_id int NOT NULL, session_id int NOT NULL, "
                    f"trace_id int NOT NULL, value double, data blob, label varchar(64), "
                    f"PRIMARY KEY (subject_id, session_id, trace_id), FOREIGN KEY (subject_id, session_id) "
                    f"REFERENCES `{db}`.`session` (subject_id, session_id)) ENGINE=InnoDB")
        cur.executemany(f"INSERT INTO `{db}`.`subject` VALUES (%s, %s, %s)",
                        [(i, f"mouse '{i}'", "2023-01-02") for i in range(n1)])
        sessions = [(i % n1, i) for i in range(n2)]
        for s in range(0, n2, 5000):
            cur.executemany(f"INSERT INTO `{db}`.`session` VALUES (%s, %s, %s, %s)",
                            [(a, b, "2024-03-04 05:06:07.890", f"note {b}\\n") for a, b in sessions[s:s + 5000]])
        traces = [(*sessions[i % n2], i, rng.random(), rng.randbytes(48), f"lbl{i}") for i in range(n3)]
        for s in range(0, n3, 5000):
            cur.executemany(f"INSERT INTO `{db}`.`_trace` VALUES (%s, %s, %s, %s, %s, %s)", traces[s:s + 5000])
    conn.commit()


def main(argv: list[str]) -> int:
    from djtui.devserver import PrivateServer
    from djtui.domain.cascade import Leaf
    from djtui.services.database import Database
    from djtui.services.export import ExportSession, load_graph
    from djtui.services.export_writers import write_sql

    ap = argparse.ArgumentParser(prog="python -m bench export_write", description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="djtui-bench-export-"))
    try:
        with PrivateServer(work / "srv", buffer_pool_mb=256) as srv:
            conn = srv.connect()
            _fill(conn, "bw_lab", a.rows)
            conn.close()
            db = Database(srv.settings)
            graph = load_graph(db, ["bw_"])
            cnf = work / "my.cnf"
            fd = os.open(cnf, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(f"[client]\nuser={srv.settings.user}\npassword=\"{srv.password.reveal()}\"\n"
                         f"host=127.0.0.1\nport={srv.port}\nprotocol=TCP\n")
            ours, cascades, theirs = [], [], []
            for n in range(a.repeat):
                started = time.monotonic()
                with ExportSession(db, graph, [Leaf("bw_lab._trace")]) as session:
                    session.run()
                    cascaded = time.monotonic()
                    manifest = write_sql(session, work / f"ours{n}")
                ours.append(time.monotonic() - cascaded)
                cascades.append(cascaded - started)
                started = time.monotonic()
                with open(work / f"dump{n}.sql", "wb") as out:
                    subprocess.run(["mysqldump", f"--defaults-extra-file={cnf}", "--single-transaction",
                                    "--hex-blob", "bw_lab"], stdout=out, check=True)
                theirs.append(time.monotonic() - started)
            rows = sum(t["rows"] for t in manifest["tables"])
            best_ours, best_theirs = min(ours), min(theirs)
            ratio = best_ours / best_theirs
            print(f"rows exported: {rows} (mysqldump dumps the same {a.rows} rows)")
            print(f"djtui cascade (key sets of the 3 tables, not part of mysqldump's work): {min(cascades):.2f} s")
            print(f"djtui SQL writer: {best_ours:.2f} s (best of {a.repeat}), "
                  f"{(work / 'ours0' / 'export.sql').stat().st_size / 1e6:.1f} MB, with per-table checksums")
            print(f"mysqldump:        {best_theirs:.2f} s (best of {a.repeat}), "
                  f"{(work / 'dump0.sql').stat().st_size / 1e6:.1f} MB")
            print(f"ratio writer/mysqldump: {ratio:.2f}x  target <= 1.5x: {'OK' if ratio <= 1.5 else 'MISSED'}; "
                  f"cascade + writer: {(best_ours + min(cascades)) / best_theirs:.2f}x")
            db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0
