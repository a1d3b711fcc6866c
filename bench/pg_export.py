"""SQL export of 100,000 rows on PostgreSQL: djtui's writer vs pg_dump of the same rows (target <= 1.5x).

Three tables (subject, session, trace with a bytea, a double, a jsonb and a timestamp) hold exactly
the rows an export of ``trace`` needs, so ``pg_dump --schema=bw_lab`` (plain format, to a file)
dumps the same rows as the export. djtui's writer is timed after the cascade (the key sets are
work pg_dump does not do: printed apart, with the session's end); as in ``export write``, the
tables' DDL (pg_dump --schema-only, then pg_restore per section) is made in a background thread
while the server computes the key sets, so the writer copies it, reads every row by COPY joined to
its key set and checksums each table. "cascade + writer" is the whole export. One run each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def _fill(conn, rows: int) -> None:
    n1, n2 = rows // 100, rows * 3 // 10
    n3 = rows - n1 - n2
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA bw_lab")
        cur.execute("CREATE TABLE bw_lab.subject (subject_id int PRIMARY KEY, name varchar(40), born date)")
        cur.execute("CREATE TABLE bw_lab.session (subject_id int NOT NULL REFERENCES bw_lab.subject, "
                    "session_id int NOT NULL, started timestamp(3), note varchar(255), meta jsonb, "
                    "PRIMARY KEY (subject_id, session_id))")
        cur.execute("CREATE TABLE bw_lab._trace (subject_id int NOT NULL, session_id int NOT NULL, trace_id int "
                    "NOT NULL, value double precision, data bytea, label varchar(64), "
                    "PRIMARY KEY (subject_id, session_id, trace_id), "
                    "FOREIGN KEY (subject_id, session_id) REFERENCES bw_lab.session)")
        cur.execute(f"INSERT INTO bw_lab.subject SELECT i, 'mouse ''' || i || '''', DATE '2023-01-02' "
                    f"FROM generate_series(0, {n1 - 1}) AS i")
        cur.execute(f"INSERT INTO bw_lab.session SELECT i % {n1}, i, TIMESTAMP '2024-03-04 05:06:07.890', "
                    f"'note ' || i || E'\\n', jsonb_build_object('rig', 'a', 'n', i) "
                    f"FROM generate_series(0, {n2 - 1}) AS i")
        cur.execute(f"INSERT INTO bw_lab._trace SELECT (i % {n2}) % {n1}, i % {n2}, i, random(), "
                    f"decode(md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text), 'hex'), 'lbl' || i "
                    f"FROM generate_series(0, {n3 - 1}) AS i")
        cur.execute("ANALYZE")


def main(argv: list[str]) -> int:
    from djtui.domain.cascade import Leaf
    from djtui.services.database import Database
    from djtui.services.export import load_graph, open_session
    from djtui.services.export.writers.pgsql import write_pg_sql
    from djtui.services.servers.postgres import PrivatePostgres

    ap = argparse.ArgumentParser(prog="python -m bench pg_export", description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="djtui-bench-pgexport-"))
    os.chmod(work, 0o755)
    try:
        with PrivatePostgres(work / "srv") as srv:
            conn = srv.connect()
            _fill(conn, a.rows)
            conn.close()
            db = Database(srv.settings)
            graph = load_graph(db, ["bw_"])
            print(f"{a.rows} rows in 3 tables; one run each; machine load at start: {os.getloadavg()[0]:.1f} "
                  f"on {os.cpu_count()} cores")
            started = time.monotonic()
            with open_session(db, graph, [Leaf("bw_lab._trace", "")]) as session:
                session.want_ddl = True  # as `export write` does: pg_dump dumps the DDL during the cascade
                session.run()
                cascaded = time.monotonic()
                manifest = write_pg_sql(session, work / "ours")
                ours = time.monotonic() - cascaded
            cascade = cascaded - started
            be = db.backend
            with be.credentials_file(srv.settings) as cred, open(work / "pg_dump.sql", "wb") as out:
                started = time.monotonic()
                subprocess.run([*be.tool_argv(be.dump_tools().dump, cred), "--schema=bw_lab", "--no-owner",
                                "--no-privileges"], stdout=out, check=True)
                theirs = time.monotonic() - started
            db.close()
        rows = sum(t["rows"] for t in manifest["tables"])
        size_ours = (work / "ours" / "export.sql").stat().st_size / 1e6
        size_theirs = (work / "pg_dump.sql").stat().st_size / 1e6
        print(f"  rows exported by djtui: {rows}; pg_dump dumps the whole schema, the same {a.rows} rows")
        print(f"  djtui cascade (key sets, not part of pg_dump's work): {cascade:.3f} s")
        print(f"  djtui SQL writer: {ours:.3f} s, {size_ours:.1f} MB (the rows by COPY joined to their key sets, "
              f"checksums; the DDL dumped during the cascade)")
        print(f"  pg_dump:          {theirs:.3f} s, {size_theirs:.1f} MB")
        ratio = ours / theirs
        print(f"  ratio writer/pg_dump: {ratio:.2f}x  target <= 1.5x: {'OK' if ratio <= 1.5 else 'MISSED'}; "
              f"cascade + writer: {(ours + cascade) / theirs:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0
