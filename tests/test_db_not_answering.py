"""A database that stops answering: every call has a time limit, waits are visible and cancellable
(issue 13, item 6), on MariaDB and on PostgreSQL (issue 15). The server is the suite's private one,
stopped with SIGSTOP and always continued with SIGCONT: MariaDB is one process; PostgreSQL is the
postmaster (which accepts connections) and one backend process per connection, all stopped."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from djtui.config import ConfigError, parse_config
from djtui.services.backends.mysql import statement_limit_sql
from djtui.services.backends.postgres import PostgresBackend
from djtui.services.database import (
    RECHECK_S,
    Database,
    DatabaseNotAnswering,
    resolve_connection,
)


def server_processes(pid: int) -> list[int]:
    """The server's process and its children (PostgreSQL's backends and helpers; none for MariaDB)."""
    out = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                out.append(int(entry))
    return out


@contextlib.contextmanager
def stopped(server) -> Iterator[None]:
    procs = server_processes(server.pid)
    try:
        for pid in procs:  # a backend may exit between the listing and its signal: that one needs no stop
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


SLEEP_SQL = {"mysql": "SELECT SLEEP(4) FROM (SELECT 1 UNION SELECT 2) AS t", "postgresql": "SELECT pg_sleep(4)"}
CONNECTION_ID_SQL = {"mysql": "SELECT CONNECTION_ID()", "postgresql": "SELECT pg_backend_pid()"}


def in_thread(fn, pool: ThreadPoolExecutor | None = None) -> tuple[Waiter, dict]:
    """Run ``fn`` in a new thread, or in ``pool`` (a thread that already holds its connection)."""
    out: dict = {}

    def body() -> None:
        t0 = time.monotonic()
        try:
            out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc
        out["seconds"] = time.monotonic() - t0

    if pool is not None:
        return Waiter(pool.submit(body)), out
    t = threading.Thread(target=body, daemon=True)
    t.start()
    return Waiter(t), out


class Waiter:
    def __init__(self, what: threading.Thread | Future) -> None:
        self.what = what

    def join(self, timeout: float) -> None:
        if isinstance(self.what, threading.Thread):
            self.what.join(timeout)
        else:
            with contextlib.suppress(TimeoutError):
                self.what.result(timeout)

    def is_alive(self) -> bool:
        return self.what.is_alive() if isinstance(self.what, threading.Thread) else not self.what.done()


def db_for(server, limit: float) -> Database:
    return Database(dataclasses.replace(server.settings, statement_timeout_s=limit))


def test_limit_sql_per_dialect() -> None:
    assert statement_limit_sql("MariaDB", 300) == "SET SESSION max_statement_time = 300"
    assert statement_limit_sql("MariaDB", 2.5) == "SET SESSION max_statement_time = 2.5"
    assert statement_limit_sql("MySQL", 300) == "SET SESSION max_execution_time = 300000"  # MySQL 8: ms
    assert statement_limit_sql("MySQL", 0.25) == "SET SESSION max_execution_time = 250"
    pg = PostgresBackend(None)  # type: ignore[arg-type]  # text only: no query runs
    assert pg.statement_limit_sql("15.19", 300) == "SET statement_timeout = 300000"  # PostgreSQL: ms
    assert pg.statement_limit_sql("15.19", 0.25) == "SET statement_timeout = 250"
    assert pg.statement_limit_sql("15.19", 0.0001) == "SET statement_timeout = 1"  # 0 would mean no limit


def test_config_key_is_strict_and_reaches_the_connection(tmp_path) -> None:
    base = "database:\n  host: 127.0.0.1\n  use_datajoint_config: false\n"
    assert parse_config(base).database.statement_timeout_s == 300.0
    cfg = parse_config(base + "  statement_timeout_s: 12\n")
    settings = resolve_connection(cfg.database, env={}, cwd=tmp_path, home=tmp_path)
    assert settings.statement_timeout_s == 12
    kw = settings.pymysql_kwargs()
    assert kw["read_timeout"] == kw["write_timeout"] == 14  # the server's limit, then the driver's
    for bad in ("0", "-1", "soon", "100000"):
        with pytest.raises(ConfigError) as err:
            parse_config(base + f"  statement_timeout_s: {bad}\n")
        assert "statement_timeout_s" in str(err.value)


def test_the_server_stops_a_statement_over_the_limit(db_server) -> None:
    db = db_for(db_server, 1)
    try:
        first = db.query(CONNECTION_ID_SQL[db_server.backend])
        t0 = time.monotonic()
        with pytest.raises(DatabaseNotAnswering) as err:
            db.query(SLEEP_SQL[db_server.backend])
        assert time.monotonic() - t0 < 3.5  # the server's limit (1 s), well before the driver's (3 s)
        assert err.value.where == "database.statement_timeout_s"
        assert "the server stopped the statement" in err.value.what
        assert db.query("SELECT 1") == [(1,)]  # the connection is still good
        assert db.query(CONNECTION_ID_SQL[db_server.backend]) == first  # the same one
    finally:
        db.close()


def test_the_limit_is_the_servers_own_setting(db_server) -> None:
    """The server itself holds the limit (so it stops a statement even when the client is gone)."""
    db = db_for(db_server, 2.5)
    try:
        if db_server.backend == "postgresql":
            assert db.query("SHOW statement_timeout") == [("2500ms",)]
        else:
            assert float(db.query("SELECT @@max_statement_time")[0][0]) == 2.5
    finally:
        db.close()


def test_a_stopped_server_ends_every_call_at_the_limit(db_server) -> None:
    server = db_server
    db = db_for(server, 2)
    pool = ThreadPoolExecutor(1)
    try:
        assert pool.submit(db.query, "SELECT 1").result() == [(1,)]  # its connection exists before the stop
        with stopped(server):
            t, out = in_thread(lambda: db.query("SELECT 2"), pool)  # an open connection
            t2, out2 = in_thread(db.connect)  # a new one: the server never greets
            t.join(15)
            t2.join(15)
            assert not t.is_alive() and not t2.is_alive(), "a call waited past the time limit"
        for o in (out, out2):
            assert isinstance(o.get("error"), DatabaseNotAnswering), o
            assert "did not answer within 2 s" in o["error"].what
            assert o["seconds"] < 8
        assert db.query("SELECT 3") == [(3,)]  # answering again: a fresh connection
    finally:
        db.close()
        pool.shutdown(wait=False)


def test_waits_are_seen_and_interrupt_ends_them(db_server) -> None:
    """The driver blocks in C (pymysql in recv, psycopg2 in libpq's poll, a connect in libpq's connect):
    interrupt() shuts the sockets and every wait ends at once; the connection is discarded and the next
    call, once the server answers, runs on a new one."""
    server = db_server
    db = db_for(server, 60)
    pool = ThreadPoolExecutor(1)
    try:
        before = pool.submit(db.query, CONNECTION_ID_SQL[server.backend]).result()
        assert db.waiting_for() is None
        with stopped(server):
            t, out = in_thread(lambda: db.query("SELECT 2"), pool)
            t2, out2 = in_thread(db.connect)
            time.sleep(1.0)
            assert db.waiting_for() is not None and db.waiting_for() >= 0.9
            assert db.probe(timeout=1) is False
            t0 = time.monotonic()
            assert db.interrupt() == 2
            t.join(5)
            t2.join(5)
            assert not t.is_alive() and not t2.is_alive()
            assert time.monotonic() - t0 < 1.5, "interrupt() did not end the waits at once"
            for o in (out, out2):
                assert isinstance(o.get("error"), DatabaseNotAnswering), o
                assert "cancelled" in o["error"].what
            # the next call does not wait on the same silent server again: it fails at once
            t0 = time.monotonic()
            with pytest.raises(DatabaseNotAnswering):
                pool.submit(db.query, "SELECT 4").result(10)
            assert time.monotonic() - t0 < RECHECK_S + 1.5
            assert db.waiting_for() is not None  # given up on, still counted as a wait
        assert db.probe(timeout=3) is True  # answering again: calls wait for it again
        assert db.waiting_for() is None
        assert pool.submit(db.query, "SELECT 3").result(10) == [(3,)]
        assert pool.submit(db.query, CONNECTION_ID_SQL[server.backend]).result(10) != before  # a new connection
    finally:
        db.close()
        pool.shutdown(wait=False)


def test_a_connect_to_a_stopped_server_names_the_limit_it_hit(db_server) -> None:
    """libpq gives a connect up at database.connect_timeout (its whole start-up); pymysql waits for the
    server's greeting up to the statement limit and its driver grace. Either way the message names the
    limit that was reached, not another."""
    db = Database(dataclasses.replace(db_server.settings, statement_timeout_s=3, connect_timeout=1))
    try:
        with stopped(db_server):
            t0 = time.monotonic()
            with pytest.raises(DatabaseNotAnswering) as err:
                db.connect()
            waited = time.monotonic() - t0
        if db_server.backend == "postgresql":
            assert err.value.where == "database.connect_timeout" and "within 1 s of connecting" in err.value.what
            assert waited < 2.5
        else:
            assert err.value.where == "database.statement_timeout_s" and "within 3 s" in err.value.what
            assert waited < 7
        assert db.query("SELECT 1") == [(1,)]
    finally:
        db.close()


def test_an_interrupted_statement_stops_on_the_server_too(pg_server) -> None:
    """interrupt() shuts the socket; PostgreSQL (client_connection_check_interval) notices its client gone
    and stops the statement within seconds instead of running to the limit, holding its locks."""
    db = db_for(pg_server, 60)
    pool = ThreadPoolExecutor(1)
    admin = pg_server.connect()
    try:
        pid = pool.submit(db.query, "SELECT pg_backend_pid()").result(10)[0][0]
        t, out = in_thread(lambda: db.query("SELECT pg_sleep(50)"), pool)
        time.sleep(0.5)
        with admin.cursor() as cur:
            cur.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,))
            assert cur.fetchall() == [("active",)]
            assert db.interrupt() == 1
            t.join(5)
            assert "cancelled" in out["error"].what
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
                if cur.fetchone()[0] == 0:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("the server kept running the statement of a client that is gone")
    finally:
        admin.close()
        db.close()
        pool.shutdown(wait=False)


def test_probe_answers_within_its_timeout(db_server) -> None:
    """probe(): a fresh connection and SELECT 1, each bounded (libpq waits at least 2 s to connect; the
    watchdog ends it at the probe's timeout + 1 s); it is not a call in flight, and a True clears interrupt()'s
    fail-fast state."""
    db = db_for(db_server, 60)
    try:
        assert db.probe(timeout=1) is True
        with stopped(db_server):
            t0 = time.monotonic()
            assert db.probe(timeout=1) is False
            assert time.monotonic() - t0 < 2.8
            assert db.waiting_for() is None
        assert db.probe(timeout=3) is True
    finally:
        db.close()
