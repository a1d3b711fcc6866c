"""Connections taken for long work (db.connect() + db.watched()) on the private PostgreSQL: a stopped
server ends the blocked call within a bounded time, Cancel-wait ends it, and a long statement on a
server that answers is left to run even past the Database's own per-call watchdog limit.

The server is stopped with SIGSTOP (postmaster and every backend) and always continued in a finally."""

from __future__ import annotations

import dataclasses
import threading
import time

import networkx as nx
import pytest

from djtui.services.backends.postgres import TCP_USER_TIMEOUT_MS, conn_kwargs
from djtui.services.database import Database, DatabaseNotAnswering
from djtui.services.export.pgsession import PgExportSession
from tests.test_db_not_answering import stopped

BOUND_S = 15.0  # every_s 0.5, 2 misses, each probe within connect_timeout 1 s (+1 s grace): ~5 s worst case


def _db(pg_server, limit: float = 300.0) -> Database:
    db = Database(dataclasses.replace(pg_server.settings, statement_timeout_s=limit, connect_timeout=1))
    db.longwork.every_s = 0.5
    db.longwork.misses = 2
    return db


def _run(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def body() -> None:
        t0 = time.monotonic()
        try:
            out["value"] = fn()
        except BaseException as exc:  # the test reads it
            out["error"] = exc
        out["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, out


def _sleep_on(db: Database, seconds: float, what: str = "test work"):
    conn = db.connect()

    def work():
        try:
            with db.watched(conn, what), conn.raw.cursor() as cur:
                cur.execute("SET statement_timeout = 0")  # long work: no time limit of the server's
                cur.execute("SELECT 'slept' FROM pg_sleep(%s)", (seconds,))
                return cur.fetchone()[0]
        finally:
            conn.close()
    return work


def test_a_stopped_server_ends_a_watched_long_statement(pg_server) -> None:
    db = _db(pg_server)
    try:
        t, out = _run(_sleep_on(db, 120))
        time.sleep(1.0)  # the statement is running
        with stopped(pg_server):
            t.join(BOUND_S)
            assert not t.is_alive(), "the watched call still hangs on a stopped server"
        err = out.get("error")
        assert isinstance(err, DatabaseNotAnswering), out
        assert "test work" in err.what and "stopped answering" in err.what
        assert out["seconds"] < BOUND_S + 2
    finally:
        db.close()


def test_a_long_statement_on_an_answering_server_is_not_killed(pg_server) -> None:
    # the Database's per-call watchdog would shut a plain call after 1 + 2 + 1 s; the watched long work
    # runs 6 s while the probes keep finding the server answering
    db = _db(pg_server, limit=1.0)
    try:
        t, out = _run(_sleep_on(db, 6))
        t.join(30)
        assert not t.is_alive()
        assert out.get("value") == "slept", out
        assert out["seconds"] >= 6
    finally:
        db.close()


def test_cancel_wait_ends_a_watched_long_statement(pg_server) -> None:
    db = _db(pg_server)
    try:
        db.longwork.every_s = 60  # no probe in the way: only interrupt() ends it
        t, out = _run(_sleep_on(db, 120))
        time.sleep(1.0)
        t0 = time.monotonic()
        assert db.interrupt() >= 1
        t.join(10)
        assert not t.is_alive()
        assert time.monotonic() - t0 < 5
        err = out.get("error")
        assert isinstance(err, DatabaseNotAnswering) and "cancelled" in err.what, out
    finally:
        db.close()


def test_the_export_session_is_watched(pg_server) -> None:
    """The export's session runs with statement_timeout 0: before, a stopped server hung it for ever."""
    db = _db(pg_server)
    try:
        def work():
            with PgExportSession(db, nx.DiGraph(), []) as session:
                session._exec("SELECT pg_sleep(120)")
        t, out = _run(work)
        time.sleep(1.5)
        with stopped(pg_server):
            t.join(BOUND_S)
            assert not t.is_alive(), "the export session still hangs on a stopped server"
        err = out.get("error")
        assert isinstance(err, DatabaseNotAnswering), out
        assert "export" in err.what
    finally:
        db.close()


def test_connections_set_tcp_user_timeout(pg_server) -> None:
    kw = conn_kwargs(dataclasses.replace(pg_server.settings, socket=None))
    assert kw["tcp_user_timeout"] == TCP_USER_TIMEOUT_MS
    db = Database(pg_server.settings)
    try:
        conn = db.connect()
        try:
            with conn.raw.cursor() as cur:
                cur.execute("SHOW tcp_user_timeout")  # the server's own; the client's is libpq's
            assert conn.raw.get_dsn_parameters().get("tcp_user_timeout") == str(TCP_USER_TIMEOUT_MS)
        finally:
            conn.close()
    finally:
        db.close()


@pytest.fixture(autouse=True)
def _no_stopped_server_left(pg_server):
    yield
    with open(f"/proc/{pg_server.pid}/stat") as fh:
        assert fh.read().rsplit(")", 1)[1].split()[0] != "T", "the server was left stopped"


def test_short_watched_reads_do_not_each_make_a_probe_and_the_thread_ends() -> None:
    """The probe runs every every_s from the last probe, not at every add or remove (a scan makes many
    short watched reads); with nothing watched the thread ends."""
    from djtui.services.longwork import LongWorkWatch

    probes: list[float] = []
    watch = LongWorkWatch(lambda: probes.append(time.monotonic()) or True, lambda conn: None)
    watch.every_s = 0.5
    keep = watch.add("long")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.6:
        watch.remove(watch.add(object()))
        time.sleep(0.005)
    assert 2 <= len(probes) <= 4, len(probes)
    watch.remove(keep)
    time.sleep(0.2)
    assert not any(t.name == "djtui-db-liveness" and t.is_alive() for t in threading.enumerate())


def test_a_server_that_refuses_still_answers(pg_server) -> None:
    """A refusal (here: a wrong password) is an answer: the long work's connection is left alone."""
    db = _db(pg_server)
    try:
        assert db._answers() is True
        from djtui.config import Secret
        wrong = Database(dataclasses.replace(pg_server.settings, password=Secret("not-the-password"),
                                             connect_timeout=1))
        try:
            assert wrong._answers() is True
        finally:
            wrong.close()
        with stopped(pg_server):
            assert db._answers() is False
    finally:
        db.close()
