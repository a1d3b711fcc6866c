"""A throwaway MariaDB or MySQL server in a directory of its own.

Used by the tests, the demo lab and restore-verification of dumps. It runs
the installed ``mariadbd``/``mysqld`` on a free loopback port and a unix
socket, with an admin user whose password is random, and it removes its
data directory when stopped. Attached servers die with the process that
started them (also on Ctrl-C or SIGKILL); detached ones (``demo
--setup-only``) are stopped with ``process.stop_detached``. What is not
MariaDB's own (ports, processes, the state file) is in ``process.py``.
"""

from __future__ import annotations

import atexit
import getpass
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

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
_SOCKET_MAX = 100  # sun_path is 108 bytes on Linux


@dataclass(frozen=True)
class ServerBinary:
    server: Path
    install_db: Path | None
    flavor: str  # "MariaDB" | "MySQL"
    version: str


def find_server_binary() -> ServerBinary:
    """The installed server program, MariaDB preferred."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin",
                              "/usr/local/mysql/bin"])
    for name in ("mariadbd", "mysqld"):
        exe = shutil.which(name, path=search)
        if not exe:
            continue
        try:
            out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        flavor = "MariaDB" if "mariadb" in out.lower() else "MySQL"
        version = next((w for w in out.replace("-", " ").split() if w[:1].isdigit() and "." in w), "?")
        install = None
        if flavor == "MariaDB":
            found = shutil.which("mariadb-install-db", path=search) or shutil.which("mysql_install_db", path=search)
            install = Path(found) if found else None
            if install is None:
                continue
        return ServerBinary(Path(exe), install, flavor, version)
    raise UserError(
        "no MariaDB or MySQL server program (mariadbd / mysqld) is installed",
        hint="install it, e.g. `apt-get install mariadb-server` (the project's ./dev script does this)")


class PrivateServer(ServerProcess):
    """A private database server; use as a context manager or call start()/stop()."""

    backend = "mysql"  # the ``database.backend`` that reaches it

    def __init__(self, base_dir: str | os.PathLike | None = None, *, detached: bool = False,
                 keep_dir: bool = False, buffer_pool_mb: int = 128):
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="djtui-db-"))
        self.detached = detached
        self.keep_dir = keep_dir
        self.buffer_pool_mb = buffer_pool_mb
        self.datadir = self.base_dir / "data"
        self.port = 0
        self.socket_path = ""
        self.password = Secret(secrets.token_urlsafe(18))
        self.binary: ServerBinary | None = None
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self._socket_dir: Path | None = None
        self._stopped = False

    # -- lifecycle (context manager, launch retries and stop: process.ServerProcess) ----------------

    @property
    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(host="127.0.0.1", port=self.port, user=ADMIN_USER,
                                  password=self.password, sources=("private server",))

    @property
    def flavor(self) -> str:
        return self.binary.flavor if self.binary else "?"

    def _pick_socket(self) -> str:
        candidate = self.base_dir / "mysql.sock"
        if len(str(candidate)) < _SOCKET_MAX:
            return str(candidate)
        self._socket_dir = Path(tempfile.mkdtemp(prefix="djtui-s-", dir="/tmp"))
        return str(self._socket_dir / "mysql.sock")

    def start(self, timeout: float = 60.0) -> PrivateServer:
        self.binary = find_server_binary()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if (self.base_dir / STATE_FILE).exists():
            raise UserError(f"a private server already uses {self.base_dir}",
                            hint="stop it first (djtui demo --stop --dir ...) or choose another directory")
        commandlog.add_secret(self.password.reveal())
        self.socket_path = self._pick_socket()
        self._initialize()
        self._launch_until_ready([], timeout)
        self._create_admin()
        self._write_state()
        if not self.detached:
            atexit.register(self.stop)
        return self

    def restart(self, password: Secret, port: int | None = None, timeout: float = 60.0) -> PrivateServer:
        """Start again a detached server whose data a stop kept: same data and admin, ``port`` if it is free.

        The admin's password is the one the lab's config holds (root's was replaced by a random one at
        the first start, so readiness is probed as the admin).
        """
        self.binary = find_server_binary()
        state = read_state(self.base_dir)
        if state is not None:
            if pid_alive(int(state["pid"])):
                raise UserError(f"the private server of {self.base_dir} is already running (pid {state['pid']})",
                                hint="stop it first (djtui demo --stop --dir ...)")
            (self.base_dir / STATE_FILE).unlink(missing_ok=True)  # left by a server that died
        if not (self.datadir / "mysql").is_dir():
            raise UserError(f"{self.datadir} holds no database: its data was removed when it was stopped",
                            hint="build a new lab (djtui demo --setup-only --dir NEW_DIR)")
        self.password = password
        commandlog.add_secret(password.reveal())
        self.socket_path = self._pick_socket()
        self._launch_until_ready([port] if port and port_free(port) else [], timeout, self.connect)
        self._write_state()
        return self

    def _user_flag(self) -> list[str]:
        return [f"--user={getpass.getuser()}"] if os.geteuid() == 0 else []

    def _tmpdir(self) -> str:
        """A private tmpdir: in the shared /tmp, the server's temp files were seen deleted under it."""
        path = self.base_dir / "tmp"
        path.mkdir(exist_ok=True)
        return f"--tmpdir={path}"

    def _initialize(self) -> None:
        assert self.binary is not None
        log = self.base_dir / "install.log"
        if self.binary.flavor == "MariaDB":
            cmd = [str(self.binary.install_db), "--no-defaults", f"--datadir={self.datadir}",
                   "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
                   self._tmpdir(), *self._user_flag()]
        else:
            cmd = [str(self.binary.server), "--no-defaults", "--initialize-insecure",
                   f"--datadir={self.datadir}", self._tmpdir(), *self._user_flag()]
        commandlog.record("exec", cmd)
        with open(log, "wb") as fh:
            rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=300).returncode
        if rc != 0:
            tail = log.read_text(errors="replace")[-1500:]
            raise OperationFailed(f"initializing the private server's data directory failed:\n{tail}")

    def _launch(self) -> None:
        assert self.binary is not None
        err_log = self.base_dir / "server.log"
        if err_log.exists():
            err_log.unlink()
        cmd = [
            str(self.binary.server), "--no-defaults", f"--datadir={self.datadir}",
            f"--socket={self.socket_path}", f"--port={self.port}", "--bind-address=127.0.0.1",
            f"--pid-file={self.base_dir / 'server.pid'}", f"--log-error={err_log}",
            "--skip-name-resolve", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
            f"--innodb-buffer-pool-size={self.buffer_pool_mb}M", "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=300", "--max-allowed-packet=256M", f"--secure-file-priv={self.base_dir}",
            "--skip-log-bin", self._tmpdir(), *self._user_flag(),
        ]
        if self.binary.flavor == "MySQL":
            cmd.append("--mysqlx=OFF")
        commandlog.record("exec", cmd)
        in_main = threading.current_thread() is threading.main_thread()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=None if self.detached or not in_main else die_with_parent,
        )
        self.pid = self.proc.pid

    def _root_connect(self) -> pymysql.connections.Connection:
        return pymysql.connect(unix_socket=self.socket_path, user="root", password="",
                               connect_timeout=2, autocommit=True)

    def _wait_ready(self, timeout: float, connect=None) -> None:
        assert self.proc is not None
        connect = connect or self._root_connect
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.base_dir / "server.log")
                tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                raise OperationFailed(f"the private server exited at start (code {self.proc.returncode}):\n{tail}")
            if os.path.exists(self.socket_path):
                try:
                    connect().close()
                    return
                except pymysql.err.MySQLError:
                    pass
            time.sleep(0.05)
        raise OperationFailed(f"the private server did not become ready within {timeout:.0f} s")

    def _create_admin(self) -> None:
        pw = self.password.reveal()
        conn = self._root_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT user, host FROM mysql.user WHERE user = ''")
                for user, host in cur.fetchall():
                    cur.execute("DROP USER %s@%s", (user, host))
                for host in ("%", "localhost"):
                    cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (ADMIN_USER, host, pw))
                    cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'{host}' WITH GRANT OPTION")
                cur.execute("SELECT user, host FROM mysql.user WHERE user = 'root'")
                for user, host in cur.fetchall():
                    if host == "localhost":
                        cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, secrets.token_urlsafe(24)))
                    else:  # root@127.0.0.1, root@::1, root@<hostname>: not needed, and passwordless
                        cur.execute("DROP USER %s@%s", (user, host))
                cur.execute("FLUSH PRIVILEGES")
        finally:
            conn.close()

    def _write_state(self) -> None:
        state = {
            "pid": self.pid, "port": self.port, "socket": self.socket_path, "datadir": str(self.datadir),
            "user": ADMIN_USER, "flavor": self.flavor, "version": self.binary.version if self.binary else "",
            "socket_dir": str(self._socket_dir) if self._socket_dir else None,
        }
        write_state(self.base_dir, state)

    def connect(self, database: str | None = None, **kw: object) -> pymysql.connections.Connection:
        args = self.settings.pymysql_kwargs(database)
        args.update(kw)
        return pymysql.connect(**args)

    def _remove_files(self) -> None:
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        elif not self.keep_dir:
            shutil.rmtree(self.datadir, ignore_errors=True)
