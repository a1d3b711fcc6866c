"""Export on PostgreSQL: the cascade's key sets, the SQL file that psql loads into an EMPTY database,
the pg_dump script, the docker bundle's init script and ``export verify``, on the suite's private
PostgreSQL; DataJoint 2.3 answers the same key-set question on a pipeline it declared itself."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from djtui.domain.dialects import POSTGRES
from djtui.errors import OperationFailed, UserError
from djtui.services.database import Database
from djtui.services.export import (
    CountCancelled,
    LeafCount,
    count_leaf,
    count_plan,
    open_session,
    parse_leaf,
    prepare_export,
    verify_export,
    write_plan,
)
from tests.export.pglab import build_lab, drop_lab, lab_prefix


@pytest.fixture
def pg_db(pg_server):
    db = Database(pg_server.settings)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def lab(pg_server):
    p = lab_prefix()
    conn = pg_server.connect()
    build_lab(conn, p)
    try:
        yield p
    finally:
        drop_lab(conn, p)
        conn.close()


def _fresh_database(pg_server, name: str):
    pg_server.create_database(name)
    return dataclasses.replace(pg_server.settings, dbname=name)


def _psql(pg_server, settings, sql_file: Path) -> subprocess.CompletedProcess:
    """Load with psql itself (the backend's private .pgpass), stopping at the first error."""
    db = Database(settings)
    try:
        be = db.backend
        with be.credentials_file(settings) as cred:
            return subprocess.run([*be.tool_argv(be.dump_tools().client, cred), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                   "--single-transaction", "-f", str(sql_file)], capture_output=True, text=True,
                                  timeout=300)
    finally:
        db.close()


def _rows(conn, sql: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return sorted(cur.fetchall(), key=repr)


def _expected_keys(p: str) -> dict[str, set]:
    """What the export of trace sessions 5 and 7 must hold, from the lab's own structure."""
    return {
        f"{p}_acq.trace": {(s % 4 + 1, s, t) for s in (5, 7) for t in range(3)},
        f"{p}_lab.session": {(2, 5), (4, 7)},
        f"{p}_lab.subject": {(2,), (4,)},
        f"{p}_lab.session__file": {(s % 4 + 1, s, f) for s in (5, 7) for f in range(2)},
        f"{p}_lab.probe": {(1,), (2,), (3,), (4,)},  # 3 and 4 by the sessions, 2 and 1 as 3's parents
    }


def _plan(db, p: str, restriction: str = '"session_id" IN (5, 7)'):
    return prepare_export(db, [parse_leaf(f"{p}_acq.trace:{restriction}", dialect=POSTGRES)], [p])


def test_key_sets_and_counts(pg_db, lab):
    plan = _plan(pg_db, lab)
    with open_session(pg_db, plan.graph, list(plan.leaves)) as session:
        assert session.family == "postgresql"
        result = session.run()
        got = {t: session.keys(t) for t in session.plan.tables}
    assert got == _expected_keys(lab)
    assert result.counts == {t: len(k) for t, k in _expected_keys(lab).items()}
    counted = count_plan(pg_db, plan)
    assert {t.table: t.rows for t in counted.tables} == result.counts


def test_sql_export_loads_with_psql_into_an_empty_database(pg_server, pg_db, lab, tmp_path):
    manifest = write_plan(pg_db, _plan(pg_db, lab), tmp_path / "out")
    assert manifest["backend"] == "postgresql"
    assert pg_server.password.reveal() not in (tmp_path / "out" / "export.sql").read_text()
    target = _fresh_database(pg_server, f"{lab}_copy")
    load = _psql(pg_server, target, tmp_path / "out" / "export.sql")
    assert load.returncode == 0, load.stderr
    src, copy = pg_server.connect(), pg_server.connect(target.dbname)
    try:
        for table, keys in _expected_keys(lab).items():
            schema, name = table.split(".")
            pk = {"trace": "subject_id, session_id, trace_id", "session": "subject_id, session_id",
                  "subject": "subject_id", "session__file": "subject_id, session_id, file_no",
                  "probe": "probe_id"}[name]
            assert set(_rows(copy, f'SELECT {pk} FROM "{schema}"."{name}"')) == keys, table
            # every value came over as it was, the generated column computed again by the copy
            cond = f"({pk}) IN ({', '.join(str(k) if len(k) > 1 else f'({k[0]})' for k in keys)})"
            assert _rows(copy, f'SELECT * FROM "{schema}"."{name}"') == \
                _rows(src, f'SELECT * FROM "{schema}"."{name}" WHERE {cond}'), table
        # DataJoint 2.x's enum type, the foreign keys (checked as they were added), the sequence's place
        assert _rows(copy, f'SELECT enum_range(NULL::"{lab}_lab".enum_sex)::text') == [("{F,M,U}",)]
        fks = "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace " \
              f"WHERE c.contype = 'f' AND n.nspname LIKE '{lab}\\_%%'"
        assert _rows(copy, fks.replace("%%", "%")) == _rows(src, fks.replace("%%", "%")) == [(5,)]
        assert _rows(copy, f"SELECT nextval('\"{lab}_lab\".subject_subject_id_seq')") == [(5,)]
        assert _rows(copy, f"SELECT obj_description('\"{lab}_lab\".subject'::regclass)") == [("lab animals",)]
    finally:
        src.close()
        copy.close()
    checks = verify_export(tmp_path / "out")
    assert [c.table for c in checks] == [t["table"] for t in manifest["tables"]] and all(c.ok for c in checks)


def test_an_export_missing_a_parent_row_does_not_load(pg_server, pg_db, lab, tmp_path):
    """The foreign keys are added after the rows and checked against them: a file without a parent fails."""
    write_plan(pg_db, _plan(pg_db, lab), tmp_path / "out")
    sql = tmp_path / "out" / "export.sql"
    text = sql.read_text()
    assert "\n2\t1\tshank\n" in text
    sql.write_text(text.replace("\n2\t1\tshank\n", "\n"))
    load = _psql(pg_server, _fresh_database(pg_server, f"{lab}_broken"), sql)
    assert load.returncode != 0 and "foreign key" in load.stderr
    with pytest.raises(OperationFailed, match="foreign key"):
        verify_export(tmp_path / "out")


def test_verify_finds_a_changed_value(pg_db, lab, tmp_path):
    write_plan(pg_db, _plan(pg_db, lab), tmp_path / "out")
    sql = tmp_path / "out" / "export.sql"
    sql.write_text(sql.read_text().replace("raw/5/0.bin", "raw/5/X.bin"))
    bad = [c for c in verify_export(tmp_path / "out") if not c.ok]
    assert [c.table for c in bad] == [f"{lab}_lab.session__file"] and bad[0].rows == bad[0].expected_rows


def _pgpass(pg_server, path: Path) -> Path:
    path.write_text(f"127.0.0.1:{pg_server.port}:*:djadmin:{pg_server.password.reveal()}\n")
    path.chmod(0o600)
    return path


def test_pg_dump_script_writes_an_export_that_verifies(pg_server, pg_db, lab, tmp_path):
    out = tmp_path / "out"
    manifest = write_plan(pg_db, _plan(pg_db, lab), out, fmt="script", batch_rows=2)
    for f in out.iterdir():
        assert pg_server.password.reveal() not in f.read_text(), f
    assert "pg_dump --schema-only" in (out / "export.sh").read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    run = subprocess.run([str(out / "export.sh"), str(_pgpass(pg_server, tmp_path / "pgpass"))], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    checks = verify_export(out)
    assert all(c.ok for c in checks) and [c.rows for c in checks] == [t["rows"] for t in manifest["tables"]]
    assert sum(c.rows or 0 for c in checks) == sum(map(len, _expected_keys(lab).values()))
    loose = tmp_path / "loose"
    loose.write_text("x")
    loose.chmod(0o644)
    refused = subprocess.run([str(out / "export.sh"), str(loose)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "0600" in refused.stderr


def test_docker_bundle_loads_once_with_the_postgres_image_init_script(pg_server, pg_db, lab, tmp_path):
    out = tmp_path / "out"
    manifest = write_plan(pg_db, _plan(pg_db, lab), out, fmt="docker")
    compose = (out / "docker-compose.yml").read_text()
    assert "  postgres:\n    image: postgres:15" in compose
    assert "/docker-entrypoint-initdb.d/50-djtui-load-once.sh" in compose and manifest["sql_file"] == "db/export.sql"
    target = _fresh_database(pg_server, f"{lab}_docker")
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, "PGHOST": "127.0.0.1",
           "PGPORT": str(pg_server.port), "PGPASSFILE": str(_pgpass(pg_server, tmp_path / "pgpass")),
           "POSTGRES_USER": "djadmin", "POSTGRES_DB": target.dbname, "PGDATA": str(pgdata),
           "DJTUI_EXPORT_SQL": str(out / "db" / "export.sql")}
    first = subprocess.run(["bash", str(out / "db" / "load-once.sh")], env=env, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0 and "export loaded" in first.stdout, first.stderr
    assert (pgdata / ".djtui-export-loaded").exists()
    again = subprocess.run(["bash", str(out / "db" / "load-once.sh")], env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "already loaded" in again.stdout
    copy = pg_server.connect(target.dbname)
    try:
        assert _rows(copy, f'SELECT count(*) FROM "{lab}_acq".trace') == [(6,)]
    finally:
        copy.close()
    # a load that fails leaves nothing behind (one transaction) and no marker
    broken_sql = tmp_path / "broken.sql"
    broken_sql.write_text((out / "db" / "export.sql").read_text().replace("\n2\t1\tshank\n", "\n"))
    other = _fresh_database(pg_server, f"{lab}_docker2")
    (pgdata / ".djtui-export-loaded").unlink()
    failed = subprocess.run(["bash", str(out / "db" / "load-once.sh")], capture_output=True, text=True, timeout=300,
                            env={**env, "POSTGRES_DB": other.dbname, "DJTUI_EXPORT_SQL": str(broken_sql)})
    assert failed.returncode != 0 and "FAILED" in failed.stderr
    assert not (pgdata / ".djtui-export-loaded").exists()
    conn = pg_server.connect(other.dbname)
    try:
        assert _rows(conn, f"SELECT count(*) FROM pg_namespace WHERE nspname LIKE '{lab}%'") == [(0,)]
    finally:
        conn.close()


def test_restriction_errors_are_clear(pg_db, lab):
    with pytest.raises(UserError, match="no_such_column") as bad:
        count_plan(pg_db, _plan(pg_db, lab, "no_such_column = 1"))
    assert bad.value.exit_code == 2
    with pytest.raises(UserError, match="read-only") as writes:
        count_plan(pg_db, _plan(pg_db, lab, f"nextval('\"{lab}_lab\".subject_subject_id_seq') > 0"))
    assert "read-only" in str(writes.value.hint)
    slow = dataclasses.replace(_plan(pg_db, lab, "pg_sleep(3) IS NOT NULL"), statement_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(OperationFailed, match="statement time limit"):
        count_plan(pg_db, slow)
    assert time.monotonic() - started < 2.5


def test_leaf_count_and_its_cancel(pg_db, lab):
    leaf = parse_leaf(f'{lab}_acq.trace:"session_id" IN (5, 7)', dialect=POSTGRES)
    assert count_leaf(pg_db, leaf) == 6
    check = LeafCount(pg_db, parse_leaf(f"{lab}_acq.trace:pg_sleep(30) IS NOT NULL"))
    box: dict = {}

    def run() -> None:
        try:
            box["n"] = check.run()
        except BaseException as exc:
            box["exc"] = exc

    worker = threading.Thread(target=run)
    started = time.monotonic()
    worker.start()
    while check._conn_id is None and time.monotonic() - started < 10:
        time.sleep(0.02)
    time.sleep(0.2)
    check.cancel()
    worker.join(10)
    assert isinstance(box.get("exc"), CountCancelled) and time.monotonic() - started < 8


def test_datajoint_lab_exports_what_datajoint_says(pg_server, pg_db, tmp_path):
    """DataJoint 2.3 declares and fills a pipeline on the private PostgreSQL and says which keys an
    export of ``Result & 'session_id >= 6'`` needs; djtui's key sets and the loaded copy agree."""
    prefix = lab_prefix()
    env = {**os.environ, "PGPORT": str(pg_server.port), "PGPW": pg_server.password.reveal(), "PREFIX": prefix}
    run = subprocess.run([sys.executable, str(Path(__file__).with_name("pg_djlab.py"))], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    told = json.loads(run.stdout.strip().splitlines()[-1])["keys"]
    names = {"result": "result", "session": "session", "subject": "subject", "method": "#method",
             "channel": "session__channel"}
    plan = prepare_export(pg_db, [parse_leaf(f"{prefix}_lab.result:session_id >= 6")], [prefix])
    with open_session(pg_db, plan.graph, list(plan.leaves)) as session:
        session.run()
        ours = {k: sorted(map(list, session.keys(f"{prefix}_lab.{n}"))) for k, n in names.items()}
        assert f"{prefix}_lab.~lineage" not in session.plan.tables
    assert ours == told
    write_plan(pg_db, plan, tmp_path / "out")
    target = _fresh_database(pg_server, f"{prefix}_copy")
    load = _psql(pg_server, target, tmp_path / "out" / "export.sql")
    assert load.returncode == 0, load.stderr
    copy = pg_server.connect(target.dbname)
    try:
        for key, name in names.items():
            cols = ", ".join(f'"{c}"' for c in pg_db.backend.primary_key(f"{prefix}_lab", name))
            assert sorted(map(list, _rows(copy, f'SELECT {cols} FROM "{prefix}_lab"."{name}"'))) == told[key], key
    finally:
        copy.close()
    assert all(c.ok for c in verify_export(tmp_path / "out"))


def test_cli_plan_write_verify(pg_server, lab, tmp_path):
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(f"database:\n  backend: postgresql\n  name: postgres\n  host: 127.0.0.1\n  port: {pg_server.port}\n"
                   f"  user: djadmin\n  password: {pg_server.password.reveal()}\n  use_datajoint_config: false\n"
                   f"state_dir: {tmp_path}/state\n")
    cfg.chmod(0o600)
    base = [sys.executable, "-m", "djtui", "--config", str(cfg), "export"]
    leaf = ["--prefix", lab, "--leaf", f'{lab}_lab.session:{{"subject_id": 2, "session_id": 5}}']
    plan = subprocess.run([*base, "plan", *leaf, "--json"], capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert {r["table"]: r["rows"] for r in json.loads(plan.stdout)} == {
        f"{lab}_lab.probe": 3, f"{lab}_lab.subject": 1, f"{lab}_lab.session": 1, f"{lab}_lab.session__file": 2}
    write = subprocess.run([*base, "write", *leaf, "--out", str(tmp_path / "out")], capture_output=True, text=True,
                           timeout=120)
    assert write.returncode == 0, write.stderr
    verify = subprocess.run([*base, "verify", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0 and "verified: 4 tables match" in verify.stdout, verify.stderr
    script = subprocess.run([*base, "write", *leaf, "--format", "script", "--out", str(tmp_path / "script")],
                            capture_output=True, text=True, timeout=120)
    assert script.returncode == 0 and "export.sh PGPASSFILE" in script.stdout, script.stderr
    unverified = subprocess.run([*base, "verify", str(tmp_path / "script")], capture_output=True, text=True,
                                timeout=120)
    assert unverified.returncode == 2 and "run ./export.sh" in unverified.stderr
    bad = subprocess.run([*base, "plan", "--prefix", lab, "--leaf", f"{lab}_lab.session:nope = 1"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "nope" in bad.stderr and pg_server.password.reveal() not in bad.stderr


def test_stored_objects_in_jsonb_columns_are_listed_and_checked(pg_server, pg_db, tmp_path):
    """DataJoint 2.x keeps a stored object's address as JSON (jsonb on PostgreSQL); the export lists
    the objects of the exported rows and checks them in the configured store."""
    from djtui.config import StoreSettings

    p = lab_prefix()
    conn = pg_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{p}_obj"')
            cur.execute(f'CREATE TABLE "{p}_obj".rec (rec_id int PRIMARY KEY, params jsonb, payload jsonb)')
            cur.execute(f"COMMENT ON COLUMN \"{p}_obj\".rec.payload IS ':<object@raw>:the recording'")
            cur.execute(f'INSERT INTO "{p}_obj".rec VALUES (1, %s, %s), (2, %s, %s), (3, %s, NULL)',
                        ('{"gain": 2}', '{"store": "raw", "path": "rec/1.dat", "size": 3}', '{"path": "not/a/store"}',
                         '{"store": "raw", "path": "rec/2.dat", "size": 5}', '{"store": "raw", "path": "rec/3.dat"}'))
        root = tmp_path / "store"
        (root / "rec").mkdir(parents=True)
        (root / "rec" / "1.dat").write_bytes(b"abc")
        stores = [StoreSettings(name="raw", protocol="file", location=str(root))]
        plan = prepare_export(pg_db, [parse_leaf(f"{p}_obj.rec:rec_id IN (1, 2, 3)")], [p])
        files = {(f.store, f.path): f.exists for f in count_plan(pg_db, plan, stores).files or ()}
        # params of row 3 names a store too: every JSON column is read, the objects of exported rows only
        assert files == {("raw", "rec/1.dat"): True, ("raw", "rec/2.dat"): False, ("raw", "rec/3.dat"): False}
        manifest = write_plan(pg_db, plan, tmp_path / "out", stores=stores)
        assert manifest["stored_files"]["count"] == 3 and manifest["stored_files"]["missing"] == 2
        assert "rec/2.dat\t5\tMISSING" in (tmp_path / "out" / "files.tsv").read_text()
    finally:
        drop = conn.cursor()
        drop.execute(f'DROP SCHEMA "{p}_obj" CASCADE')
        conn.close()


def test_one_snapshot_whatever_the_lab_writes_meanwhile(pg_server, pg_db, lab, tmp_path):
    """Key sets, rows and DDL come from the export's one snapshot: rows the lab inserts, updates or
    deletes after it started are exported as they were, and the copy still loads and verifies.
    (A schema change waits for the export: its transaction holds ACCESS SHARE locks, as pg_dump's does.)"""
    from djtui.services.export.writers.pgsql import write_pg_sql

    plan = _plan(pg_db, lab)
    writer = pg_server.connect()
    try:
        with open_session(pg_db, plan.graph, list(plan.leaves)) as session:
            session.want_ddl = True
            session.run()
            with writer.cursor() as cur:
                cur.execute(f'INSERT INTO "{lab}_acq".trace (subject_id, session_id, trace_id, value) '
                            "VALUES (2, 5, 99, 1.0)")
                cur.execute(f'UPDATE "{lab}_lab".session SET meta = \'{{"changed": true}}\' WHERE session_id = 5')
                cur.execute(f'DELETE FROM "{lab}_lab".session__file WHERE session_id = 7')
            manifest = write_pg_sql(session, tmp_path / "out")
    finally:
        writer.close()
    assert {t["table"]: t["rows"] for t in manifest["tables"]} == {t: len(k) for t, k in _expected_keys(lab).items()}
    text = (tmp_path / "out" / "export.sql").read_text()
    assert '"changed"' not in text and '"rig": "a"' in text and "\t99\t" not in text
    assert all(c.ok for c in verify_export(tmp_path / "out"))


def test_record_export_on_postgresql(pg_server, pg_db, tmp_path):
    """``djtui.record_export`` notes DataJoint 2.x queries on PostgreSQL (double-quoted names) as leaves
    that plan there: the sessions the export holds are the ones the recorded fetches returned."""
    from djtui.services.export.recording import read_leaves

    prefix = lab_prefix()
    env = {**os.environ, "PGPORT": str(pg_server.port), "PGPW": pg_server.password.reveal(), "PREFIX": prefix,
           "RECORD": str(tmp_path / "leaves.json")}
    run = subprocess.run([sys.executable, str(Path(__file__).with_name("pg_djlab.py"))], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    told = json.loads(run.stdout.strip().splitlines()[-1])
    leaves = read_leaves(tmp_path / "leaves.json")
    assert [lf.table for lf in leaves] == [f"{prefix}_lab.result", f"{prefix}_lab.session", f"{prefix}_lab.subject",
                                           f"{prefix}_lab.session"]
    plan = prepare_export(pg_db, leaves, [prefix])
    with open_session(pg_db, plan.graph, list(plan.leaves)) as session:
        session.run()
        sessions = sorted(map(list, session.keys(f"{prefix}_lab.session")))
    assert sessions == told["recorded_sessions"] and len(sessions) == 6


def test_an_unreadable_ancestor_is_named_as_such(pg_server, lab):
    """PostgreSQL's catalogs show every table, readable or not: a parent in a schema the export's
    user may not use is named before the cascade runs, with the grant that is missing."""
    from djtui.config import Secret

    user, pw = f"{lab}_reader", "Pw-9sd8f7!x"
    conn = pg_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {user} LOGIN PASSWORD %s", (pw,))
            cur.execute(f'GRANT USAGE ON SCHEMA "{lab}_acq" TO {user}')
            cur.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{lab}_acq" TO {user}')
        limited = Database(dataclasses.replace(pg_server.settings, user=user, password=Secret(pw)))
        try:
            with pytest.raises(UserError) as info:
                count_plan(limited, _plan(limited, lab))
        finally:
            limited.close()
        assert "an ancestor of the export, but djtui cannot read it" in str(info.value)
        assert f"{lab}_lab." in str(info.value) and "USAGE" in str(info.value.hint)
    finally:
        with conn.cursor() as cur:
            cur.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{lab}_acq" FROM {user}')
            cur.execute(f'REVOKE ALL ON SCHEMA "{lab}_acq" FROM {user}')
            cur.execute(f"DROP ROLE {user}")
        conn.close()
