"""Foreign keys between schemas on PostgreSQL (issue 15): every DataJoint lab has them, and a per-schema pg_dump
holds a foreign key onto another schema in its post-data. Three schemas whose keys run both ways alphabetically
(``_a -> _b`` and ``_c -> _a``) are backed up, verified in a scratch server, restored over themselves after
rows were deleted, restored under a prefix into new schemas, and restored one at a time; every time the keys
are compared with what pg_get_constraintdef said before, and the rows with the manifest."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from djtui.errors import OperationFailed
from djtui.services import dbbackup
from djtui.services.audit import AuditLog
from tests.dbbackup.conftest import Lab, serving_pg


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture
def fk_lab(pg_server) -> Lab:
    """``_a.session -> _b.subject`` (a -> b), ``_c.result -> _a.session`` (c -> a), and a key inside ``_c``."""
    base = f"o{os.getpid()}_{time.monotonic_ns() % 10**9}"
    a, b, c = (_q(f"{base}_{x}") for x in "abc")
    conn = pg_server.connect()
    try:
        with conn.cursor() as cur:
            for s in (a, b, c):
                cur.execute(f"CREATE SCHEMA {s}")
            cur.execute(f"CREATE TABLE {b}.subject (subject_id int PRIMARY KEY, name text)")
            cur.execute(f"CREATE TABLE {a}.session (subject_id int, session_id int, note text, "
                        f"PRIMARY KEY (subject_id, session_id), "
                        f"FOREIGN KEY (subject_id) REFERENCES {b}.subject ON UPDATE CASCADE)")
            cur.execute(f"CREATE TABLE {c}.method (method text PRIMARY KEY)")
            cur.execute(f"CREATE TABLE {c}.result (subject_id int, session_id int, method text REFERENCES {c}.method, "
                        f"value float8, PRIMARY KEY (subject_id, session_id, method), "
                        f"FOREIGN KEY (subject_id, session_id) REFERENCES {a}.session ON DELETE RESTRICT)")
            cur.execute(f"INSERT INTO {b}.subject SELECT g, 'mouse ' || g FROM generate_series(1, 12) g")
            cur.execute(f"INSERT INTO {a}.session SELECT s, n, 'n' FROM generate_series(1, 12) s, "
                        "generate_series(1, 3) n")
            cur.execute(f"INSERT INTO {c}.method VALUES ('m1'), ('m2')")
            cur.execute(f"INSERT INTO {c}.result SELECT subject_id, session_id, m, subject_id * 0.5 "
                        f"FROM {a}.session, (VALUES ('m1'), ('m2')) v(m)")
    finally:
        conn.close()
    with serving_pg(pg_server, base) as lab:
        yield lab


COUNTS = {"a": {"session": 36}, "b": {"subject": 12}, "c": {"method": 2, "result": 72}}


def _fks(lab: Lab, schemas: list[str]) -> set[tuple[str, str, str]]:
    return {(str(s), str(t), str(d)) for s, t, d in lab.db.query(
        "SELECT n.nspname, c.relname, pg_get_constraintdef(con.oid) FROM pg_constraint con "
        "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE con.contype = 'f' AND n.nspname = ANY(%s)", (schemas,))}


def _rows(lab: Lab, schema: str, table: str) -> list[tuple]:
    return sorted(lab.rows(schema, table))


def _names(lab: Lab) -> list[str]:
    return [f"{lab.schema}_{x}" for x in "abc"]


def _restore(lab: Lab, backup: Path, tmp_path: Path, **kw) -> dbbackup.RestoreResult:
    plan = dbbackup.plan_restore(lab.db, backup, **kw)
    return dbbackup.restore_backup(lab.db, plan, tmp_path / "state", AuditLog(tmp_path / "a.jsonl"))


def test_verify_loads_schemas_whose_foreign_keys_cross_both_ways(fk_lab, tmp_path):
    names = _names(fk_lab)
    res = dbbackup.run_backup(fk_lab.db, tmp_path / "b", schemas=names, parallel=2, full_server=True)
    assert {s["name"]: s["tables"] for s in res.manifest["schemas"]} == {
        f"{fk_lab.schema}_{x}": t for x, t in COUNTS.items()}
    seen: list[str] = []
    v = dbbackup.verify_backup(res.path, progress=seen.append, scratch_dir=tmp_path / "scratch")
    assert v.ok, v.problems
    assert v.tables_checked == 4
    assert any("restoring" in line for line in seen), seen


def test_verify_names_a_broken_foreign_key_in_the_backup(fk_lab, tmp_path):
    """The scratch load declares the keys after every schema's rows are in: a key the rows break fails the
    verification (the server itself checks every row), naming the key."""
    names = _names(fk_lab)
    a = _q(names[0])
    fk_lab.sql("SET session_replication_role = replica",  # the key's triggers do not fire: an orphan row
               f"INSERT INTO {a}.session VALUES (99, 1, 'orphan')")
    assert (99,) not in [r[:1] for r in _rows(fk_lab, names[1], "subject")]
    res = dbbackup.run_backup(fk_lab.db, tmp_path / "b", schemas=names, full_server=False)
    v = dbbackup.verify_backup(res.path)
    assert not v.ok
    assert any(p.startswith(f"{names[0]}: restore failed") and "session_subject_id_fkey" in p
               for p in v.problems), v.problems


def test_live_restore_of_all_three_over_themselves(fk_lab, tmp_path):
    names = _names(fk_lab)
    a, b, c = (_q(n) for n in names)
    keys = _fks(fk_lab, names)
    assert len(keys) == 3
    before = {n: {t: _rows(fk_lab, n, t) for t in COUNTS[n[-1]]} for n in names}
    res = dbbackup.run_backup(fk_lab.db, tmp_path / "b", schemas=names, full_server=False)
    fk_lab.sql(f"DELETE FROM {c}.result WHERE subject_id > 6", f"DELETE FROM {a}.session WHERE subject_id > 6",
               f"DELETE FROM {b}.subject WHERE subject_id > 6", f"UPDATE {c}.method SET method = method")
    r = _restore(fk_lab, res.path, tmp_path)
    assert r.ok, r.problems
    assert r.tables_checked == 4
    assert {n: {t: _rows(fk_lab, n, t) for t in COUNTS[n[-1]]} for n in names} == before
    assert _fks(fk_lab, names) == keys
    # the keys work: ON UPDATE CASCADE from b reaches a, ON DELETE RESTRICT from c stops a delete in a
    fk_lab.sql(f"DELETE FROM {c}.result WHERE subject_id = 1", f"UPDATE {b}.subject SET subject_id = 500 "
               "WHERE subject_id = 1")
    assert (500, 1, "n") in _rows(fk_lab, names[0], "session")
    with pytest.raises(Exception, match="result_subject_id_session_id_fkey"):
        fk_lab.sql(f"DELETE FROM {a}.session WHERE subject_id = 2")


def test_live_restore_under_a_prefix_into_new_schemas(fk_lab, tmp_path):
    names = _names(fk_lab)
    res = dbbackup.run_backup(fk_lab.db, tmp_path / "b", schemas=names, full_server=False)
    r = _restore(fk_lab, res.path, tmp_path, prefix="r_")
    new = [f"r_{n}" for n in names]
    try:
        assert r.ok, r.problems
        for n, m in zip(names, new, strict=True):
            for t in COUNTS[n[-1]]:
                assert _rows(fk_lab, m, t) == _rows(fk_lab, n, t)
        renamed = {(s, t, d.replace(fk_lab.schema, "r_" + fk_lab.schema)) for s, t, d in _fks(fk_lab, names)}
        assert _fks(fk_lab, new) == {("r_" + s, t, d) for s, t, d in renamed}
    finally:
        fk_lab.sql(*(f"DROP SCHEMA IF EXISTS {_q(m)} CASCADE" for m in new))


def test_live_restore_of_one_schema_between_the_others(fk_lab, tmp_path):
    """Restoring ``_a`` alone: its key onto ``_b`` comes from the dump, ``_c``'s key onto it is kept."""
    names = _names(fk_lab)
    a, _b, c = (_q(n) for n in names)
    keys = _fks(fk_lab, names)
    res = dbbackup.run_backup(fk_lab.db, tmp_path / "b", schemas=names, full_server=False)
    fk_lab.sql(f"DELETE FROM {c}.result WHERE subject_id > 6", f"DELETE FROM {a}.session WHERE subject_id > 6")
    r = _restore(fk_lab, res.path, tmp_path, schemas=[names[0]])
    assert r.ok, r.problems
    assert len(_rows(fk_lab, names[0], "session")) == 36 and _fks(fk_lab, names) == keys
    # _b and _c together: _a's key onto _b is kept from outside, _c's key onto _a comes from the dump
    r = _restore(fk_lab, res.path, tmp_path, schemas=[names[1], names[2]])
    assert r.ok, r.problems
    assert len(_rows(fk_lab, names[2], "result")) == 72 and _fks(fk_lab, names) == keys


def test_a_failing_key_rolls_back_every_schema_of_the_restore(fk_lab, tmp_path):
    """``_a`` and ``_b`` restored together while ``_c`` (not restored) holds a row whose parent the backup of
    ``_a`` does not have: declaring ``_c``'s key again fails, and nothing of ``_a`` or ``_b`` changed."""
    names = _names(fk_lab)
    a, b, c = (_q(n) for n in names)
    res = dbbackup.run_backup(fk_lab.db, tmp_path / "b", schemas=names, full_server=False)
    fk_lab.sql(f"INSERT INTO {b}.subject VALUES (40, 'new')", f"INSERT INTO {a}.session VALUES (40, 1, 'new')",
               f"INSERT INTO {c}.result VALUES (40, 1, 'm1', 1.0)", f"DELETE FROM {c}.result WHERE subject_id = 3",
               f"DELETE FROM {a}.session WHERE subject_id = 3")
    with pytest.raises(OperationFailed, match="nothing was changed"):
        _restore(fk_lab, res.path, tmp_path, schemas=names[:2])
    assert len(_rows(fk_lab, names[1], "subject")) == 13 and len(_rows(fk_lab, names[0], "session")) == 34


def test_verify_of_some_schemas_leaves_out_keys_onto_the_others(fk_lab, tmp_path):
    """A backup of ``_a`` and ``_c`` only: ``_a``'s key onto ``_b`` has no table in the scratch server, so it is
    left out (and progress names it); ``_c``'s key onto ``_a`` is declared and checked."""
    a, b, c = _names(fk_lab)
    res = dbbackup.run_backup(fk_lab.db, tmp_path / "b", schemas=[a, c], full_server=False)
    seen: list[str] = []
    v = dbbackup.verify_backup(res.path, progress=seen.append)
    assert v.ok, v.problems
    assert v.tables_checked == 3
    (line,) = [s for s in seen if s.startswith("not checked")]
    assert f"{a}.session session_subject_id_fkey" in line and f"points at {b}, not in the backup" in line
    assert "result" not in line
