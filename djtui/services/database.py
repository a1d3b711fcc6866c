"""Database connections that honour the DataJoint conventions users already have.

Precedence, lowest first: built-in defaults, ``~/.datajoint_config.json``,
``./dj_local_conf.json`` (DataJoint 0.14), ``datajoint.json`` found upward from
the working directory with its ``.secrets/`` (DataJoint 2.x), the ``DJ_HOST`` /
``DJ_USER`` / ``DJ_PASS`` / ``DJ_PORT`` environment variables, and last the
``database:`` section of djtui's config file.

Blocking driver calls run in a dedicated thread pool so the event loop (and
so the TUI) never waits on the network. DataJoint itself is never imported
here: the backend's driver (pymysql for MySQL/MariaDB, psycopg2 for PostgreSQL, as DataJoint 2.x uses) is all
a status query needs. DataJoint 2.x's ``database.backend`` / ``DJ_BACKEND`` and ``database.name`` /
``DJ_DATABASE_NAME`` choose the server family and, on PostgreSQL, the database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from djtui.config import Config, DatabaseSettings, Secret
from djtui.config.loader import password_from_environment
from djtui.domain.dialects import SqlDialect
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.backends import Backend, ServerInfo
from djtui.services.backends.choose import make_backend
from djtui.services.longwork import LongWorkWatch, server_answered

T = TypeVar("T")


@dataclass(frozen=True)
class ConnectionSettings:
    host: str = "localhost"
    port: int = 3306
    user: str | None = None
    password: Secret | None = None
    socket: str | None = None
    connect_timeout: int = 5
    statement_timeout_s: float = 300.0  # the longest one call may take (config: database.statement_timeout_s)
    backend: str = "mysql"  # "mysql" (MySQL, MariaDB) | "postgresql"
    dbname: str | None = None  # PostgreSQL: the database DataJoint 2.x connects to (schemas live inside it)
    sources: tuple[str, ...] = ()  # where each value came from, for `doctor` and the header

    @property
    def address(self) -> str:
        if self.socket:
            return f"{self.host} (socket {self.socket})"
        return f"{self.host}:{self.port}"

    def pymysql_kwargs(self, database: str | None = None) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "user": self.user,
            "password": self.password.reveal() if self.password else "",
            "connect_timeout": self.connect_timeout,
            "charset": "utf8mb4",
            "autocommit": True,
        }
        # the driver gives up on a server that sends nothing (stopped, hung, gone without a FIN) a
        # little after the server's own limit (see statement_limit_sql), so a live server's clearer
        # "time limit exceeded" arrives first; whole seconds, as mysqlclient takes them too
        wait = driver_timeout(self.statement_timeout_s)
        kw["read_timeout"] = kw["write_timeout"] = wait
        if self.socket:
            kw["unix_socket"] = self.socket
        else:
            kw["host"] = self.host
            kw["port"] = self.port
        if database:
            kw["database"] = database
        return kw


DRIVER_GRACE_S = 2  # after the server's own limit, before the driver stops reading
WATCHDOG_GRACE_S = 1.0  # after the driver's own timeout, before the Database shuts the socket itself
WATCHDOG_IDLE_S = 5.0  # the watchdog thread ends after this long without a call to watch
RECHECK_S = 2.0  # after a cancel, how often a new call may ask whether the server answers again


def driver_timeout(limit_s: float) -> int:
    return math.ceil(limit_s) + DRIVER_GRACE_S


class DatabaseNotAnswering(UserError):
    """A call that ran out of time or was cancelled: the operation failed (exit 1), the input was fine."""

    exit_code = 1


class DatabaseLost(UserError):
    """The server dropped a working connection and refuses a new one (killed, restarting): exit 1."""

    exit_code = 1


# ---------------------------------------------------------------------------
# resolving the settings


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    """Both DataJoint layouts: flat ``database.host`` keys (0.14) and nested ``{"database": {...}}`` (2.x)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key == "database":
            for k, v in value.items():
                out[f"database.{k}"] = v
        else:
            out[key] = value
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read DataJoint config: {exc}", where=str(path),
                        hint="fix the JSON, or set database.use_datajoint_config: false") from None
    return _flat(data) if isinstance(data, dict) else None


def find_datajoint_json(start: Path) -> Path | None:
    current = start.resolve()
    while True:
        candidate = current / "datajoint.json"
        if candidate.is_file():
            return candidate
        if (current / ".git").exists() or (current / ".hg").exists() or current == current.parent:
            return None
        current = current.parent


def _password_from_environment(name: str, env: dict[str, str], real: bool) -> str | None:
    """``database.password_env``'s value; from the process's own environment through the loader, which
    takes the variable out so child processes do not inherit it."""
    return password_from_environment(name) if real else env.get(name)


def resolve_connection(cfg_db: DatabaseSettings, *, env: dict[str, str] | None = None,
                       cwd: Path | None = None, home: Path | None = None) -> ConnectionSettings:
    real = env is None
    env = dict(os.environ if env is None else env)
    cwd = cwd or Path.cwd()
    home = home or Path(os.path.expanduser("~"))
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}

    def take(data: dict[str, Any] | None, label: str) -> None:
        if not data:
            return
        for key in ("host", "port", "user", "password", "backend", "name"):
            v = data.get(f"database.{key}")
            if v not in (None, ""):
                values[key] = v
                origin[key] = label

    if cfg_db.use_datajoint_config:
        take(_read_json(home / ".datajoint_config.json"), "~/.datajoint_config.json")
        take(_read_json(cwd / "dj_local_conf.json"), "dj_local_conf.json")
        dj_json = find_datajoint_json(cwd)
        if dj_json is not None:
            secrets = dj_json.parent / ".secrets"
            from_secrets = {}
            for key in ("user", "password"):
                f = secrets / f"database.{key}"
                if f.is_file():
                    from_secrets[f"database.{key}"] = f.read_text().strip()
            take(from_secrets, str(secrets))
            take(_read_json(dj_json), str(dj_json))
        take({f"database.{k}": env.get(v) for k, v in
              (("host", "DJ_HOST"), ("user", "DJ_USER"), ("password", "DJ_PASS"), ("port", "DJ_PORT"),
               ("backend", "DJ_BACKEND"), ("name", "DJ_DATABASE_NAME"))},
             "environment (DJ_*)")
    take({"database.host": cfg_db.host, "database.port": cfg_db.port, "database.user": cfg_db.user,
          "database.password": cfg_db.password.reveal() if cfg_db.password else None,
          "database.backend": cfg_db.backend, "database.name": cfg_db.name}, "config file")
    if cfg_db.password_env:
        password = _password_from_environment(cfg_db.password_env, env, real)
        if password is None:
            raise UserError(f"environment variable {cfg_db.password_env} is not set",
                            where="config key `database.password_env`",
                            hint=f"export {cfg_db.password_env}=... or remove password_env")
        values["password"] = password
        origin["password"] = f"${cfg_db.password_env}"

    backend = str(values.get("backend", "mysql")).lower()
    if backend not in ("mysql", "postgresql"):
        raise UserError(f"database backend {backend!r} is not one djtui knows",
                        where=origin.get("backend", "database.backend"), hint="use mysql or postgresql")
    host = str(values.get("host", "localhost"))
    port_raw = values.get("port", 5432 if backend == "postgresql" else 3306)
    if ":" in host and host.count(":") == 1 and "port" not in values:
        host, port_raw = host.split(":")
    try:
        port = int(port_raw)
    except (TypeError, ValueError):
        raise UserError(f"database port {port_raw!r} is not a number",
                        where=origin.get("port", "database.port")) from None
    pw = values.get("password")
    return ConnectionSettings(
        host=host, port=port, user=values.get("user"),
        password=pw if isinstance(pw, Secret) else (Secret(str(pw)) if pw else None),
        socket=cfg_db.socket, connect_timeout=cfg_db.connect_timeout,
        statement_timeout_s=cfg_db.statement_timeout_s,
        backend=backend, dbname=str(values["name"]) if values.get("name") and backend == "postgresql" else None,
        sources=tuple(f"{k}: {v}" for k, v in sorted(origin.items())),
    )


# ---------------------------------------------------------------------------
# connections


def _timed_out(exc: BaseException) -> bool:
    """The driver's own read/write timeout (pymysql says 'timed out' inside a 2013; libpq's connect
    says 'timeout expired')."""
    text = str(exc)
    return isinstance(exc, (TimeoutError, socket.timeout)) or "timed out" in text or "timeout expired" in text


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass


def describe_error(exc: BaseException, settings: ConnectionSettings) -> UserError:
    """A connection failure as a message a person can act on (never with the password)."""
    code = exc.args[0] if getattr(exc, "args", None) else None
    text = str(exc.args[1]) if len(getattr(exc, "args", ())) > 1 else str(exc).strip()
    if settings.password:
        text = text.replace(settings.password.reveal(), "****")
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        code = 1045  # PostgreSQL says it in words
    elif "connection refused" in lowered or "could not connect" in lowered or "timeout expired" in lowered:
        code = 2003
    elif "does not exist" in lowered and "database" in lowered:
        text, code = text.strip(), 1049
    if code == 1045:
        hint = "check the user name and password (database.user / DJ_USER, DJ_PASS or .secrets/)"
    elif code in (2003, 2002, 2013):
        hint = "is the server running and reachable? check database.host/port (or DJ_HOST/DJ_PORT)"
    elif code == 1049:
        hint = "the database does not exist" + (
            " (database.name / DJ_DATABASE_NAME chooses the PostgreSQL database)" if settings.backend == "postgresql"
            else "")
    else:
        hint = "run `djtui doctor` for a full check"
    if settings.user is None:
        hint = "no database user is configured: set database.user in the config, DJ_USER, or datajoint.json"
    return UserError(f"cannot connect to the database at {settings.address} as "
                     f"{settings.user or '(no user)'}: {text}", hint=hint)


class Database:
    """One lab database server: connections, a thread pool, and what the server is.

    Every call has a time limit (``settings.statement_timeout_s``): the server stops a statement
    that runs longer, and the driver stops waiting for a server that sends nothing. A driver without
    a read timeout of its own (psycopg2: libpq waits in C) is covered by a watchdog thread that shuts
    the socket of a call still waiting a little after the driver's limit. Calls in flight are
    tracked, so the app can say "database not answering (12 s)" and ``interrupt()`` can end every
    wait at once (the Cancel-wait key).
    """

    def __init__(self, settings: ConnectionSettings, *, readonly: bool = False, workers: int = 4):
        self.settings = settings
        self.readonly = readonly
        if settings.password:
            commandlog.add_secret(settings.password.reveal())
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="djtui-db")
        self._local = threading.local()
        self._open: list[tuple[threading.Thread, Any]] = []
        self._open_lock = threading.Lock()
        self._tokens = itertools.count()
        self._calls: dict[int, tuple[float, Any]] = {}  # token -> (monotonic start, connection or None)
        self._calls_lock = threading.Lock()
        self._watch_cv = threading.Condition(self._calls_lock)
        self._deadlines: dict[int, tuple[float, Any]] = {}  # token -> (monotonic deadline, connection)
        self._expired: set[int] = set()  # tokens whose socket the watchdog shut
        self._watcher: threading.Thread | None = None
        self._closed = False
        self._cancelled_at = -math.inf
        self._given_up_at: float | None = None  # interrupt(): calls fail fast until the server answers
        self._recheck_lock = threading.Lock()
        self._rechecked_at = -math.inf
        self._backend: Backend = make_backend(settings.backend, self)
        self.longwork = LongWorkWatch(self._answers, lambda conn: self._backend.abort(conn))

    @property
    def backend(self) -> Backend:
        """What this server family does its own way: catalogs, grants, dump tools, time limits."""
        return self._backend

    @property
    def dialect(self) -> SqlDialect:
        """How this server spells SQL (quoting); the one place a capability gets it from."""
        return self._backend.dialect

    @classmethod
    def from_config(cls, cfg: Config, *, readonly: bool | None = None) -> Database:
        return cls(resolve_connection(cfg.database), readonly=cfg.readonly if readonly is None else readonly)

    # -- calls in flight ------------------------------------------------------------------------

    @contextmanager
    def _call(self, conn: Any = None) -> Iterator[tuple[int, float]]:
        token, started = next(self._tokens), time.monotonic()
        with self._calls_lock:
            self._calls[token] = (started, conn)
        try:
            yield token, started
        finally:
            with self._calls_lock:
                self._calls.pop(token, None)
                self._deadlines.pop(token, None)
                self._expired.discard(token)

    def _bind(self, token: int, conn: Any) -> None:
        with self._calls_lock:
            if token in self._calls:
                self._calls[token] = (self._calls[token][0], conn)
        self._watch(token, conn, driver_timeout(self.settings.statement_timeout_s) + WATCHDOG_GRACE_S)

    # -- the watchdog: a call whose driver keeps waiting past its limit gets its socket shut ----------

    def _watch(self, key: int, conn: Any, seconds: float) -> None:
        with self._watch_cv:
            self._deadlines[key] = (time.monotonic() + seconds, conn)
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watchdog, name="djtui-db-watchdog", daemon=True)
                self._watcher.start()
            self._watch_cv.notify()

    def _unwatch(self, key: int) -> None:
        with self._calls_lock:
            self._deadlines.pop(key, None)
            self._expired.discard(key)

    def _watchdog(self) -> None:
        """Runs while calls are watched; ends after WATCHDOG_IDLE_S without one (at once after close())."""
        while True:
            with self._watch_cv:
                if not self._deadlines:
                    if not self._closed:
                        self._watch_cv.wait(WATCHDOG_IDLE_S)
                    if not self._deadlines:
                        self._watcher = None
                        return
                now = time.monotonic()
                due = [(key, conn) for key, (at, conn) in self._deadlines.items() if at <= now]
                for key, _conn in due:
                    del self._deadlines[key]
                    self._expired.add(key)
                if not due:
                    self._watch_cv.wait(min(at for at, _ in self._deadlines.values()) - now)
                    continue
            for _key, conn in due:
                self._backend.abort(conn)

    def waiting_for(self) -> float | None:
        """Seconds the oldest call in flight has waited (or since interrupt() gave up); None when none is."""
        with self._calls_lock:
            starts = [start for start, _ in self._calls.values()]
        if self._given_up_at is not None:
            starts.append(self._given_up_at)
        return time.monotonic() - min(starts) if starts else None

    def _fail_fast(self) -> None:
        """After interrupt(), a new call does not wait on the same silent server again: it fails at once,
        until a probe (at most one every RECHECK_S, or the app's own) finds the server answering."""
        if self._given_up_at is None:
            return
        if time.monotonic() - self._rechecked_at >= RECHECK_S and self._recheck_lock.acquire(blocking=False):
            try:
                self._rechecked_at = time.monotonic()
                if self.probe(timeout=RECHECK_S):
                    return
            finally:
                self._recheck_lock.release()
        if self._given_up_at is not None:
            raise self._cancelled_error()

    def interrupt(self) -> int:
        """End every wait in flight: calls queued or running raise DatabaseNotAnswering("cancelled").

        Their sockets are shut down (what a stopped server cannot do for us); a statement the server
        was running is rolled back when it sees the connection gone. Returns how many calls it ended.
        """
        with self._calls_lock:
            self._cancelled_at = time.monotonic()
            calls = list(self._calls.values())
            if calls and self._given_up_at is None:
                self._given_up_at = min(start for start, _ in calls)
        for _start, conn in calls:
            if conn is not None:
                self._backend.abort(conn)
        return len(calls) + self.longwork.abort_all()

    def _cancelled_since(self, started: float) -> bool:
        return self._cancelled_at >= started

    def _cancelled_error(self) -> DatabaseNotAnswering:
        return DatabaseNotAnswering(f"stopped waiting for the database at {self.settings.address}: cancelled",
                                    hint="press r to try again once the server answers")

    def _timeout_error(self, exc: BaseException | None = None) -> DatabaseNotAnswering:
        limit = self.settings.statement_timeout_s
        by = "the server stopped the statement" if exc is not None and self._backend.is_timeout(exc) else \
            "the server sent nothing"
        return DatabaseNotAnswering(
            f"the database at {self.settings.address} did not answer within {limit:g} s ({by})",
            where="database.statement_timeout_s",
            hint="is the server stopped or overloaded? `djtui doctor` checks it; a statement that needs "
                 "longer needs a larger database.statement_timeout_s")

    def _fail_kind(self, started: float, token: int | None) -> str | None:
        """"cancelled" (interrupt()), "expired" (the watchdog shut the socket), or None."""
        if self._cancelled_since(started):
            return "cancelled"
        if token is not None and token in self._expired:
            return "expired"
        return None

    def _connect_timeout_error(self) -> DatabaseNotAnswering:
        return DatabaseNotAnswering(
            f"the database at {self.settings.address} did not answer within {self.settings.connect_timeout} s "
            "of connecting", where="database.connect_timeout",
            hint="is the server stopped, or the host unreachable? `djtui doctor` checks it; a slow network "
                 "needs a larger database.connect_timeout")

    def _failure(self, exc: BaseException, started: float, token: int | None = None, *,
                 connecting: bool = False) -> BaseException | None:
        """The error to raise instead of a driver error (cancelled, timed out), or None to keep it."""
        kind = self._fail_kind(started, token)
        if kind == "cancelled":
            return self._cancelled_error()
        if kind == "expired":
            return self._timeout_error()
        if self._backend.is_timeout(exc):
            return self._timeout_error(exc)
        if _timed_out(exc):
            # a connect the driver gave up at connect_timeout (libpq's covers the whole start-up)
            early = time.monotonic() - started < self.settings.statement_timeout_s
            return self._connect_timeout_error() if connecting and early else self._timeout_error(exc)
        return None

    # -- connections ----------------------------------------------------------------------------

    def connect(self, database: str | None = None, **extra: Any) -> Any:
        """A new connection of its own, with the statement time limit set on the server."""
        if self.settings.user is None:
            raise describe_error(Exception(0, "no user configured"), self.settings)
        be = self._backend
        self._fail_fast()
        with self._call() as (token, started):
            conn = be.open(self.settings, database, **extra)
            self._bind(token, conn)
            try:
                be.establish(conn)
                be.limit_session(conn, self.settings.statement_timeout_s)
            except (be.driver_error, OSError) as exc:
                _close_quietly(conn)
                failure = self._failure(exc, started, token, connecting=True)
                if failure is not None:
                    raise failure from None
                if isinstance(exc, be.driver_error):
                    raise describe_error(exc, self.settings) from None
                raise
        return conn

    def _thread_connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn.open:
            return conn
        conn = self.connect()
        self._local.conn = conn
        with self._open_lock:
            # a thread's connection dies with the thread: callers that run a short-lived pool per call
            # (a status per session of a bulk delete, every refresh of a screen) would otherwise hold
            # one idle connection per call until close() and run the server out of connections
            stale = [c for t, c in self._open if not t.is_alive()]
            self._open = [(t, c) for t, c in self._open if t.is_alive()]
            self._open.append((threading.current_thread(), conn))
        for old in stale:
            try:
                old.close()
            except Exception:
                pass
        return conn

    @contextmanager
    def cursor(self, dict_rows: bool = False) -> Iterator[Any]:
        conn = self._thread_connection()
        with self._backend.cursor(conn, dict_rows=dict_rows) as cur:
            yield cur

    def query(self, sql: str, args: Sequence[Any] | dict | None = None, *, dict_rows: bool = False) -> list:
        """Run one read statement on this thread's connection; blocking, within the time limit."""
        commandlog.record("sql", sql, args)
        self._fail_fast()
        with self._call() as (token, started):
            for attempt in (1, 2):
                if self._cancelled_since(started):
                    raise self._cancelled_error()
                conn = None
                try:
                    conn = self._thread_connection()
                except UserError as exc:
                    if attempt == 1 or isinstance(exc, DatabaseNotAnswering):
                        raise
                    raise self._lost_error(exc.what) from None  # it was there a moment ago
                try:
                    self._bind(token, conn)
                    with self._backend.cursor(conn, dict_rows=dict_rows) as cur:
                        cur.execute(sql, args)
                        return list(cur.fetchall()) if cur.description is not None else []
                except (*self._backend.transient_errors, OSError) as exc:
                    failure = self._failure(exc, started, token)
                    if failure is not None:
                        if not (self._backend.is_timeout(exc) and self._fail_kind(started, token) is None):
                            # cancelled, or the driver gave up: the connection is in an unknown state
                            if conn is not None:
                                _close_quietly(conn)
                            self._local.conn = None  # the next call connects afresh
                        raise failure from None
                    # a read may retry once on a fresh connection after the server dropped ours
                    if not self._backend.connection_lost(exc):
                        raise
                    if attempt == 2:
                        raise self._lost_error(str(exc).strip()) from None
                    _close_quietly(conn)
                    self._local.conn = None
        raise AssertionError("unreachable")

    def _lost_error(self, detail: str) -> DatabaseLost:
        if self.settings.password:
            detail = detail.replace(self.settings.password.reveal(), "****")
        return DatabaseLost(f"lost the connection to the database at {self.settings.address}, and connecting "
                            f"again failed: {detail}",
                            hint="was the server stopped or restarted? try again once it answers "
                                 "(`djtui doctor` checks it)")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work in the database thread pool; a wait there counts as a call in flight."""
        loop = asyncio.get_running_loop()
        with self._call() as (_token, started):
            def body() -> T:
                if self._cancelled_since(started):
                    raise self._cancelled_error()
                self._fail_fast()
                return fn(*args)
            return await loop.run_in_executor(self._pool, body)

    async def aquery(self, sql: str, args: Sequence[Any] | dict | None = None, *, dict_rows: bool = False) -> list:
        return await self.run(lambda: self.query(sql, args, dict_rows=dict_rows))

    def probe(self, timeout: float = 3.0) -> bool:
        """Does the server answer at all? A fresh connection and ``SELECT 1``, each step within ``timeout``."""
        be = self._backend
        commandlog.record("sql", "SELECT 1  -- is the server answering?", None)
        key = next(self._tokens)
        try:
            conn = be.open(self.settings, connect_timeout=max(1, int(timeout)), read_timeout=timeout,
                           write_timeout=timeout)
            self._watch(key, conn, timeout + WATCHDOG_GRACE_S)  # a driver without a read timeout
            be.establish(conn)
        except Exception:
            self._unwatch(key)
            return False
        try:
            with be.cursor(conn) as cur:
                cur.execute("SELECT 1")
        except Exception:
            return False
        finally:
            self._unwatch(key)
            _close_quietly(conn)
        self._given_up_at = None  # it answers: calls wait for it again
        return True

    # -- long work: connections watched for liveness, not elapsed time (see longwork.py) --------------

    def _answers(self) -> bool:
        """The long-work probe: a fresh connection and ``SELECT 1`` within connect_timeout; a refusal
        (too many connections, say) is an answer too. Not in the command log: it runs every few seconds."""
        be, key, timeout = self._backend, next(self._tokens), float(self.settings.connect_timeout)
        conn = None
        try:
            conn = be.open(self.settings, connect_timeout=max(1, int(timeout)), read_timeout=timeout,
                           write_timeout=timeout)
            self._watch(key, conn, timeout + WATCHDOG_GRACE_S)
            be.establish(conn)
            with be.cursor(conn) as cur:
                cur.execute("SELECT 1")
            return True
        except Exception as exc:
            return key not in self._expired and server_answered(exc)
        finally:
            self._unwatch(key)
            if conn is not None:
                _close_quietly(conn)

    @contextmanager
    def watched(self, conn: Any, what: str = "long work") -> Iterator[Any]:
        """Cover a connection taken with connect() for long work: Cancel-wait (interrupt()) shuts it, and so
        does a server that stops answering probes (``self.longwork``); its blocked call then raises
        DatabaseNotAnswering, whichever error the work made of the driver's (checked through __context__).
        A long statement on a server that answers is left to run."""
        started, token = time.monotonic(), self.longwork.add(conn)
        try:
            yield conn
        except BaseException as exc:
            dead = self.longwork.remove(token)
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, (self._backend.driver_error, OSError)):
                cause = cause.__context__
            if cause is None or isinstance(exc, DatabaseNotAnswering):
                raise
            if self._cancelled_since(started):
                then = f" ({exc.what})" if isinstance(exc, UserError) else ""
                raise DatabaseNotAnswering(f"{what}: {self._cancelled_error().what}{then}",
                                           hint="its connection was shut; start it again once the server answers"
                                           ) from None
            if dead:
                lw, then = self.longwork, f" ({exc.what})" if isinstance(exc, UserError) else ""
                raise DatabaseNotAnswering(
                    f"{what}: the database at {self.settings.address} stopped answering (no answer to "
                    f"{lw.misses} probes {lw.every_s:g} s apart, each within {self.settings.connect_timeout} s); "
                    f"its connection was shut{then}", where="database.connect_timeout",
                    hint="is the server stopped or the network cut? `djtui doctor` checks it; start again once "
                         "it answers") from None
            raise
        finally:
            self.longwork.remove(token)

    def server_info(self) -> ServerInfo:
        return self._backend.server_info()

    async def aserver_info(self) -> ServerInfo:
        return await self.run(self.server_info)

    def schemas(self) -> list[str]:
        """Every schema but the server's own (``backend.schemas()``)."""
        return self._backend.schemas()

    def close(self) -> None:
        with self._watch_cv:
            self._closed = True  # the watchdog ends once no call is watched
            self._watch_cv.notify()
        self.longwork.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._open_lock:
            conns, self._open = self._open, []
        for _thread, conn in conns:
            try:
                conn.close()
            except Exception:
                pass
        self._local = threading.local()
