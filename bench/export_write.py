"""Writing the SQL export of 100,000 rows: djtui's writer vs mysqldump of the same rows (target <= 1.5x).

Three tables (parent, child, grandchild with a blob) hold exactly the rows an export of the
grandchild needs, so ``mysqldump --hex-blob db`` of the whole schema dumps the same rows.
A second case exports half of them (``trace_id % 2 = 0`` and its ancestors): djtui reads through
its key sets, mysqldump gets one ``--where`` per table written by hand (as the seed scripts do).
Runs are interleaved (djtui, mysqldump, djtui, ...) and the medians are compared, because the
machine may be shared. ``DJTUI_SQL_DRIVER=pymysql`` measures the pure-Python fallback.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

# the rows of the half export, per table, as mysqldump --where conditions (valid for even table sizes)
HALF = {"_trace": "trace_id % 2 = 0", "session": "session_id % 2 = 0", "subject": "subject_id % 2 = 0"}


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


def _mysqldump(cnf: Path, out: Path, where: dict[str, str] | None) -> None:
    base = ["mysqldump", f"--defaults-extra-file={cnf}", "--single-transaction", "--hex-blob"]
    with open(out, "wb") as fh:
        if where is None:
            subprocess.run([*base, "bw_lab"], stdout=fh, check=True)
            return
        for table in ("subject", "session", "_trace"):
            subprocess.run([*base, "bw_lab", table, f"--where={where[table]}"], stdout=fh, check=True)


def main(argv: list[str]) -> int:
    from djtui.domain.cascade import Leaf
    from djtui.services.database import Database
    from djtui.services.export import ExportSession, driver_name, load_graph, write_sql
    from djtui.services.servers.mariadb import PrivateServer

    ap = argparse.ArgumentParser(prog="python -m bench export_write", description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-half", action="store_true", help="skip the half-export case")
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
            cases = [("all rows", "", None)] + ([] if a.no_half else [("half", HALF["_trace"], HALF)])
            print(f"driver: {driver_name()}; {a.repeat} interleaved runs per case, medians; machine load at start: "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            for label, restriction, where in cases:
                ours, cascades, theirs, ratios = [], [], [], []
                for n in range(a.repeat):
                    started = time.monotonic()
                    with ExportSession(db, graph, [Leaf("bw_lab._trace", restriction)]) as session:
                        session.run()
                        cascaded = time.monotonic()
                        manifest = write_sql(session, work / f"ours-{label}-{n}")
                        written = time.monotonic()
                    ours.append(written - cascaded)
                    cascades.append(cascaded - started + time.monotonic() - written)  # with the session's end
                    started = time.monotonic()
                    _mysqldump(cnf, work / f"dump-{label}-{n}.sql", where)
                    theirs.append(time.monotonic() - started)
                    ratios.append(ours[-1] / theirs[-1])
                    shutil.rmtree(work / f"ours-{label}-{n}")
                rows = sum(t["rows"] for t in manifest["tables"])
                with srv.connect() as conn, conn.cursor() as cur:
                    dumped = 0
                    for table in ("subject", "session", "_trace"):
                        cond = f" WHERE {where[table]}" if where else ""
                        cur.execute(f"SELECT COUNT(*) FROM bw_lab.`{table}`{cond}")
                        dumped += cur.fetchone()[0]
                med_ours, med_theirs, med_cascade = (statistics.median(x) for x in (ours, theirs, cascades))
                ratio = statistics.median(ratios)
                size = (work / f"dump-{label}-0.sql").stat().st_size / 1e6
                print(f"\n[{label}] rows exported: {rows}; mysqldump dumps {dumped}"
                      + ("" if rows == dumped else "  (DIFFERENT ROWS: the comparison is off)"))
                print(f"  djtui cascade and session end (key sets, not part of mysqldump's work): {med_cascade:.2f} s")
                print(f"  djtui SQL writer: median {med_ours:.3f} s  (runs: {' '.join(f'{x:.3f}' for x in ours)}), "
                      f"with per-table checksums")
                print(f"  mysqldump:        median {med_theirs:.3f} s  (runs: {' '.join(f'{x:.3f}' for x in theirs)}), "
                      f"{size:.1f} MB")
                print(f"  ratio writer/mysqldump: median of pairs {ratio:.2f}x, of medians {med_ours / med_theirs:.2f}x"
                      f"  target <= 1.5x: {'OK' if ratio <= 1.5 else 'MISSED'}; "
                      f"cascade + writer: {(med_ours + med_cascade) / med_theirs:.2f}x")
            db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0
