"""Backups on PostgreSQL, against the suite's private PostgreSQL with the real pg_dump, pg_dumpall, pg_restore
and psql: no password in argv or in djtui's environment, one snapshot for the counts and the dumps, the roles
as pg_dumpall writes them, and restores that really bring back what was deleted."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog, dbbackup
from djtui.services.audit import AuditLog
from djtui.services.backends.postgres import find_client_tool
from djtui.services.database import Database
from tests.dbbackup.conftest import Lab, _drop_pg, _make_pg_lab


@pytest.fixture
def pg_lab(pg_server) -> Lab:
    name = f"p{os.getpid()}_{time.monotonic_ns() % 10**9}"
    conn = pg_server.connect()
    try:
        _make_pg_lab(conn, name)
    finally:
        conn.close()
    db = Database(pg_server.settings)
    try:
        yield Lab(pg_server, db, name)
    finally:
        db.close()
        conn = pg_server.connect()
        try:
            _drop_pg(conn, name)
        finally:
            conn.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fk_defs(lab: Lab, schema: str) -> set[tuple[str, str]]:
    return {(str(t), str(d)) for t, d in lab.db.query(
        "SELECT c.relname, pg_get_constraintdef(con.oid) FROM pg_constraint con "
        "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE con.contype = 'f' AND n.nspname = %s", (schema,))}


def _restore(lab: Lab, backup: Path, tmp_path: Path, **kw) -> dbbackup.RestoreResult:
    safety = kw.pop("safety_dir", None)
    plan = dbbackup.plan_restore(lab.db, backup, **kw)
    return dbbackup.restore_backup(lab.db, plan, tmp_path / "state", AuditLog(tmp_path / "a.jsonl"), safety_dir=safety)


def _cmdlines() -> dict[int, tuple[bytes, bytes]]:
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out[int(pid)] = (Path(f"/proc/{pid}/cmdline").read_bytes(), Path(f"/proc/{pid}/environ").read_bytes())
            except OSError:
                pass
    return out


def test_password_never_in_argv_or_environment(pg_lab, tmp_path, monkeypatch):
    """pg_dump and pg_dumpall are caught while they run (a wrapper sleeps before exec'ing the real tool): their
    argv and environment hold no password; the .pgpass their conninfo names is 0600 in a 0700 folder and gone
    afterwards; djtui's own environment never carried one."""
    password = pg_lab.server.password.reveal().encode()
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    for tool in ("pg_dump", "pg_dumpall"):
        (wrap / tool).write_text(f"#!/bin/sh\nsleep 1.5\nexec {find_client_tool(tool)} \"$@\"\n")
        (wrap / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrap}:{os.environ['PATH']}")
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("res", dbbackup.run_backup(
        pg_lab.db, tmp_path / "b", schemas=[pg_lab.schema], parallel=2, full_server=True)))
    t.start()
    seen: dict[str, bytes] = {}
    passfiles = set()
    deadline = time.monotonic() + 60
    while t.is_alive() and time.monotonic() < deadline:
        for cmd, env in _cmdlines().values():
            assert password not in cmd and password not in env
            args = cmd.split(b"\0")
            for tool in ("pg_dump", "pg_dumpall"):
                info = next((a for a in args if a.startswith(b"--dbname=")), None)
                if len(args) > 1 and args[1].endswith(f"/wrap/{tool}".encode()) and info:
                    seen[tool] = cmd
                    assert b"PGPASSWORD" not in env
                    pf = Path(info.split(b"passfile='", 1)[1].split(b"'", 1)[0].decode())
                    if pf.exists():
                        assert stat.S_IMODE(pf.stat().st_mode) == 0o600
                        assert stat.S_IMODE(pf.parent.stat().st_mode) == 0o700
                        passfiles.add(pf)
        time.sleep(0.05)
    t.join(60)
    assert set(seen) == {"pg_dump", "pg_dumpall"}, seen
    assert passfiles and not any(p.exists() or p.parent.exists() for p in passfiles)
    assert "PGPASSWORD" not in os.environ and password.decode() not in "".join(os.environ.values())
    mf = box["res"].manifest
    assert mf["server_dump"]["file"] == "_globals.sql.zst" and mf["file_format"] == "custom"


def test_counts_and_dumps_read_one_snapshot(pg_lab, tmp_path):
    """Rows keep arriving while two schemas are dumped: the manifest's exact counts are those of the snapshot
    the dumps read, so restore-verify matches them; pg_restore --list names the same tables as the manifest."""
    other = f"{pg_lab.schema}_w"
    pg_lab.sql(f"CREATE SCHEMA {_q(other)}", f"CREATE TABLE {_q(other)}.t (id serial PRIMARY KEY, v text)")
    stop = threading.Event()

    def writer() -> None:
        conn = pg_lab.server.connect()
        try:
            with conn.cursor() as cur:
                i = 1000
                while not stop.is_set():
                    cur.execute(f"INSERT INTO {_q(pg_lab.schema)}.subject VALUES (%s, 'w')", (i,))
                    cur.execute(f"INSERT INTO {_q(other)}.t (v) SELECT 'x' FROM generate_series(1, 50)")
                    i += 1
        finally:
            conn.close()

    w = threading.Thread(target=writer)
    w.start()
    try:
        time.sleep(0.3)
        res = dbbackup.run_backup(pg_lab.db, tmp_path / "b", schemas=[pg_lab.schema, other], parallel=2,
                                  full_server=False)
    finally:
        stop.set()
        w.join()
    by = {s["name"]: s for s in res.manifest["schemas"]}
    assert by[pg_lab.schema]["tables"]["subject"] > 37 and by[other]["tables"]["t"] > 0
    # the trigger wrote audit rows in the same transactions: one snapshot sees as many of each
    assert by[pg_lab.schema]["tables"]["audit"] == by[pg_lab.schema]["tables"]["subject"]
    v = dbbackup.verify_backup(res.path, scratch_dir=tmp_path / "scratch")
    assert v.ok, v.problems
    listing = subprocess.run([find_client_tool("pg_restore"), "--list", str(res.path / by[other]["file"])],
                             capture_output=True, text=True, check=True).stdout
    assert [ln.split()[-2] for ln in listing.splitlines() if " TABLE DATA " in ln] == ["t"]


def test_globals_are_what_pg_dumpall_writes(pg_lab, tmp_path):
    role = f"p2_reader_{os.getpid()}"
    pg_lab.sql(f"CREATE ROLE {role} NOLOGIN", f"GRANT USAGE ON SCHEMA {_q(pg_lab.schema)} TO {role}",
               f"ALTER TABLE {_q(pg_lab.schema)}.audit OWNER TO {role}")
    try:
        res = dbbackup.run_backup(pg_lab.db, tmp_path / "b", schemas=[pg_lab.schema], full_server=True)
        f = res.path / res.manifest["server_dump"]["file"]
        with open(f, "rb") as fin:
            ours = subprocess.run(dbbackup.decompressor_for(f), stdin=fin, capture_output=True, text=True,
                                  check=True).stdout
        with pg_lab.db.backend.credentials_file(pg_lab.server.settings) as cred:
            theirs = subprocess.run([*pg_lab.db.backend.tool_argv(find_client_tool("pg_dumpall"), cred),
                                     "--globals-only"], capture_output=True, text=True, check=True).stdout

        def lines(text: str) -> list[str]:  # \restrict carries a random key per run
            return [ln for ln in text.splitlines() if not ln.startswith(("\\restrict", "\\unrestrict"))]

        assert lines(ours) == lines(theirs)
        assert f"CREATE ROLE {role};" in ours
        # restore-verify loads the roles first, then the schema with its owners and grants: a table owned by
        # a role the scratch server would not have without them restores
        seen: list[str] = []
        v = dbbackup.verify_backup(res.path, progress=seen.append)
        assert v.ok, v.problems
        loads = [str(e.text) for e in commandlog.entries()
                 if e.kind == "exec" and "--exit-on-error" in str(e.text) and str(res.path) in str(e.text)]
        assert loads and not any("--no-owner" in t for t in loads)
        # a backup without the roles file loads without owners and grants, and verifies too
        res2 = dbbackup.run_backup(pg_lab.db, tmp_path / "c", schemas=[pg_lab.schema], full_server=False)
        assert dbbackup.verify_backup(res2.path).ok
        # a roles file that does not load fails the verification
        f.write_bytes(b"")
        subprocess.run(["zstd", "-q", "-f", "-o", str(f)], input=b"CREATE ROLE;\n", check=True)
        mpath = res.path / "manifest.json"
        mf = json.loads(mpath.read_text())
        mf["server_dump"]["sha256"] = dbbackup.sha256_file(f)
        mpath.write_text(json.dumps(mf))
        v = dbbackup.verify_backup(res.path)
        assert not v.ok and v.problems[0].startswith("_globals.sql.zst: restore failed: psql failed"), v.problems
    finally:
        pg_lab.sql(f"REASSIGN OWNED BY {role} TO djadmin", f"DROP OWNED BY {role}", f"DROP ROLE {role}")


def test_restore_brings_back_deleted_rows_and_keeps_foreign_keys_from_outside(pg_lab, tmp_path):
    """Rows deleted after the dump are back after a restore over the same schema, byte for byte; a table made
    later is left alone; a foreign key from a schema not restored onto a recreated table is declared again
    as it was (with its ON UPDATE CASCADE), and what was overwritten was dumped first."""
    s, x = pg_lab.schema, f"{pg_lab.schema}_x"
    pg_lab.sql(f"CREATE SCHEMA {_q(x)}",
               f"CREATE TABLE {_q(x)}.session (id int PRIMARY KEY, subject_id int REFERENCES {_q(s)}.subject(id) "
               "ON UPDATE CASCADE ON DELETE RESTRICT)",
               f"INSERT INTO {_q(x)}.session SELECT g, g FROM generate_series(0, 9) g")
    res = dbbackup.run_backup(pg_lab.db, tmp_path / "b", schemas=[s], full_server=False)
    before = {t: pg_lab.rows(s, t) for t in ("subject", pg_lab.odd, "audit")}
    fks = _fk_defs(pg_lab, x)
    assert before[pg_lab.odd][0][1] == bytes(range(256)) * 4
    pg_lab.sql(f"DELETE FROM {_q(s)}.{_q(pg_lab.odd)} WHERE id < 3", f"DELETE FROM {_q(s)}.subject WHERE id >= 30",
               f"CREATE TABLE {_q(s)}.later (x int)", f"INSERT INTO {_q(s)}.later VALUES (7)")

    plan = dbbackup.plan_restore(pg_lab.db, res.path)
    assert plan.confirm_word == "OVERWRITE 1 SCHEMA" and plan.items[0].left_alone == ["later"]
    assert plan.items[0].current == {"audit": 37, "later": 1, pg_lab.odd: 2, "subject": 30}
    (kept,) = [n for n in plan.notes if n.startswith("foreign key")]
    assert f"of {x}.session (FOREIGN KEY (subject_id) REFERENCES {s}.subject(id) ON UPDATE CASCADE" in kept
    assert "dropped before the load and declared again after it" in "\n".join(plan.lines())
    assert "ONE transaction" in plan.to_json()["notes"][0]
    r = _restore(pg_lab, res.path, tmp_path, safety_dir=tmp_path / "b" / "pre-restore")
    assert r.ok, r.problems
    for t, rows in before.items():
        assert pg_lab.rows(s, t) == rows, t
    assert pg_lab.rows(s, "later") == [(7,)]
    assert _fk_defs(pg_lab, x) == fks
    assert len(pg_lab.rows(x, "session")) == 10
    safety = json.loads((r.safety_backup / "manifest.json").read_text())
    assert safety["schemas"][0]["tables"] == {"audit": 37, "later": 1, pg_lab.odd: 2, "subject": 30}
    # the foreign key works on the recreated table: its ON UPDATE CASCADE reaches the other schema
    pg_lab.sql(f"UPDATE {_q(s)}.subject SET id = 500 WHERE id = 3")
    assert (3, 500) in pg_lab.rows(x, "session")


def test_a_failed_restore_changes_nothing(pg_lab, tmp_path):
    """A row made after the backup is referenced from outside: declaring that foreign key again fails after the
    load, and the one transaction rolls everything back (deleted rows stay deleted, the later table stays)."""
    s, x = pg_lab.schema, f"{pg_lab.schema}_x"
    res = dbbackup.run_backup(pg_lab.db, tmp_path / "b", schemas=[s], full_server=False)
    pg_lab.sql(f"INSERT INTO {_q(s)}.subject VALUES (40, 'new')", f"DELETE FROM {_q(s)}.{_q(pg_lab.odd)}",
               f"CREATE SCHEMA {_q(x)}",
               f"CREATE TABLE {_q(x)}.session (id int PRIMARY KEY, subject_id int REFERENCES {_q(s)}.subject(id))",
               f"INSERT INTO {_q(x)}.session VALUES (1, 40)")
    with pytest.raises(OperationFailed, match="nothing was changed") as ei:
        _restore(pg_lab, res.path, tmp_path)
    assert "session_subject_id_fkey" in str(ei.value)
    assert pg_lab.server.password.reveal() not in str(ei.value)
    assert pg_lab.rows(s, pg_lab.odd) == [] and len(pg_lab.rows(s, "subject")) == 38
    assert len(_fk_defs(pg_lab, x)) == 1


def test_restore_renamed_together_moves_foreign_keys_and_bodies_not_data(pg_lab, tmp_path):
    a, b = pg_lab.schema, f"{pg_lab.schema}_b"
    note = f'"{a}".subject {a}.subject SCHEMA {a}; CREATE SCHEMA {a};\n\\.'
    pg_lab.sql(f"CREATE SCHEMA {_q(b)}",
               f"CREATE TABLE {_q(b)}.session (id int PRIMARY KEY, subject_id int REFERENCES {_q(a)}.subject(id), "
               "note text)",
               f"INSERT INTO {_q(b)}.session VALUES (1, 1, E'{note.replace(chr(92), chr(92) * 2)}'), (2, 2, NULL)")
    res = dbbackup.run_backup(pg_lab.db, tmp_path / "bk", schemas=[a, b], full_server=False)
    a2, b2 = f"{a}_r1", f"{a}_r2"
    plan = dbbackup.plan_restore(pg_lab.db, res.path, renames={a: a2, b: b2})
    assert f"foreign keys {b} -> {a}: restored as {b2} -> {a2}" in plan.foreign
    r = _restore(pg_lab, res.path, tmp_path, renames={a: a2, b: b2})
    assert r.ok, r.problems
    assert pg_lab.rows(b2, "session") == pg_lab.rows(b, "session")
    assert pg_lab.rows(b2, "session")[0][2] == note  # data is never rewritten
    assert pg_lab.rows(a2, pg_lab.odd) == pg_lab.rows(a, pg_lab.odd)
    assert {d for _t, d in _fk_defs(pg_lab, b2)} == {f"FOREIGN KEY (subject_id) REFERENCES {a2}.subject(id)"}
    # the trigger function's body named its schema: it now writes into the renamed copy
    pg_lab.sql(f"INSERT INTO {_q(a2)}.subject VALUES (1000, 'new')")
    assert (1000,) in pg_lab.rows(a2, "audit") and (1000,) not in pg_lab.rows(a, "audit")

    # one schema alone, renamed: its foreign key keeps pointing at the live parent
    r = _restore(pg_lab, res.path, tmp_path, schemas=[b], renames={b: f"{a}_r3"})
    assert r.ok, r.problems
    assert {d for _t, d in _fk_defs(pg_lab, f"{a}_r3")} == {f"FOREIGN KEY (subject_id) REFERENCES {a}.subject(id)"}


def test_restore_refuses_a_backup_of_another_server_family(pg_lab, tmp_path):
    res = dbbackup.run_backup(pg_lab.db, tmp_path / "b", schemas=[pg_lab.schema], full_server=False)
    mpath = res.path / "manifest.json"
    mf = json.loads(mpath.read_text())
    mf.update(backend="mysql", server={"flavor": "MariaDB"})
    mpath.write_text(json.dumps(mf))
    with pytest.raises(UserError, match="MariaDB backup and the server is postgresql"):
        dbbackup.plan_restore(pg_lab.db, res.path)


def test_schema_names_are_literal_not_patterns(pg_lab, tmp_path):
    """pg_dump's --schema takes a pattern: a name with a dot, a star, capitals and a quote dumps that schema
    alone (not the decoy its star would match), verifies, and restores under a new name."""
    odd, decoy = f'{pg_lab.schema}_X.y*"z', f'{pg_lab.schema}_X.yab"z'
    for s in (odd, decoy):
        pg_lab.sql(f"CREATE SCHEMA {_q(s)}", f"CREATE TABLE {_q(s)}.t (id int PRIMARY KEY)",
                   f"INSERT INTO {_q(s)}.t SELECT generate_series(1, {3 if s == odd else 5})")
    res = dbbackup.run_backup(pg_lab.db, tmp_path / "b", schemas=[odd], full_server=False)
    (entry,) = res.manifest["schemas"]
    assert entry["tables"] == {"t": 3} and "/" not in entry["file"]
    listing = subprocess.run([find_client_tool("pg_restore"), "--list", str(res.path / entry["file"])],
                             capture_output=True, text=True, check=True).stdout
    assert decoy not in listing and odd in listing
    assert dbbackup.verify_backup(res.path).ok
    r = _restore(pg_lab, res.path, tmp_path, renames={odd: f"{pg_lab.schema}_Renamed"})
    assert r.ok, r.problems
    assert pg_lab.rows(f"{pg_lab.schema}_Renamed", "t") == [(1,), (2,), (3,)]
    for bad, why in ((f"pg_{pg_lab.schema}", "not starting with pg_"), ("é" * 32, "1-63 bytes")):
        with pytest.raises(UserError, match="cannot be a schema name") as ei:
            dbbackup.plan_restore(pg_lab.db, res.path, renames={odd: bad})
        assert why in ei.value.hint


def test_a_view_from_outside_stops_the_restore_before_anything_changes(pg_lab, tmp_path):
    """A view of another schema depends on a table the restore would drop: psql stops at the first statement
    that fails, the transaction rolls back, and the message says what depends on what."""
    s, x = pg_lab.schema, f"{pg_lab.schema}_v"
    res = dbbackup.run_backup(pg_lab.db, tmp_path / "b", schemas=[s], full_server=False)
    pg_lab.sql(f"DELETE FROM {_q(s)}.subject WHERE id > 5", f"CREATE SCHEMA {_q(x)}",
               f"CREATE VIEW {_q(x)}.names AS SELECT name FROM {_q(s)}.subject")
    with pytest.raises(OperationFailed, match="nothing was changed") as ei:
        _restore(pg_lab, res.path, tmp_path)
    assert "depend" in str(ei.value) and "names" in str(ei.value)
    assert len(pg_lab.rows(s, "subject")) == 6 and len(pg_lab.rows(x, "names")) == 6
