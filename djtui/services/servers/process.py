"""What every private server needs, whatever its family: a free loopback port, a child process that
dies with its parent, stopping a process politely then firmly, and the detached server's state file
(a 0600 JSON file in the server's directory: pid, port, socket, data directory).

``mariadb.py`` and ``postgres.py`` build on these.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from djtui.errors import OperationFailed, UserError

STATE_FILE = "server.json"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """Nothing listens on ``port``; connections of a stopped server in TIME_WAIT do not count (the server
    binds with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """``preexec_fn`` of an attached server: the kernel sends it SIGTERM when its parent dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stop_process(proc: subprocess.Popen, timeout: float = 30.0, sig: int = signal.SIGTERM) -> None:
    """``sig`` (SIGTERM), then SIGKILL when it has not ended within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_state(base_dir: Path, state: dict[str, Any]) -> None:
    """The detached server's state file; refuses to overwrite one (another server may own the directory)."""
    fd = os.open(Path(base_dir) / STATE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2)


def read_state(base_dir: str | os.PathLike) -> dict | None:
    path = Path(base_dir) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise UserError(f"{path} is damaged", hint="remove it after making sure no server runs there") from None


def stop_detached(base_dir: str | os.PathLike, *, remove_data: bool = True, timeout: float = 30.0) -> bool:
    """Stop a server left running (``demo --setup-only``) from its state file; False when none was running.

    The state file names the pid, the socket's directory and the data directory (``datadir``); a server
    that wants another signal than SIGTERM names it (``stop_signal``: PostgreSQL's fast shutdown is
    SIGINT), and one whose data lives outside ``base_dir`` names that folder (``run_dir``)."""
    base = Path(base_dir)
    state = read_state(base)
    if state is None:
        return False
    pid = int(state["pid"])
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, getattr(signal, str(state.get("stop_signal") or "SIGTERM"), signal.SIGTERM))
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    (base / STATE_FILE).unlink(missing_ok=True)
    if state.get("socket_dir"):
        shutil.rmtree(state["socket_dir"], ignore_errors=True)
    if remove_data:
        shutil.rmtree(state.get("datadir") or base / "data", ignore_errors=True)
        if state.get("run_dir"):
            shutil.rmtree(state["run_dir"], ignore_errors=True)
    return True


class ServerProcess:
    """The lifecycle every private server shares: a context manager, a launch on a free port retried until
    the server answers, and a stop that runs once (also at exit) and removes what the family's
    ``_remove_files`` names. A family provides ``start``, ``_launch``, ``_wait_ready`` and ``_remove_files``."""

    stop_signal: int = signal.SIGTERM  # PostgreSQL: SIGINT (its fast shutdown)
    base_dir: Path
    port: int
    proc: subprocess.Popen | None
    _stopped: bool

    def start(self, timeout: float = 60.0) -> ServerProcess:
        raise NotImplementedError

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _launch(self) -> None:
        raise NotImplementedError

    def _wait_ready(self, timeout: float, probe: Any = None) -> None:
        raise NotImplementedError

    def _remove_files(self) -> None:
        raise NotImplementedError

    def _launch_until_ready(self, ports: list[int], timeout: float, probe: Any = None) -> None:
        """Launch on ``ports`` first, then on free ports, up to three tries until the server answers.

        A port taken between free_port() and bind, or a slow start on a loaded machine, gets a retry.
        """
        last_error = ""
        for attempt in range(3):
            self.port = ports[attempt] if attempt < len(ports) else free_port()
            self._launch()
            try:
                self._wait_ready(timeout, probe)
                return
            except OperationFailed as exc:
                last_error = str(exc)
                self._kill()
        raise OperationFailed(last_error)

    def _kill(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, sig=self.stop_signal)
        self.proc = None

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        self._kill()
        with contextlib.suppress(FileNotFoundError):
            (self.base_dir / STATE_FILE).unlink()
        self._remove_files()
