"""PostgreSQL backups: djtui's parallel per-schema dump vs pg_dump run schema by schema, one after another (<= 1.0).

A private PostgreSQL is filled with ``--schemas`` schemas of about ``--mb`` MB in total (the issue: 1 GB
in 20 schemas), generated server-side with ``generate_series`` (wide rows: a text column, a bytea of
random bytes, numbers), nothing cached in the repo. Then, side by side in one run:

* pg_dump: ``pg_dump --format=custom --schema=S --file=S.dump`` for each schema in turn (what an admin's
  cron loop does; the same format, options and credentials file djtui uses);
* djtui: ``run_backup`` with the per-schema files only (``--schemas-only``, the same work) and with the
  roles file as well (``pg_dumpall --globals-only``, the default);
* restore-verify (``--verify``): ``verify_backup`` of the djtui backup (pg_restore into a private server,
  exact row counts).

Each way runs ``--rounds`` times, alternating, and the best time of each is compared.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def _fill(conn, schemas: int, mb: int) -> None:
    """About ``mb`` MB of rows (~360 bytes each on disk) spread over ``schemas`` schemas."""
    rows = max(1, mb * 2**20 // 360 // schemas)
    with conn.cursor() as cur:
        for i in range(schemas):
            s = f"lab_{i:02d}"
            cur.execute(f"CREATE SCHEMA {s}")
            cur.execute(f"CREATE TABLE {s}.subject (id int PRIMARY KEY, name text)")
            cur.execute(f"INSERT INTO {s}.subject SELECT g, 'mouse ' || g FROM generate_series(1, 100) g")
            cur.execute(f"CREATE TABLE {s}.trace (id int PRIMARY KEY, subject int REFERENCES {s}.subject(id), "
                        "t timestamptz, value double precision, note text, data bytea)")
            cur.execute(f"INSERT INTO {s}.trace SELECT g, 1 + g % 100, now() - g * interval '1 s', random(), "
                        "repeat(md5(g::text), 6), decode(md5(random()::text) || md5(random()::text) || "
                        "md5(random()::text) || md5(random()::text), 'hex') "
                        f"FROM generate_series(1, {rows}) g")
        cur.execute("VACUUM ANALYZE")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str]) -> int:
    from djtui.services import dbbackup
    from djtui.services.database import Database
    from djtui.services.dbbackup.formats import format_for
    from djtui.services.dbbackup.pgformat import DUMP_OPTIONS, schema_pattern
    from djtui.services.servers.postgres import PrivatePostgres

    ap = argparse.ArgumentParser(prog="python -m bench pg_dbbackup", description=__doc__.splitlines()[0])
    ap.add_argument("--schemas", type=int, default=20)
    ap.add_argument("--mb", type=int, default=1024, help="approximate table data in MB (the issue: 1024)")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--verify", action="store_true", help="also time restore-verify of djtui's backup")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="djtui-bench-pgdump-"))
    try:
        with PrivatePostgres(work / "srv", shared_buffers_mb=256) as srv:
            conn = srv.connect()
            t_fill = _timed(lambda: _fill(conn, args.schemas, args.mb))
            with conn.cursor() as cur:
                cur.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname LIKE 'lab\\_%' AND c.relkind = 'r'")
                size = int(cur.fetchone()[0] or 0)
            conn.close()
            print(f"generated {args.schemas} schemas, {size / 2**20:.0f} MiB on disk (tables, TOAST and indexes) "
                  f"in {t_fill:.1f} s")
            db = Database(srv.settings)
            names = db.schemas()
            pg_dump = format_for(db.backend).tool("pg_dump")
            times: dict[str, list[float]] = {"serial": [], "djtui-s": [], "djtui": []}
            last = None
            with db.backend.credentials_file(srv.settings) as cred:
                base = [*db.backend.tool_argv(pg_dump, cred), *DUMP_OPTIONS]

                def serial(out: Path) -> None:
                    out.mkdir()
                    for s in names:
                        subprocess.run([*base, f"--schema={schema_pattern(s)}", f"--file={out / s}.dump"], check=True)

                for r in range(args.rounds):
                    times["serial"].append(_timed(lambda r=r: serial(work / f"serial-{r}")))
                    shutil.rmtree(work / f"serial-{r}")
                    times["djtui-s"].append(_timed(lambda r=r: dbbackup.run_backup(
                        db, work / f"dj-s-{r}", parallel=args.parallel, full_server=False)))
                    if r + 1 < args.rounds or not args.verify:
                        shutil.rmtree(work / f"dj-s-{r}")
                    else:
                        last = next((work / f"dj-s-{r}").iterdir())
                    times["djtui"].append(_timed(lambda r=r: dbbackup.run_backup(
                        db, work / f"dj-f-{r}", parallel=args.parallel, full_server=True)))
                    shutil.rmtree(work / f"dj-f-{r}")
            db.close()
            best = {k: min(v) for k, v in times.items()}
            print(f"{'way':<58}{'best s':>8}  {'all rounds':<22}ratio")
            rows = [("pg_dump -Fc schema by schema, one after another", "serial"),
                    (f"djtui dbbackup run --schemas-only (parallel {args.parallel})", "djtui-s"),
                    ("djtui dbbackup run (schemas + pg_dumpall --globals-only)", "djtui")]
            for label, key in rows:
                print(f"{label:<58}{best[key]:8.2f}  {' '.join(f'{t:.2f}' for t in times[key]):<22}"
                      f"{best[key] / best['serial']:.2f}")
            if last is not None:
                t0 = time.perf_counter()
                v = dbbackup.verify_backup(last, scratch_dir=work / "scratch")
                print(f"djtui dbbackup verify (pg_restore {len(names)} schemas into a private server, count rows): "
                      f"{time.perf_counter() - t0:.2f} s ok={v.ok} tables={v.tables_checked}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0
