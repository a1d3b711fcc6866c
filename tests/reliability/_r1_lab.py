"""R1's lab: a database user of its own (so a test can KILL its connections), sessions, a backup
destination, an orphan table and a stale temp directory, and the real CLI as a subprocess.

Faults are struck from outside, as they happen in the field: ``KILL <id>`` from another
connection, SIGKILL of djtui or of its rsync child, a full filesystem. A test-only pause
(``DJTUI_TEST_PAUSE_BETWEEN_ITEMS``) makes "in the middle" deterministic instead of a race.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from djtui import labschema
from djtui.services.servers.mariadb import PrivateServer
from tests.names import unique

PASSWORD = "r1-Pw-9k2Lq"
PASSWORD_ENV = "R1_DB_PW"
DATE = "20250104"
PAUSE_ENV = "DJTUI_TEST_PAUSE_BETWEEN_ITEMS"


@dataclass
class R1Lab:
    root: Path
    server: PrivateServer
    user: str
    schemas: dict[str, str]
    config_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def dest(self) -> Path:
        return self.root / "dest"

    @property
    def audit_path(self) -> Path:
        return self.root / "audit.jsonl"

    def audit(self) -> list[dict]:
        try:
            lines = self.audit_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def argv(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "djtui", "--config", str(self.config_path), *argv]

    def cli(self, *argv: str, pause: float | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*argv), capture_output=True, text=True, env=self._env(pause),
                              timeout=timeout, cwd=self.root, stdin=subprocess.DEVNULL)

    def start(self, *argv: str, pause: float | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self._env(pause), cwd=self.root, stdin=subprocess.DEVNULL)

    def _env(self, pause: float | None) -> dict[str, str]:
        env = dict(self.env)
        if pause:
            env[PAUSE_ENV] = str(pause)
        return env

    def session_dir(self, pid: str, date: str = DATE) -> Path:
        return self.source / pid / date

    def dest_dir(self, pid: str, date: str = DATE) -> Path:
        return self.dest / date / pid

    def make_session(self, pid: str, date: str = DATE, files: int = 4, size: int = 1000) -> Path:
        d = self.session_dir(pid, date)
        (d / "meta").mkdir(parents=True, exist_ok=True)
        for i in range(files):
            (d / f"cam{i}.mp4").write_bytes(os.urandom(size))
        (d / "meta" / "info.json").write_text(json.dumps({"files": files}))
        conn = self.server.connect()
        try:
            with conn.cursor() as cur:
                labschema.insert_session(cur, pid[1:], dt.datetime.strptime(date, "%Y%m%d").date(),
                                         labschema.ImportPlan(), sessions=self.schemas["sessions"],
                                         multicamera=self.schemas["multicamera"], pose=self.schemas["pose"])
        finally:
            conn.close()
        return d

    def write_config(self, rsync_flags: str = "-a", extra: str = "") -> None:
        r = self.root
        self.config_path.write_text(f"""
backup:
  source:
    base_path: {r}/source
    path_structure: "{{participant_id}}/{{session_date}}"
  destinations:
    - name: net
      base_path: {r}/dest
      path_structure: "{{session_date}}/{{participant_id}}"
      verify_mount: false
  filters:
    participant_prefixes: ["p"]
  rsync:
    flags: "{rsync_flags}"
database:
  host: 127.0.0.1
  port: {self.server.port}
  user: {self.user}
  password_env: {PASSWORD_ENV}
  use_datajoint_config: false
  connect_timeout: 3
sessions:
  sessions_schema: {self.schemas['sessions']}
  multicamera_schema: {self.schemas['multicamera']}
  mount_timeout: 2
orphans:
  tables: [{self.schemas['sessions']}.subject]
  temp_directories: [{r}/store/tmp]
  temp_max_age_days: 1
  max_share: 1.0
  quarantine_dir: {r}/store/quarantine
accounts:
  shared_prefixes: [r1mod]
dbbackup:
  out_dir: {r}/backups
state_dir: {r}/state
audit_log: {r}/audit.jsonl
{extra}""")
        self.config_path.chmod(0o600)

    # -- the database user's connections -------------------------------------------------------
    def connection_ids(self) -> list[int]:
        conn = self.server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM information_schema.processlist WHERE user = %s", (self.user,))
                return [int(r[0]) for r in cur.fetchall()]
        finally:
            conn.close()

    def kill_connections(self, *, lock_account: bool = False) -> list[int]:
        """``KILL <id>`` every connection of the lab's user, as a DBA (or a server restart) would."""
        conn = self.server.connect()
        try:
            with conn.cursor() as cur:
                if lock_account:
                    cur.execute(f"ALTER USER '{self.user}'@'%' ACCOUNT LOCK")
                ids = []
                cur.execute("SELECT id FROM information_schema.processlist WHERE user = %s", (self.user,))
                for (cid,) in cur.fetchall():
                    try:
                        cur.execute(f"KILL {int(cid)}")
                        ids.append(int(cid))
                    except Exception:
                        pass
                return ids
        finally:
            conn.close()

    def unlock_account(self) -> None:
        conn = self.server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"ALTER USER '{self.user}'@'%' ACCOUNT UNLOCK")
        finally:
            conn.close()


def build(server: PrivateServer, root: Path) -> R1Lab:
    user = unique("r1adm")
    base = unique("r1lab")
    schemas = {"sessions": f"{base}_sess", "multicamera": f"{base}_mc", "pose": f"{base}_pose"}
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, PASSWORD))
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%' WITH GRANT OPTION")
            labschema.create_tables(cur, **schemas)
    finally:
        conn.close()
    for sub in ("source", "dest", "state", "store/tmp", "store/quarantine", "backups"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "DJTUI_"))}
    env[PASSWORD_ENV] = PASSWORD
    env["HOME"] = str(root)
    lab = R1Lab(root, server, user, schemas, root / "djtui.yaml", env)
    lab.write_config()
    return lab


def teardown(lab: R1Lab) -> None:
    conn = lab.server.connect()
    try:
        with conn.cursor() as cur:
            labschema.drop_tables(cur, [lab.schemas["sessions"], lab.schemas["multicamera"], lab.schemas["pose"]])
            cur.execute(f"DROP USER IF EXISTS '{lab.user}'@'%'")
    finally:
        conn.close()


@contextmanager
def lab_at(server: PrivateServer, root: Path) -> Iterator[R1Lab]:
    lab = build(server, root)
    try:
        yield lab
    finally:
        teardown(lab)


def wait_for(what: Callable[[], object], timeout: float = 30, step: float = 0.02) -> object:
    """Poll until ``what()`` is truthy; fail the test (not hang) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"timed out after {timeout} s waiting for {getattr(what, '__name__', what)}")


def sigkill(proc: subprocess.Popen) -> None:
    """SIGKILL a process this test started (by its handle, never by name) and reap it."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def children_named(proc: subprocess.Popen, name: str) -> list[psutil.Process]:
    """Descendants of a process this test started whose name is ``name`` (e.g. its rsync child)."""
    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for k in kids:
        try:
            if k.name() == name:
                out.append(k)
        except psutil.NoSuchProcess:
            continue
    return out


def tree_files(root: Path) -> dict[str, int]:
    """Relative path -> size of every regular file under ``root``."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = p.stat().st_size
    return out
