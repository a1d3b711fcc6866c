"""A throwaway PostgreSQL server in a directory of its own (tests, the demo lab, restore- and export-verify).

``initdb`` into a private data directory with a superuser ``djadmin`` whose password is random
(scram-sha-256 for every connection, over TCP and the socket), then ``postgres`` on a free loopback
port with its socket in a private directory. It never touches a cluster of the machine's own
(Debian's ``pg_ctlcluster`` clusters, a server on 5432). PostgreSQL refuses to run as root: when
djtui runs as root, the server runs as the ``postgres`` system user (Debian's package creates it)
and its directory is one that user can reach. Attached servers die with the process that started
them; detached ones (``demo --setup-only``) are stopped with ``process.stop_detached``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from djtui.config import Secret
from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog
from djtui.services.database import ConnectionSettings
from djtui.services.servers.process import (
    STATE_FILE,
    ServerProcess,
    die_with_parent,
    pid_alive,
    port_free,
    read_state,
    write_state,
)

ADMIN_USER = "djadmin"
SERVICE_USER = "postgres"  # the system user a root-started server runs as
DEFAULT_DBNAME = "postgres"


@dataclass(frozen=True)
class PgBinaries:
    bindir: Path
    version: str  # "15.19"

    def exe(self, name: str) -> str:
        return str(self.bindir / name)


def find_pg_binaries() -> PgBinaries:
    """The installed server programs: ``pg_config --bindir``, else the newest /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=20).stdout
            candidates.append(Path(out.strip()))
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: _num(Path(p).parent.name),
                        reverse=True):
        candidates.append(Path(found))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            try:
                out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True,
                                     timeout=20).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            version = next((w for w in out.split() if w[:1].isdigit()), "?")
            return PgBinaries(bindir, version)
    raise UserError("no PostgreSQL server programs (initdb, postgres) are installed",
                    hint="install them, e.g. `apt-get install postgresql` (the project's ./dev script does this)")


def _num(text: str) -> int:
    return int(text) if text.isdigit() else -1


def _service_account() -> pwd.struct_passwd | None:
    """Who the server runs as: None (ourselves) unless we are root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise UserError("PostgreSQL refuses to run as root and there is no `postgres` system user to run it as",
                        hint="install Debian's postgresql package (it creates the user), or run djtui as "
                             "another user") from None


def _reachable_by_others(path: Path) -> bool:
    """Can another (non-root) user traverse every folder on the way to ``path``?"""
    for part in [path, *path.parents]:
        try:
            if not part.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


class PrivatePostgres(ServerProcess):
    """A private PostgreSQL server; use as a context manager or call start()/stop()."""

    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client to leave

    flavor = "PostgreSQL"
    backend = "postgresql"

    def __init__(self, base_dir: str | os.PathLike | None = None, *, detached: bool = False,
                 keep_dir: bool = False, shared_buffers_mb: int = 128):
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="djtui-pg-"))
        self.detached = detached
        self.keep_dir = keep_dir
        self.shared_buffers_mb = shared_buffers_mb
        self.port = 0
        self.password = Secret(secrets.token_urlsafe(18))
        self.binaries: PgBinaries | None = None
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.account = _service_account()
        self.run_dir = self._pick_run_dir()
        self.datadir = self.run_dir / "data"
        self.socket_dir = self.run_dir / "sock"
        self._stopped = False

    def _pick_run_dir(self) -> Path:
        """Where data, socket and logs live: the base directory, or (root running the server as another
        user, through folders that user cannot traverse) a private folder under /tmp."""
        base = self.base_dir.resolve()
        if self.account is None or _reachable_by_others(base):
            run = base
        else:
            run = Path(tempfile.mkdtemp(prefix="djtui-pgrun-", dir="/tmp"))
        # the socket path must fit in sun_path (108 bytes) with ".s.PGSQL.NNNNN"
        if len(str(run / "sock" / ".s.PGSQL.65535")) > 100:
            run = Path(tempfile.mkdtemp(prefix="djtui-pgrun-", dir="/tmp"))
        return run

    # -- lifecycle (context manager, launch retries and stop: process.ServerProcess) ----------------

    @property
    def dbname(self) -> str:
        return DEFAULT_DBNAME

    @property
    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(host="127.0.0.1", port=self.port, user=ADMIN_USER, password=self.password,
                                  backend="postgresql", dbname=self.dbname, sources=("private server",))

    @property
    def version(self) -> str:
        return self.binaries.version if self.binaries else "?"

    def _own(self, *paths: Path) -> None:
        if self.account is not None:
            for p in paths:
                os.chown(p, self.account.pw_uid, self.account.pw_gid)

    def start(self, timeout: float = 60.0) -> PrivatePostgres:
        self.binaries = find_pg_binaries()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if (self.base_dir / STATE_FILE).exists():
            raise UserError(f"a private server already uses {self.base_dir}",
                            hint="stop it first (djtui demo --stop --dir ...) or choose another directory")
        commandlog.add_secret(self.password.reveal())
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.run_dir)
        self._initialize()
        self._launch_until_ready([], timeout)
        self._write_state()
        if not self.detached:
            atexit.register(self.stop)
        return self

    def restart(self, password: Secret, port: int | None = None, timeout: float = 60.0) -> PrivatePostgres:
        """Start again a detached server whose data a stop kept (same data and admin, ``port`` if free)."""
        self.binaries = find_pg_binaries()
        state = read_state(self.base_dir)
        if state is not None:
            if pid_alive(int(state["pid"])):
                raise UserError(f"the private server of {self.base_dir} is already running (pid {state['pid']})",
                                hint="stop it first (djtui demo --stop --dir ...)")
            (self.base_dir / STATE_FILE).unlink(missing_ok=True)
            if state.get("datadir"):
                self.datadir = Path(state["datadir"])
                self.run_dir = self.datadir.parent
                self.socket_dir = self.run_dir / "sock"
        if not (self.datadir / "PG_VERSION").is_file():
            raise UserError(f"{self.datadir} holds no database: its data was removed when it was stopped",
                            hint="build a new lab (djtui demo --setup-only --dir NEW_DIR)")
        self.password = password
        commandlog.add_secret(password.reveal())
        self._launch_until_ready([port] if port and port_free(port) else [], timeout)
        self._write_state()
        return self

    def _run_as(self) -> dict:
        if self.account is None:
            return {}
        return {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}

    def _initialize(self) -> None:
        assert self.binaries is not None
        pwfile = self.run_dir / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.password.reveal() + "\n")
        self._own(pwfile)
        cmd = [self.binaries.exe("initdb"), "-D", str(self.datadir), "-U", ADMIN_USER, f"--pwfile={pwfile}",
               "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]
        commandlog.record("exec", cmd)
        log = self.run_dir / "initdb.log"
        try:
            with open(log, "wb") as out:
                rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=300, cwd=self.run_dir,
                                    **self._run_as()).returncode
        finally:
            pwfile.unlink(missing_ok=True)
        if rc != 0:
            tail = log.read_text(errors="replace")[-1500:]
            raise OperationFailed(f"initializing the private PostgreSQL data directory failed:\n{tail}")
        # only loopback TCP and the private socket, every one with a password
        (self.datadir / "pg_hba.conf").write_text(
            "local all all scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")

    def _launch(self) -> None:
        assert self.binaries is not None
        self.socket_dir.mkdir(exist_ok=True, mode=0o700)
        self._own(self.socket_dir)
        log = self.run_dir / "server.log"
        log.unlink(missing_ok=True)
        cmd = [self.binaries.exe("postgres"), "-D", str(self.datadir), "-p", str(self.port),
               "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}",
               "-c", f"shared_buffers={self.shared_buffers_mb}MB", "-c", "max_connections=300",
               "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
               "-c", "logging_collector=off", "-c", "password_encryption=scram-sha-256"]
        commandlog.record("exec", cmd)
        in_main = threading.current_thread() is threading.main_thread()
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.run_dir,
                start_new_session=True, preexec_fn=None if self.detached or not in_main else die_with_parent,
                **self._run_as())
        self.pid = self.proc.pid

    def _wait_ready(self, timeout: float, probe: object = None) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.run_dir / "server.log"
                tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                raise OperationFailed(f"the private PostgreSQL exited at start (code {self.proc.returncode}):\n{tail}")
            try:
                self.connect().close()
                return
            except Exception:  # not accepting connections yet
                time.sleep(0.05)
        raise OperationFailed(f"the private PostgreSQL did not become ready within {timeout:.0f} s")

    def _write_state(self) -> None:
        write_state(self.base_dir, {
            "pid": self.pid, "port": self.port, "socket": str(self.socket_dir), "datadir": str(self.datadir),
            "user": ADMIN_USER, "flavor": self.flavor, "version": self.version, "backend": self.backend,
            "socket_dir": None, "stop_signal": "SIGINT",
            "run_dir": str(self.run_dir) if self.run_dir != self.base_dir.resolve() else None,
        })

    def connect(self, dbname: str | None = None, **kw: object):
        """A psycopg2 connection as the admin (autocommit)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=ADMIN_USER, password=self.password.reveal(),
                                dbname=dbname or self.dbname, connect_timeout=5, application_name="djtui", **kw)
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> None:
        from djtui.domain.dialects import POSTGRES

        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {POSTGRES.ident(name)}")
        finally:
            conn.close()

    def _remove_files(self) -> None:
        separate = self.run_dir != self.base_dir.resolve()
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        if separate and not self.keep_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        elif not self.keep_dir:
            shutil.rmtree(self.datadir, ignore_errors=True)
            shutil.rmtree(self.socket_dir, ignore_errors=True)
