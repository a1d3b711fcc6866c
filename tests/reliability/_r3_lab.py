"""R3's lab: a database user with a distinctive password, a session tree, stores, exports and dumps.

The secrets, read-only and role tests all need one small lab that every CLI path can run on.
The password reaches djtui only through ``database.password_env`` (an environment variable),
as an operator's cron job would give it; everything djtui writes or shows is then grepped for it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from djtui import labschema
from djtui.services.servers.mariadb import PrivateServer
from tests.names import unique

PASSWORD = "Pw-Xy7#secret$zz"
PASSWORD_ENV = "R3_DB_PW"
PID = "p001"
DATE = "20250104"


@dataclass
class R3Lab:
    root: Path
    server: PrivateServer
    user: str
    base: str  # schema prefix of the lab's three schemas
    schemas: dict[str, str]
    config_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def leaf(self) -> str:
        return f"{self.schemas['sessions']}.session:participant_id = '001'"

    def cli(self, *argv: str, config: Path | None = None, stdin: str | None = None,
            timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The real binary (``python -m djtui``) with the lab's environment: stdout and stderr are the artefacts."""
        return subprocess.run([sys.executable, "-m", "djtui", "--config", str(config or self.config_path), *argv],
                              capture_output=True, text=True, env=self.env if env is None else env, input=stdin,
                              timeout=timeout,
                              cwd=self.root)

    def write_config(self, name: str, extra: str = "", *, host: str = "127.0.0.1", port: int | None = None,
                     password_line: str | None = None) -> Path:
        cfg = self.root / name
        cfg.write_text(config_text(self, extra, host=host, port=port, password_line=password_line))
        cfg.chmod(0o600)
        return cfg


def config_text(lab: R3Lab, extra: str = "", *, host: str = "127.0.0.1", port: int | None = None,
                password_line: str | None = None) -> str:
    r = lab.root
    pw = password_line or f"  password_env: {PASSWORD_ENV}"
    return f"""
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
    flags: "-a"
database:
  host: {host}
  port: {port or lab.server.port}
  user: {lab.user}
{pw}
  use_datajoint_config: false
  connect_timeout: 3
sessions:
  sessions_schema: {lab.schemas['sessions']}
  multicamera_schema: {lab.schemas['multicamera']}
  mount_timeout: 3
orphans:
  temp_directories: [{r}/tmp]
  temp_max_age_days: 1
  max_share: 1.0
  quarantine_dir: {r}/quarantine
export:
  out_dir: {r}/exports
  schema_prefixes: [{lab.base}]
dbbackup:
  out_dir: {r}/backups
  parallel: 2
maintenance:
  temp_dirs: [{r}/mtmp]
  history_csv: {r}/state/disk_history.csv
  drives:
    - path: {r}
      min_free_gb: 0
state_dir: {r}/state
audit_log: {r}/audit.jsonl
{extra}"""


ROLES = ("dj_guest", "dj_collab", "dj_user", "dj_admin")


def ensure_roles(server: PrivateServer, root: Path) -> None:
    """The four roles, created by the suite's own admin account (djadmin).

    On MariaDB the account that creates a role is the only one with ADMIN OPTION on it. Had the
    lab's temporary user created them (its `roles init`), dropping that user would leave the
    shared server with roles nobody may grant, and every later accounts test would fail.
    """
    from djtui.config import AccountSettings
    from djtui.services.accounts import AccountsService
    from djtui.services.database import Database

    db = Database(server.settings)
    try:
        service = AccountsService(db, AccountSettings())
        plan = service.plan_roles_init()
        if not plan.empty:
            service.apply(plan, state_dir=root / "roles-state", action="roles-init")
    finally:
        db.close()


def build(server: PrivateServer, root: Path) -> R3Lab:
    """Create the user (ALL, with grant option: it runs dumps and makes users), schemas, trees, config."""
    user = unique("r3adm")
    base = unique("r3lab")
    schemas = {"sessions": f"{base}_sess", "multicamera": f"{base}_mc", "pose": f"{base}_pose"}
    ensure_roles(server, root)
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, PASSWORD))
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%' WITH GRANT OPTION")
            # on MariaDB only holders WITH ADMIN OPTION may grant a role; the suite's admin keeps it
            for role in ROLES:
                cur.execute(f"GRANT `{role}` TO '{user}'@'%' WITH ADMIN OPTION")
            labschema.create_tables(cur, **schemas)
            labschema.insert_session(cur, "001", dt.date(2025, 1, 4), labschema.ImportPlan(),
                                     sessions=schemas["sessions"], multicamera=schemas["multicamera"],
                                     pose=schemas["pose"])
    finally:
        conn.close()
    for sub in ("source", "dest", "state", "tmp", "mtmp", "exports", "backups", "quarantine"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    session = root / "source" / PID / DATE
    session.mkdir(parents=True)
    for i in range(3):
        (session / f"cam{i}.mp4").write_bytes(os.urandom(2000))
    old = time.time() - 5 * 86400
    for d in ("tmp", "mtmp"):
        stale = root / d / "stale.part"
        stale.write_bytes(b"x" * 100)
        os.utime(stale, (old, old))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJ_")}
    env[PASSWORD_ENV] = PASSWORD
    env["HOME"] = str(root)  # crash reports and caches land inside the lab, where the test greps
    lab = R3Lab(root, server, user, base, schemas, root / "djtui.yaml", env)
    lab.write_config("djtui.yaml")
    return lab


def drop(lab: R3Lab) -> None:
    conn = lab.server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                        (lab.base.replace("_", "\\_") + "%",))
            for (name,) in cur.fetchall():
                cur.execute(f"DROP DATABASE `{name}`")
            cur.execute("SELECT User, Host FROM mysql.user WHERE User LIKE %s", (lab.user + "%",))
            for u, h in cur.fetchall():
                cur.execute("DROP USER %s@%s", (u, h))
    finally:
        conn.close()


# --- what a person could see -----------------------------------------------------------------------


def cmdlines() -> dict[int, bytes]:
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                pass
    return out


class ProcessWatch:
    """Samples every process's argv (what ``ps -eo args`` shows) every few ms while it runs; with
    ``environ_of``, also the environment (``/proc/<pid>/environ``) of processes whose program name (or
    script, run by an interpreter) holds one of those words (the dump and client tools djtui starts)."""

    def __init__(self, environ_of: tuple[bytes, ...] = ()) -> None:
        self.seen: set[bytes] = set()
        self.environs: dict[bytes, bytes] = {}  # argv -> environment
        self.samples = 0
        self._environ_of = environ_of
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            lines = cmdlines()
            self.seen.update(lines.values())
            for pid, argv in lines.items():
                prog = b" ".join(argv.split(b"\0")[:2])  # a script's interpreter, then the script
                if any(w in prog for w in self._environ_of) and argv not in self.environs:
                    try:
                        self.environs[argv] = Path(f"/proc/{pid}/environ").read_bytes()
                    except OSError:
                        pass
            self.samples += 1
            time.sleep(0.003)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def saw(self, word: bytes, about: str = "") -> list[bytes]:
        """Processes whose program name holds ``word`` (and whose argv mentions ``about``)."""
        return [c for c in self.seen if word in c.split(b"\0")[0] and about.encode() in c]

    def leaks(self, secret: str) -> list[str]:
        s = secret.encode()
        return [c.replace(b"\0", b" ").decode(errors="replace") for c in self.seen if s in c]

    def environ_leaks(self, secret: str) -> list[str]:
        """argv of each watched process whose environment holds ``secret``."""
        s = secret.encode()
        return [c.replace(b"\0", b" ").decode(errors="replace") for c, env in self.environs.items() if s in env]


@contextmanager
def table_locked(server: PrivateServer, table: str) -> Iterator[None]:
    """Hold a WRITE lock so a dump of ``table`` blocks: its process stays in the process list to be read."""
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"LOCK TABLES {table} WRITE")
        yield
    finally:
        try:
            with conn.cursor() as cur:
                cur.execute("UNLOCK TABLES")
        finally:
            conn.close()


def files_containing(root: Path, secret: str, *, exclude: tuple[Path, ...] = ()) -> list[str]:
    """Every file under ``root`` whose bytes (decompressed when it is a .gz/.zst dump) hold ``secret``.

    ``exclude``: the files the test itself wrote the secret into (a config with an inline password).
    """
    import gzip

    s = secret.encode()
    hits = []
    for p in root.rglob("*"):
        if not p.is_file() or p.is_symlink() or p in exclude:
            continue
        try:
            data = p.read_bytes()
        except OSError:
            continue
        if p.suffix == ".gz":
            data = gzip.decompress(data)
        elif p.suffix == ".zst":
            data = subprocess.run(["zstd", "-dc", str(p)], capture_output=True, check=True).stdout
        if s in data:
            hits.append(str(p))
    return hits
