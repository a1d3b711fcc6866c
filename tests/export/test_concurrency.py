"""An export must not block the lab's writers, must read one snapshot, and must stop runaway restrictions."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from djtui.domain.cascade import Leaf
from djtui.errors import OperationFailed
from djtui.services.export import (
    DRIVER_ENV,
    ExportSession,
    count_leaf,
    load_graph,
    plan_export,
    verify_export,
    write_sql,
)
from tests.export.conftest import config_text
from tests.export.test_sql_writer import DRIVERS

LOCK_WAIT_S = 2  # the writer gives up after this long if the export holds a lock it needs


def _make(conn, schema: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema}`")
        cur.execute(f"CREATE TABLE `{schema}`.`subject` (subject_id int NOT NULL PRIMARY KEY, "
                    f"name varchar(20)) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{schema}`.`session` (subject_id int NOT NULL, session_id int NOT NULL, "
                    f"note varchar(20), PRIMARY KEY (subject_id, session_id), FOREIGN KEY (subject_id) "
                    f"REFERENCES `{schema}`.`subject` (subject_id)) ENGINE=InnoDB")
        cur.executemany(f"INSERT INTO `{schema}`.`subject` VALUES (%s, %s)", [(i, f"s{i}") for i in range(1, 6)])
        cur.executemany(f"INSERT INTO `{schema}`.`session` VALUES (%s, %s, %s)",
                        [(i, j, f"n{i}.{j}") for i in range(1, 6) for j in range(1, 4)])
    conn.commit()


def _before(session: ExportSession, statement: str, action) -> None:
    """Run ``action()`` just before the session executes the statement starting with ``statement``."""
    real_exec = session._exec

    def exec_after_action(sql: str, args=None) -> int:
        if sql.startswith(statement):
            action()
        return real_exec(sql, args)

    session._exec = exec_after_action  # type: ignore[method-assign]


def _before_snapshot(session: ExportSession, writer, statements: list[str]) -> None:
    """Commit ``statements`` on the writer after the key sets, just before ``run`` opens its snapshot."""
    def write() -> None:
        with writer.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        writer.commit()

    _before(session, "START TRANSACTION WITH CONSISTENT SNAPSHOT", write)


def _writer(server):
    """The lab's ingestion: its own connection, a short lock wait so a held lock fails the test fast."""
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_S}")
    return conn


def _ingest(conn, schema: str, subject: int, update: tuple[int, int] = (2, 1),
            delete: tuple[int, int] = (3, 3)) -> float:
    """Insert a subject with sessions, update an exported row, delete an exported one; seconds taken."""
    started = time.monotonic()
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{schema}`.`subject` VALUES (%s, 'new')", (subject,))
        cur.executemany(f"INSERT INTO `{schema}`.`session` VALUES (%s, %s, 'new')",
                        [(subject, 1), (subject, 2)])
        cur.execute(f"INSERT INTO `{schema}`.`session` VALUES (1, %s, 'late')", (100 + subject,))
        cur.execute(f"UPDATE `{schema}`.`session` SET note = 'changed' WHERE subject_id = %s AND session_id = %s",
                    update)
        cur.execute(f"DELETE FROM `{schema}`.`session` WHERE subject_id = %s AND session_id = %s", delete)
    conn.commit()
    return time.monotonic() - started


@pytest.mark.parametrize("driver", DRIVERS)
def test_open_export_does_not_block_ingestion(server, admin_conn, schema, db, monkeypatch, driver):
    """At REPEATABLE READ the cascade's INSERT ... SELECT share-locked every source row until the
    export ended, and the lab's inserts failed with error 1205; now every read is nonlocking."""
    monkeypatch.setenv(DRIVER_ENV, driver)
    _make(admin_conn, schema)
    graph = load_graph(db, [schema])
    writer = _writer(server)
    try:
        with ExportSession(db, graph, [Leaf(f"{schema}.session", "subject_id <= 3"),
                                       Leaf(f"{schema}.subject", "")]) as session:
            during: list[float] = []  # every key set computed, the cascade's transaction still open
            _before(session, "COMMIT", lambda: during.append(_ingest(writer, schema, 9)))
            session.run()
            assert during and during[0] < LOCK_WAIT_S
            assert session.result.counts == {f"{schema}.session": 9, f"{schema}.subject": 5}
            assert _ingest(writer, schema, 10, (1, 1), (1, 2)) < LOCK_WAIT_S  # plan computed, snapshot open
            rows = session.iter_literal_rows(f"{schema}.session", batch=2)
            first = next(rows)  # a writer is streaming rows
            assert _ingest(writer, schema, 11) < LOCK_WAIT_S
            written = first + [r for batch in rows for r in batch]
            subjects = [r for batch in session.iter_literal_rows(f"{schema}.subject") for r in batch]
            assert _ingest(writer, schema, 12) < LOCK_WAIT_S
    finally:
        writer.close()
    # rows are the key sets read in the snapshot: nothing inserted after a key set was computed
    assert len(written) == 8
    assert not any(b"'new'" in r or b"'late'" in r for r in written)
    assert b"(2,1,'changed')" in written  # committed before the snapshot: its value
    assert not any(r.startswith(b"(3,3,") for r in written)  # deleted before the snapshot: missing
    assert b"(1,1,'n1.1')" in written and b"(1,2,'n1.2')" in written  # changed after it: as they were
    assert sorted(subjects) == [f"({i},'s{i}')".encode() for i in range(1, 6)]


def test_plan_while_writer_holds_row_locks_does_not_wait(server, admin_conn, schema, db):
    """The cascade's reads are consistent reads: a writer's open transaction does not stall them."""
    _make(admin_conn, schema)
    writer = _writer(server)
    try:
        writer.autocommit(False)
        with writer.cursor() as cur:
            cur.execute(f"UPDATE `{schema}`.`session` SET note = 'open' WHERE subject_id = 1")  # not committed
        started = time.monotonic()
        result = plan_export(db, [Leaf(f"{schema}.session", "note LIKE 'n%'")], [schema])
        assert time.monotonic() - started < LOCK_WAIT_S
        assert result.counts[f"{schema}.session"] == 15  # the committed values, not the open update
    finally:
        writer.rollback()
        writer.close()




def test_rows_added_after_the_key_sets_are_not_exported_even_from_whole_tables(server, admin_conn, schema, db,
                                                                              tmp_path):
    """A leaf without restriction was once read by a plain scan of the table: a session inserted
    after its subject's key set would be exported without its subject, and the load would fail.
    One row deleted and one added keep the count equal; the scan is joined with the key set."""
    _make(admin_conn, schema)
    graph = load_graph(db, [schema])
    writer = _writer(server)
    try:
        with ExportSession(db, graph, [Leaf(f"{schema}.session", "")]) as session:
            _before_snapshot(session, writer, [
                f"INSERT INTO `{schema}`.`subject` VALUES (20, 'new')",
                f"INSERT INTO `{schema}`.`session` VALUES (20, 1, 'new')",
                f"DELETE FROM `{schema}`.`session` WHERE subject_id = 5 AND session_id = 3"])
            session.run()
            assert session.result.counts == {f"{schema}.session": 15, f"{schema}.subject": 5}
            # the scan covers every row of the table; the key set still decides
            assert session.table_driven(f"{schema}.session") and session.table_driven(f"{schema}.subject")
            manifest = write_sql(session, tmp_path / "out")
    finally:
        writer.close()
    rows = {t["table"]: t["rows"] for t in manifest["tables"]}
    assert rows == {f"{schema}.subject": 5, f"{schema}.session": 14}
    assert b"'new'" not in (tmp_path / "out" / "export.sql").read_bytes()
    checks = verify_export(tmp_path / "out", server_dir=tmp_path / "verify")
    assert all(c.ok for c in checks), checks


def test_rows_deleted_before_the_snapshot_are_missing_not_broken(server, admin_conn, schema, db, tmp_path):
    """A deletion (and an insert) committed after the key sets, just before ``run`` opens its snapshot:
    the deleted row is missing from the export, the new one is not in it, and the export still loads."""
    _make(admin_conn, schema)
    graph = load_graph(db, [schema])
    writer = _writer(server)
    try:
        with ExportSession(db, graph, [Leaf(f"{schema}.session", "subject_id IN (1, 2)")]) as session:
            _before_snapshot(session, writer, [
                f"DELETE FROM `{schema}`.`session` WHERE subject_id = 2 AND session_id = 2",
                f"INSERT INTO `{schema}`.`session` VALUES (2, 9, 'new')"])
            session.run()
            assert session.result.counts[f"{schema}.session"] == 6  # the key set
            manifest = write_sql(session, tmp_path / "out")
    finally:
        writer.close()
    rows = {t["table"]: t["rows"] for t in manifest["tables"]}
    assert rows == {f"{schema}.subject": 2, f"{schema}.session": 5}  # the deleted row is missing, no new row
    checks = verify_export(tmp_path / "out", server_dir=tmp_path / "verify")
    assert all(c.ok for c in checks), checks


# ---------------------------------------------------------------------------
# statement time limit


def test_slow_restriction_stops_at_the_time_limit_naming_the_leaf(admin_conn, schema, db):
    _make(admin_conn, schema)
    graph = load_graph(db, [schema])
    leaves = [Leaf(f"{schema}.subject", "subject_id = 1"), Leaf(f"{schema}.session", "SLEEP(1) = 0")]
    started = time.monotonic()
    with pytest.raises(OperationFailed) as info, ExportSession(db, graph, leaves, statement_timeout=0.3) as session:
        session.run()
    assert time.monotonic() - started < 5  # 15 rows x 1 s without the limit
    text = str(info.value)
    assert f"leaf 2 ({schema}.session: SLEEP(1) = 0)" in text
    assert "0.3 s" in text and "statement_timeout_s" in text
    # the limit covers restrictions only; the same session without a slow leaf still works
    with ExportSession(db, graph, leaves[:1], statement_timeout=0.3) as session:
        assert session.run().counts == {f"{schema}.subject": 1}
    with pytest.raises(OperationFailed, match="leaf 1"):
        count_leaf(db, Leaf(f"{schema}.session", "SLEEP(1) = 0"), statement_timeout=0.3)
    assert count_leaf(db, Leaf(f"{schema}.session", "subject_id = 1"), statement_timeout=0.3) == 3


def test_cli_time_limit_from_config_and_flag(server, admin_conn, schema, tmp_path):
    _make(admin_conn, schema)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path) + "export:\n  statement_timeout_s: 0.3\n")
    base = [sys.executable, "-m", "djtui", "--config", str(cfg), "export", "plan",
            "--leaf", f"{schema}.session:SLEEP(1) = 0"]
    run = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert "leaf 1" in run.stderr and "statement time limit (0.3 s)" in run.stderr and "hint:" in run.stderr
    assert "Traceback" not in run.stderr
    run = subprocess.run([*base, "--statement-timeout", "0.2"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "(0.2 s)" in run.stderr, run.stderr
    run = subprocess.run([*base[:-1], f"{schema}.session:subject_id = 1", "--statement-timeout", "0.2", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    run = subprocess.run([*base, "--statement-timeout", "-1"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--statement-timeout" in run.stderr, run.stderr
    cfg.write_text(config_text(server, tmp_path) + "export:\n  statement_timeout_s: soon\n")
    run = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "statement_timeout_s" in run.stderr, run.stderr
