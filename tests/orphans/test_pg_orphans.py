"""Orphans on PostgreSQL (issue 15), on the suite's private PostgreSQL.

Orphan rows through the real foreign keys (``pg_catalog``, a renamed foreign key from another
schema): the server answers the same question itself (a ``DELETE`` its foreign keys refuse). The
row quarantine keeps every value in its ``::text`` form and puts it back identical to what
``pg_dump`` writes, with hostile identifiers, an enum type, arrays, ``jsonb``, ``bytea`` and a
generated column. DataJoint 2.x stores (file and S3) read their references from ``jsonb``
columns; a plan made stale by a new child row is re-checked under the lock.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import boto3
import psycopg2
import pytest
from orphans_lab import put

from djtui.cli import main
from djtui.config import parse_config
from djtui.domain import stores as ds
from djtui.errors import UserError
from djtui.services.database import Database
from djtui.services.orphans import OrphanService

ODD = 'odd "col'  # a column name that needs its double quote doubled


def pg_config_text(pg_server, tmp_path, extra: str = "") -> str:
    return (f"database:\n  backend: postgresql\n  name: {pg_server.settings.dbname}\n  host: 127.0.0.1\n"
            f"  port: {pg_server.port}\n  user: djadmin\n  password: {pg_server.password.reveal()}\n"
            f"  use_datajoint_config: false\nstate_dir: {tmp_path}/state\n" + extra)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def pg_conn(pg_server):
    conn = pg_server.connect()
    yield conn
    conn.close()


@pytest.fixture
def pg_schema(pg_conn):
    """A unique schema name prefix; every schema starting with it is dropped afterwards."""
    name = f"orph_{uuid.uuid4().hex[:8]}"
    yield name
    with pg_conn.cursor() as cur:
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (name + "%",))
        for (s,) in cur.fetchall():
            cur.execute(f'DROP SCHEMA "{s}" CASCADE')


@pytest.fixture
def pg_db(pg_server):
    db = Database(pg_server.settings)
    yield db
    db.close()


def sql(conn, *statements, args=None):
    with conn.cursor() as cur:
        for s in statements:
            cur.execute(s, args)


def server_refuses_delete(conn, schema: str, table: str, key_cols: list[str]) -> set[tuple]:
    """The keys whose DELETE the server's own foreign keys allow (each tried, then rolled back)."""
    with conn.cursor() as cur:
        cur.execute(f'SELECT {", ".join(key_cols)} FROM "{schema}"."{table}"')
        keys = cur.fetchall()
    free = set()
    for key in keys:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            try:
                cond = " AND ".join(f"{c} = %s" for c in key_cols)
                cur.execute(f'DELETE FROM "{schema}"."{table}" WHERE {cond}', key)
                free.add(tuple(key))
            except psycopg2.errors.ForeignKeyViolation:
                pass
            finally:
                cur.execute("ROLLBACK")
    return free


@pytest.fixture
def table_lab(pg_conn, pg_schema):
    """interval_list with one child by name and one in another schema through a renamed foreign key."""
    s, other = pg_schema, pg_schema + "_v2"
    sql(pg_conn, f'CREATE SCHEMA "{s}"', f'CREATE SCHEMA "{other}"',
        f'CREATE TABLE "{s}".interval_list (nwb_file_name varchar(64), interval_list_name varchar(64), '
        "PRIMARY KEY (nwb_file_name, interval_list_name))",
        f'CREATE TABLE "{s}".lfp (nwb_file_name varchar(64), interval_list_name varchar(64), '
        "PRIMARY KEY (nwb_file_name, interval_list_name), FOREIGN KEY (nwb_file_name, interval_list_name) "
        f'REFERENCES "{s}".interval_list (nwb_file_name, interval_list_name))',
        f'CREATE TABLE "{other}".sorting (id int PRIMARY KEY, nwb_file_name varchar(64), '
        "sort_interval_name varchar(64), FOREIGN KEY (nwb_file_name, sort_interval_name) "
        f'REFERENCES "{s}".interval_list (nwb_file_name, interval_list_name))',
        f"INSERT INTO \"{s}\".interval_list VALUES ('f.nwb', 'by_lfp'), ('f.nwb', 'by_renamed'), "
        "('f.nwb', 'orphan1'), ('f.nwb', 'orphan2'), ('f.nwb', 'by_both')",
        f"INSERT INTO \"{s}\".lfp VALUES ('f.nwb', 'by_lfp'), ('f.nwb', 'by_both')",
        f"INSERT INTO \"{other}\".sorting VALUES (1, 'f.nwb', 'by_renamed'), (2, 'f.nwb', 'by_both')")
    return s, other


def test_orphan_rows_follow_renamed_foreign_keys_as_the_server_does(pg_server, pg_db, pg_conn, table_lab, tmp_path):
    s, other = table_lab
    svc = OrphanService(parse_config(pg_config_text(pg_server, tmp_path,
                                                    f"orphans:\n  tables: [{s}.interval_list]\n")), pg_db)
    src = f"table:{s}.interval_list"
    result = svc.scan(svc.resolve(src))
    found = {(i.key["nwb_file_name"], i.key["interval_list_name"]) for i in result.items}
    # the server's own foreign keys allow deleting exactly these (a name-based antijoin would add by_renamed)
    assert found == server_refuses_delete(pg_conn, s, "interval_list", ["nwb_file_name", "interval_list_name"])
    assert found == {("f.nwb", "orphan1"), ("f.nwb", "orphan2")}
    assert dict(result.children) == {f"{s}.lfp(nwb_file_name, interval_list_name)": 2,
                                     f"{other}.sorting(nwb_file_name, sort_interval_name)": 2}
    assert result.total == 5 and result.warnings == ()

    # a trigger that raises on insert (a cleanup's leftover) is named
    sql(pg_conn, f'CREATE FUNCTION "{s}".refuse() RETURNS trigger LANGUAGE plpgsql AS '
        "$$BEGIN RAISE EXCEPTION 'cleanup running'; END$$",
        f'CREATE TRIGGER block_lfp BEFORE INSERT ON "{s}".lfp FOR EACH ROW EXECUTE FUNCTION "{s}".refuse()')
    (warning,) = svc.scan(svc.resolve(src)).warnings
    assert f"{s}.block_lfp" in warning and "INSERT" in warning
    sql(pg_conn, f'DROP TRIGGER block_lfp ON "{s}".lfp')

    with pytest.raises(UserError, match="more than the allowed"):
        svc.quarantine_source(src, dry_run=False)  # 2 of 5 rows is over the default 20%
    # a plan, then a child row for one of its orphans: the re-check under the lock keeps that parent
    plan = svc.plan(src, max_share=0.5)
    assert plan.rows == 2
    sql(pg_conn, f"INSERT INTO \"{s}\".lfp VALUES ('f.nwb', 'orphan2')")
    done = svc.execute(plan)
    assert (done.rows, done.skipped) == (1, 1) and done.row_batch
    with pg_conn.cursor() as cur:
        cur.execute(f'SELECT interval_list_name FROM "{s}".interval_list')
        assert {r[0] for r in cur.fetchall()} == {"by_lfp", "by_renamed", "by_both", "orphan2"}
    assert [e["key"] for e in svc.restore(done.row_batch)] == [
        {"nwb_file_name": "Zi5ud2I=", "interval_list_name": "b3JwaGFuMQ=="}]  # base64 of the text forms
    with pg_conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{s}".interval_list')
        assert cur.fetchone()[0] == 5


@pytest.fixture
def rows_lab(pg_conn, pg_schema, pg_server, tmp_path):
    """A table of every awkward kind of value, three rows of which two are orphans."""
    s = pg_schema
    sql(pg_conn, f'CREATE SCHEMA "{s}"', f"CREATE TYPE \"{s}\".mood AS ENUM ('calm', 'it''s odd')",
        f'CREATE TABLE "{s}"."Session" (subject text, n int, data bytea, "{ODD.replace(chr(34), chr(34) * 2)}" '
        "text, at timestamptz NOT NULL, amount numeric(20,8) NOT NULL, ratio double precision, "
        f'tags int[], meta jsonb, mood "{s}".mood, twice bigint GENERATED ALWAYS AS (n * 2) STORED, '
        "PRIMARY KEY (subject, n))",
        f'CREATE TABLE "{s}".trial (subject text, n int, t int, PRIMARY KEY (subject, n, t), '
        f'FOREIGN KEY (subject, n) REFERENCES "{s}"."Session" (subject, n))')
    with pg_conn.cursor() as cur:
        cur.executemany(
            f'INSERT INTO "{s}"."Session" (subject, n, data, "{ODD.replace(chr(34), chr(34) * 2)}", at, amount, '
            "ratio, tags, meta, mood) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", [
                ("m\U0001f42d1", 1, psycopg2.Binary(b"\x00\\x00'\xff" * 1000), "caf\u00e9 'quoted' \\ back",
                 "2024-02-29 23:59:59.123456+02", "-12345678901.12345678", 0.1, [1, None, 3],
                 json.dumps({"a": [1, 2.5, None], "b": "\u00e9"}), "it's odd"),
                ("m2", 2, None, None, "1999-12-31 00:00:00.000001+00", "0.00000001", None, None, None, None),
                ("kept", 3, b"x", "referenced", "2020-01-01 00:00:00+00", "1", 1.5, [], "{}", "calm")])
        cur.execute(f"INSERT INTO \"{s}\".trial VALUES ('kept', 3, 1)")
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(pg_config_text(pg_server, tmp_path, f"orphans:\n  tables: [{s}.Session]\n  max_share: 1.0\n"))
    cfg.chmod(0o600)
    return s, cfg


def pg_dump_rows(pg_server, schema: str, table: str) -> list[str]:
    """The table's rows as ``pg_dump --data-only`` writes them (COPY text), sorted."""
    db = Database(pg_server.settings)
    try:
        be = db.backend
        with be.credentials_file(pg_server.settings) as cred:
            res = subprocess.run([*be.tool_argv(be.dump_tools().dump, cred), "--data-only",
                                  f'--table="{schema}"."{table}"'], capture_output=True, text=True, timeout=60)
    finally:
        db.close()
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("COPY "))
    end = lines.index("\\.", start)
    return sorted(lines[start + 1:end])


def test_rows_are_quarantined_whole_and_restored_as_pg_dump_wrote_them(capsys, pg_server, pg_conn, rows_lab,
                                                                       tmp_path):
    s, cfg = rows_lab
    before = pg_dump_rows(pg_server, s, "Session")
    assert len(before) == 3
    code, out, err = run(capsys, "--config", str(cfg), "orphans", "quarantine", "--source", f"table:{s}.Session",
                         "--confirm", "QUARANTINE", "--json")
    assert code == 0, err
    done = json.loads(out)
    assert done["rows"] == 2 and done["row_batch"]
    assert len(pg_dump_rows(pg_server, s, "Session")) == 1
    manifest = json.loads((tmp_path / "state" / "quarantine" / done["row_batch"] / "manifest.json").read_text())
    assert manifest["primary_key"] == ["subject", "n"] and f'CREATE TABLE "{s}"."Session"' in manifest["create_table"]
    assert {c["name"]: c["generated"] for c in manifest["columns"]}["twice"] is True

    code, out, err = run(capsys, "--config", str(cfg), "orphans", "restore", done["row_batch"])
    assert code == 0, err
    assert pg_dump_rows(pg_server, s, "Session") == before  # every value as pg_dump writes it, generated too
    assert pg_server.password.reveal() not in (out + err)


def test_a_key_taken_again_refuses_the_batch_unless_skip_existing(capsys, pg_server, pg_conn, rows_lab):
    s, cfg = rows_lab
    code, out, err = run(capsys, "--config", str(cfg), "orphans", "quarantine", "--source", f"table:{s}.Session",
                         "--confirm", "QUARANTINE", "--json")
    assert code == 0, err
    batch = json.loads(out)["row_batch"]
    sql(pg_conn, f"INSERT INTO \"{s}\".\"Session\" (subject, n, at, amount) VALUES ('m2', 2, now(), 7)")
    code, _, err = run(capsys, "--config", str(cfg), "orphans", "restore", batch)
    assert code == 1 and "exist again with other contents" in err and "n='2'" in err
    assert len(pg_dump_rows(pg_server, s, "Session")) == 2  # rolled back: nothing restored
    code, out, err = run(capsys, "--config", str(cfg), "orphans", "restore", batch, "--skip-existing")
    assert code == 0, err
    rows = pg_dump_rows(pg_server, s, "Session")
    assert len(rows) == 3 and any(r.startswith("m2\t2\t") and "\t7.00000000\t" in r for r in rows)


def _store_lab(pg_conn, s: str, root_files: dict[str, bytes], write) -> dict[str, set[str]]:
    """A DataJoint 2.x-like schema (jsonb columns) and store; returns what a scan must report."""
    live, dead = ds.content_hash(b"live"), ds.content_hash(b"dead")
    files = {ds.hash_path(s, live): b"live", ds.hash_path(s, dead): b"dead",
             ds.schema_path(s, "rec", "id=1", "a.npy"): b"npy1", ds.schema_path(s, "rec", "id=1", "a.npy") +
             ".manifest.json": b"{}", ds.schema_path(s, "rec", "id=2", "a.npy"): b"npy2", **root_files}
    for rel, data in files.items():
        write(rel, data)
    sql(pg_conn, f'CREATE SCHEMA "{s}"', f'CREATE TABLE "{s}".rec (id int PRIMARY KEY, obj jsonb, payload jsonb, '
        "note json)")
    with pg_conn.cursor() as cur:
        cur.execute(f'INSERT INTO "{s}".rec VALUES (1, %s, %s, %s), (2, %s, NULL, %s)', (
            json.dumps({"path": ds.schema_path(s, "rec", "id=1", "a.npy"), "store": "new", "schema": s}),
            json.dumps({"hash": live, "path": ds.hash_path(s, live), "store": "new", "size": 4}),
            json.dumps({"path": ds.schema_path(s, "rec", "id=2", "a.npy"), "store": "other"}),  # another store's
            json.dumps([1, 2]), json.dumps("just text")))
    return {ds.UNTRACKED_OBJECT: {ds.hash_path(s, dead), ds.schema_path(s, "rec", "id=2", "a.npy")}}


def test_2x_file_store_on_postgres(pg_server, pg_db, pg_conn, pg_schema, tmp_path):
    loc = tmp_path / "store"
    expected = _store_lab(pg_conn, pg_schema, {"datajoint_store.json": b"{}"}, lambda rel, d: put(loc, rel, d))
    cfg = parse_config(pg_config_text(pg_server, tmp_path, f"stores:\n  new:\n    protocol: file\n    location: {loc}\n"
                                      "orphans:\n  max_share: 0.6\n"))
    svc = OrphanService(cfg, pg_db)
    assert [s.name for s in svc.sources()] == ["store:new"]
    got: dict[str, set[str]] = {}
    for i in svc.scan(svc.resolve("store:new")).items:
        got.setdefault(i.reason, set()).add(i.path)
    assert got == expected
    done = svc.quarantine_source("store:new", dry_run=False)
    assert done.files == 2 and not any((loc / p).exists() for p in expected[ds.UNTRACKED_OBJECT])
    svc.restore(done.batch_id)
    assert all((loc / p).read_bytes() in (b"dead", b"npy2") for p in expected[ds.UNTRACKED_OBJECT])


def test_2x_s3_store_on_postgres(pg_server, pg_db, pg_conn, pg_schema, tmp_path, s3_endpoint):
    client = boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    bucket = f"pg-{pg_schema.replace('_', '-')}"
    client.create_bucket(Bucket=bucket)
    expected = _store_lab(pg_conn, pg_schema, {},
                          lambda rel, d: client.put_object(Bucket=bucket, Key=f"loc/{rel}", Body=d))
    cfg = parse_config(pg_config_text(pg_server, tmp_path, (
        f"stores:\n  new:\n    protocol: s3\n    location: loc\n    endpoint: {s3_endpoint}\n"
        f"    bucket: {bucket}\n    access_key: testing\n    secret_key: testing\n    secure: false\n"
        "orphans:\n  grace_hours: 0\n  max_share: 0.6\n")))
    svc = OrphanService(cfg, pg_db)
    result = svc.scan(svc.resolve("store:new"))
    assert {i.path for i in result.items} == expected[ds.UNTRACKED_OBJECT]
    done = svc.quarantine_source("store:new", dry_run=False)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert all(f"loc/{p}" not in keys for p in expected[ds.UNTRACKED_OBJECT])
    svc.restore(done.batch_id)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert all(f"loc/{p}" in keys for p in expected[ds.UNTRACKED_OBJECT])


def test_unknown_table_and_the_cli_scan(capsys, pg_server, pg_schema, pg_conn, table_lab, tmp_path):
    s, _ = table_lab
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(pg_config_text(pg_server, tmp_path, f"orphans:\n  tables: [{s}.interval_list, {s}.nope]\n"))
    cfg.chmod(0o600)
    code, out, err = run(capsys, "--config", str(cfg), "orphans", "scan", "--source", f"table:{s}.interval_list",
                         "--json")
    assert code == 0, err
    items = json.loads(out)["items"]
    assert {i["key"]["interval_list_name"] for i in items} == {"orphan1", "orphan2"}
    code, _, err = run(capsys, "--config", str(cfg), "orphans", "scan", "--source", f"table:{s}.nope")
    assert code == 2 and f"table {s}.nope does not exist" in err
    assert pg_server.password.reveal() not in err


def test_a_connection_killed_mid_delete_deletes_nothing_and_keeps_no_batch(pg_server, pg_db, pg_conn, table_lab,
                                                                           tmp_path, monkeypatch):
    """pg_terminate_backend on the deleting connection between two rows: one transaction, so nothing goes."""
    import threading

    from djtui.errors import OperationFailed
    from djtui.services.testhook import ENV

    s, _ = table_lab
    svc = OrphanService(parse_config(pg_config_text(pg_server, tmp_path, f"orphans:\n  tables: [{s}.interval_list]\n"
                                                    "  max_share: 0.5\n")), pg_db)
    monkeypatch.setenv(ENV, "1.5")
    box: dict = {}

    def act() -> None:
        try:
            box["done"] = svc.quarantine_source(f"table:{s}.interval_list", dry_run=False)
        except BaseException as exc:
            box["exc"] = exc

    worker = threading.Thread(target=act)
    worker.start()
    killed = False
    deadline = time.monotonic() + 20
    while not killed and time.monotonic() < deadline:
        with pg_conn.cursor() as cur:  # the deleting session: inside its transaction, holding the row locks
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'djtui' "
                        "AND state = 'idle in transaction' AND pid <> pg_backend_pid()")
            killed = any(r[0] for r in cur.fetchall())
        time.sleep(0.05)
    worker.join(30)
    assert killed and isinstance(box.get("exc"), OperationFailed), box
    assert "no row was deleted" in str(box["exc"])
    with pg_conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{s}".interval_list')
        assert cur.fetchone()[0] == 5
    qdir = tmp_path / "state" / "quarantine"
    assert not qdir.exists() or not any(p.is_dir() for p in qdir.iterdir())


def test_untracked_files_of_a_managed_directory_on_postgres(pg_server, pg_db, pg_conn, pg_schema, tmp_path):
    """Spyglass's analysis folder as a DataJoint 2.x lab on PostgreSQL keeps it: files no row names."""
    s, d, t = pg_schema, tmp_path / "analysis", tmp_path / "tmp"
    put(d, "s1/s1_A.nwb", b"aaa")  # named by file name, in Spyglass's folder
    put(d, "s2/b.nwb", b"bbb")  # named by absolute path
    put(d, "s2/c.nwb", b"orphan")
    put(d, "s1/s1_Z.nwb", b"")  # named, but empty
    put(t, "old.tmp", b"old", mtime=time.time() - 8 * 86400)
    sql(pg_conn, f'CREATE SCHEMA "{s}"', f'CREATE TABLE "{s}".analysis_nwbfile (analysis_file_name varchar(255) '
        "PRIMARY KEY)", f'CREATE TABLE "{s}".custom_analysis (id int PRIMARY KEY, path varchar(255))',
        f"INSERT INTO \"{s}\".analysis_nwbfile VALUES ('s1_A.nwb'), ('s1_Z.nwb')")
    sql(pg_conn, f'INSERT INTO "{s}".custom_analysis VALUES (1, %s)', args=(str(d / "s2/b.nwb"),))
    svc = OrphanService(parse_config(pg_config_text(pg_server, tmp_path, (
        f"orphans:\n  directories:\n"
        f"    - {{path: {d}, table: {s}.analysis_nwbfile, column: analysis_file_name}}\n"
        f"    - {{path: {d}, table: {s}.custom_analysis, column: path}}\n"
        f"  temp_directories: [{t}]\n"))), pg_db)
    got: dict[str, set[str]] = {}
    for i in svc.scan(svc.resolve(f"dir:{d}")).items:
        got.setdefault(i.reason, set()).add(i.path)
    assert got == {ds.UNTRACKED_FILE: {"s2/c.nwb"}, ds.ZERO_BYTE: {"s1/s1_Z.nwb"}}
    assert {i.path for i in svc.scan(svc.resolve(f"dir:{t}")).items} == {"old.tmp"}
    done = svc.quarantine_source(f"dir:{d}", dry_run=False, max_share=0.5)
    assert (done.files, done.rows) == (2, 0) and not (d / "s2/c.nwb").exists()
    svc.restore(done.batch_id)
    assert (d / "s2/c.nwb").read_bytes() == b"orphan"
