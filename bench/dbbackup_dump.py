"""Dumping N schemas: djtui's parallel per-schema dump vs one plain `mariadb-dump --all-databases` (target <= 1.0).

A private server is filled with ``--schemas`` schemas of about ``--mb`` MB of row data in total
(three tables each: a small one, a wide one with text, one with binary blobs), then timed:

* plain: ``mariadb-dump --all-databases --single-transaction --max-allowed-packet=512M > file.sql``
  (what the seed's cron script does, uncompressed), and the same piped through djtui's compressor;
* djtui: ``run_backup`` with per-schema files only (``--schemas-only``) and with the whole-server
  file as well (the default, which dumps the data twice);
* restore-verify: ``verify_backup`` of the djtui backup (hashes, scratch server, exact row counts).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def _fill(conn, schemas: int, mb: int) -> int:
    """Rows of ~1 KB each, spread over the schemas; generated server-side with the sequence engine."""
    per_schema = max(1, mb * 1024 // schemas)  # rows of ~1 KB
    with conn.cursor() as cur:
        for i in range(schemas):
            db = f"lab_{i:02d}"
            cur.execute(f"CREATE DATABASE `{db}`")
            cur.execute(f"USE `{db}`")  # the seq_1_to_N tables of the sequence engine need a current schema
            cur.execute(f"CREATE TABLE `{db}`.subject (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB")
            cur.execute(f"CREATE TABLE `{db}`.session (id INT PRIMARY KEY, subject INT, note TEXT, "
                        f"value DOUBLE) ENGINE=InnoDB")
            cur.execute(f"CREATE TABLE `{db}`.trace (id INT PRIMARY KEY, data BLOB) ENGINE=InnoDB")
            cur.execute(f"INSERT INTO `{db}`.subject SELECT seq, CONCAT('mouse ', seq) FROM seq_1_to_100")
            half = per_schema // 2
            cur.execute(f"INSERT INTO `{db}`.session SELECT seq, seq % 100, REPEAT(MD5(seq), 16), RAND(seq) "
                        f"FROM seq_1_to_{max(1, half)}")
            cur.execute(f"INSERT INTO `{db}`.trace SELECT seq, RANDOM_BYTES(512) FROM seq_1_to_{max(1, half)}"
                        if _has_random_bytes(cur) else
                        f"INSERT INTO `{db}`.trace SELECT seq, UNHEX(REPEAT(SHA2(seq, 256), 16)) "
                        f"FROM seq_1_to_{max(1, half)}")
    conn.commit()
    return per_schema


def _has_random_bytes(cur) -> bool:
    try:
        cur.execute("SELECT RANDOM_BYTES(1)")
        cur.fetchall()
        return True
    except Exception:
        return False


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str]) -> int:
    from djtui.services import dbbackup
    from djtui.services.database import Database
    from djtui.services.dbbackup.tools import pipe_to_file
    from djtui.services.servers.mariadb import PrivateServer

    ap = argparse.ArgumentParser(prog="python -m bench dbbackup_dump", description=__doc__.splitlines()[0])
    ap.add_argument("--schemas", type=int, default=20)
    ap.add_argument("--mb", type=int, default=200, help="approximate row data in MB (the issue says 1024)")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="djtui-bench-dump-"))
    try:
        with PrivateServer(work / "srv", buffer_pool_mb=512) as srv:
            conn = srv.connect()
            t_fill, _ = _timed(lambda: _fill(conn, args.schemas, args.mb))
            with conn.cursor() as cur:
                cur.execute("SELECT SUM(data_length + index_length) FROM information_schema.tables "
                            "WHERE table_schema LIKE 'lab\\_%'")
                size = int(cur.fetchone()[0] or 0)
            conn.close()
            print(f"generated {args.schemas} schemas, {size / 2**20:.0f} MiB on disk in {t_fill:.1f} s")
            db = Database(srv.settings)
            tools = dbbackup.tools_for(db.backend)

            with db.backend.credentials_file(srv.settings) as cnf:
                plain = [*db.backend.tool_argv(tools.dump, cnf), "--all-databases", "--single-transaction",
                         "--max-allowed-packet=512M"]
                out = work / "plain.sql"

                def plain_raw() -> None:
                    with open(out, "wb") as f:
                        subprocess.run(plain, stdout=f, check=True)

                t_plain, _ = _timed(plain_raw)
                raw_mb = out.stat().st_size / 2**20
                out.unlink()
                t_plain_z, _ = _timed(lambda: pipe_to_file(plain, tools.compressor, work / "plain.z"))
                (work / "plain.z").unlink()

            t_djs, res_s = _timed(lambda: dbbackup.run_backup(db, work / "dj-s", parallel=args.parallel,
                                                               full_server=False))
            t_djf, res_f = _timed(lambda: dbbackup.run_backup(db, work / "dj-f", parallel=args.parallel,
                                                               full_server=True))
            db.close()
            print(f"plain mariadb-dump --all-databases > file ({raw_mb:.0f} MiB SQL): {t_plain:7.2f} s")
            print(f"plain mariadb-dump --all-databases | {Path(tools.compressor[0]).name}:"
                  f"{'':>14}{t_plain_z:7.2f} s")
            print(f"djtui dbbackup run --schemas-only (parallel {args.parallel}):{'':>10}{t_djs:7.2f} s   "
                  f"ratio vs plain {t_djs / t_plain:.2f}, vs plain+compress {t_djs / t_plain_z:.2f}")
            print(f"djtui dbbackup run (schemas + whole server):{'':>12}{t_djf:7.2f} s   "
                  f"ratio vs plain {t_djf / t_plain:.2f}, vs plain+compress {t_djf / t_plain_z:.2f}")
            if not args.no_verify:
                t_v, v = _timed(lambda: dbbackup.verify_backup(res_s.path, scratch_dir=work / "scratch"))
                print(f"djtui dbbackup verify (restore {args.schemas} schemas, count rows): {t_v:7.2f} s  "
                      f"ok={v.ok} tables={v.tables_checked}")
            del res_f
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0
