"""The PostgreSQL backend and the private PostgreSQL server (issue 15): catalogs through pg_catalog, the
statement time limit, the dump tools' credentials, the connection conventions of DataJoint 2.x."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from dataclasses import replace

import pytest

from djtui.config import DatabaseSettings
from djtui.errors import UserError
from djtui.services.database import Database, DatabaseNotAnswering, resolve_connection
from djtui.services.servers.postgres import PrivatePostgres
from djtui.services.servers.process import read_state, stop_detached


@pytest.fixture
def pg_db(pg_server):
    db = Database(pg_server.settings)
    yield db
    db.query("DROP SCHEMA IF EXISTS lab_pg CASCADE")
    db.query("DROP SCHEMA IF EXISTS \"lab pg\"\"x\" CASCADE")
    db.close()


def _lab(db: Database) -> None:
    db.query("CREATE SCHEMA lab_pg")
    db.query("CREATE TABLE lab_pg.subject (subject_id int, name varchar(16) NOT NULL, PRIMARY KEY (subject_id))")
    db.query("CREATE TABLE lab_pg.session (subject_id int, session_id int, doubled int GENERATED ALWAYS AS "
             "(session_id * 2) STORED, n serial, note text, PRIMARY KEY (subject_id, session_id), "
             "CONSTRAINT renamed FOREIGN KEY (subject_id) REFERENCES lab_pg.subject (subject_id))")
    db.query("CREATE TABLE lab_pg.pair (a int, b int, PRIMARY KEY (a, b), "
             "FOREIGN KEY (b, a) REFERENCES lab_pg.session (subject_id, session_id))")
    db.query("CREATE VIEW lab_pg.v AS SELECT * FROM lab_pg.subject")
    db.query("COMMENT ON COLUMN lab_pg.session.note IS 'free text'")
    db.query("INSERT INTO lab_pg.subject SELECT g, 'n' || g FROM generate_series(1, 500) g")
    db.query("ANALYZE lab_pg.subject")


def test_catalogs_read_pg_catalog(pg_db):
    _lab(pg_db)
    be = pg_db.backend
    assert be.name == "postgresql" and pg_db.dialect.ident('a"b') == '"a""b"'
    assert "lab_pg" in be.schemas() and "public" not in be.schemas() and "pg_catalog" not in be.schemas()
    assert be.tables(["lab_pg"]) == [("lab_pg", "pair"), ("lab_pg", "session"), ("lab_pg", "subject")]  # no view
    assert be.tables(["lab_pg"], like="s%") == [("lab_pg", "session"), ("lab_pg", "subject")]
    assert be.table_exists("lab_pg", "session") and not be.table_exists("lab_pg", "v")
    cols = {c.name: c for c in be.columns("lab_pg", "session")}
    assert list(cols) == ["subject_id", "session_id", "doubled", "n", "note"]
    assert cols["doubled"].generated and not cols["n"].generated and cols["n"].extra == "auto_increment"
    assert cols["note"].nullable and not cols["subject_id"].nullable and cols["note"].comment == "free text"
    assert be.primary_key("lab_pg", "session") == ["subject_id", "session_id"]
    fks = {fk.name: fk for fk in be.foreign_keys(["lab_pg"])}
    assert fks["renamed"].parent == ("lab_pg", "subject") and fks["renamed"].columns == (("subject_id", "subject_id"),)
    pair = next(fk for fk in fks.values() if fk.table == "pair")
    assert pair.columns == (("b", "subject_id"), ("a", "session_id"))  # in key order, renamed pairs kept
    assert {fk.table for fk in be.foreign_keys_to("lab_pg", "session")} == {"pair"}
    assert [fk.name for fk in be.foreign_keys_from("lab_pg", "session")] == ["renamed"]
    assert be.row_estimate("lab_pg", "subject") == 500


def test_statement_limit_is_the_servers(pg_server):
    db = Database(replace(pg_server.settings, statement_timeout_s=1))
    try:
        with pytest.raises(DatabaseNotAnswering, match="the server stopped the statement"):
            db.query("SELECT pg_sleep(5)")
        assert db.query("SELECT 1") == [(1,)]  # the connection stays usable
    finally:
        db.close()


def test_wrong_password_is_a_clear_error_without_the_password(pg_server):
    from djtui.config import Secret

    bad = replace(pg_server.settings, password=Secret("not-the-password-xyz"))
    with pytest.raises(UserError) as err:
        Database(bad).query("SELECT 1")
    assert "not-the-password-xyz" not in str(err.value) and "password" in (err.value.hint or "")


def test_dump_tools_read_a_private_pgpass_never_argv(pg_db, pg_server):
    _lab(pg_db)
    be = pg_db.backend
    tools = be.dump_tools()
    with be.credentials_file(pg_server.settings) as cred:
        assert stat.S_IMODE(cred.stat().st_mode) == 0o600 and stat.S_IMODE(cred.parent.stat().st_mode) == 0o700
        argv = [*be.tool_argv(tools.dump, cred), "--schema=lab_pg"]
        assert not any(pg_server.password.reveal() in a for a in argv)
        out = subprocess.run(argv, capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, check=True)
    assert "CREATE TABLE lab_pg.session" in out.stdout and "COPY lab_pg.subject" in out.stdout
    assert not cred.exists()


def test_datajoint_conventions_choose_the_backend(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "datajoint.json").write_text(json.dumps(
        {"database": {"host": "db.lab", "backend": "postgresql", "name": "lab"}}))
    s = resolve_connection(DatabaseSettings(), env={}, cwd=tmp_path, home=tmp_path)
    assert (s.backend, s.port, s.dbname, s.host) == ("postgresql", 5432, "lab", "db.lab")
    s = resolve_connection(DatabaseSettings(), env={"DJ_BACKEND": "mysql"}, cwd=tmp_path, home=tmp_path)
    assert (s.backend, s.port, s.dbname) == ("mysql", 3306, None)
    s = resolve_connection(DatabaseSettings(), env={"DJ_DATABASE_NAME": "other"}, cwd=tmp_path, home=tmp_path)
    assert s.dbname == "other"
    with pytest.raises(UserError, match="oracle"):
        resolve_connection(DatabaseSettings(), env={"DJ_BACKEND": "oracle"}, cwd=tmp_path, home=tmp_path)


def test_private_server_runs_detached_and_stops_from_its_state(tmp_path):
    srv = PrivatePostgres(tmp_path / "lab", detached=True, keep_dir=True).start()
    try:
        state = read_state(tmp_path / "lab")
        assert state["backend"] == "postgresql" and state["stop_signal"] == "SIGINT"
        db = Database(srv.settings)
        assert db.server_info().flavor == "PostgreSQL" and db.server_info().version_tuple >= (15,)
        db.close()
        if os.geteuid() == 0:  # PostgreSQL refuses root: the server runs as the postgres system user
            owner = os.stat(srv.datadir).st_uid
            assert owner != 0
    finally:
        assert stop_detached(tmp_path / "lab")
    assert not srv.datadir.exists()


def test_the_postgres_backend_has_every_member_of_the_protocol(pg_db):
    import inspect

    from djtui.services.backends import Backend

    members = {n for n in dir(Backend) if not n.startswith("_")} | set(Backend.__annotations__)
    be = pg_db.backend
    for name in sorted(members):
        assert hasattr(be, name), name
        proto = getattr(Backend, name, None)
        if callable(proto):
            want = [p for p in inspect.signature(proto).parameters if p != "self"]
            have = list(inspect.signature(getattr(be, name)).parameters)
            assert have[:len(want)] == want, (name, want, have)
