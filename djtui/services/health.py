"""The checks behind `djtui doctor`: is everything djtui needs here and answering?

A check never hangs: a path on a stale network mount is probed in a daemon
thread that is abandoned after the timeout, and external tools get a
subprocess timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from djtui.config import CONFIG_ENV, DEFAULT_NAMES, Config, user_config_dir
from djtui.errors import UserError
from djtui.services.backends import ServerInfo
from djtui.services.database import Database, find_datajoint_json, resolve_connection

# where a connection value came from, per key, when it came from DataJoint's variables
_DJ_ENV = {"host": "DJ_HOST", "port": "DJ_PORT", "user": "DJ_USER", "password": "DJ_PASS"}


@dataclass(frozen=True)
class Check:
    area: str
    name: str
    ok: bool
    detail: str
    warn: bool = False  # shown as ⚠ and not counted as a failure


@dataclass(frozen=True)
class Probe:
    state: str  # "ok" | "missing" | "hung" | "error"
    elapsed: float
    detail: str = ""


def probe_path(path: Path, timeout: float) -> Probe:
    """stat + list one directory level, abandoned (never waited on) after ``timeout`` s."""
    result: list[Probe] = []
    start = time.monotonic()

    def run() -> None:
        try:
            st = os.stat(path)
            if not os.path.isdir(path):
                result.append(Probe("error", time.monotonic() - start, f"not a directory (mode {st.st_mode:o})"))
                return
            with os.scandir(path) as it:
                next(it, None)
            result.append(Probe("ok", time.monotonic() - start))
        except FileNotFoundError:
            result.append(Probe("missing", time.monotonic() - start, "does not exist"))
        except OSError as exc:
            result.append(Probe("error", time.monotonic() - start, exc.strerror or str(exc)))

    t = threading.Thread(target=run, daemon=True, name=f"probe {path}")
    t.start()
    t.join(timeout)
    if result:
        return result[0]
    return Probe("hung", timeout, f"no answer in {timeout:g} s (stale mount? try: sudo umount -l {path} && "
                                  f"sudo mount {path})")


def tool_version(names: tuple[str, ...], args: tuple[str, ...] = ("--version",)) -> tuple[str | None, str]:
    for name in names:
        exe = shutil.which(name)
        if not exe:
            continue
        try:
            out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=10,
                                 env={**os.environ, "LC_ALL": "C"})
        except (OSError, subprocess.TimeoutExpired) as exc:
            return exe, f"did not answer: {exc}"
        first = (out.stdout or out.stderr).strip().splitlines()
        return exe, first[0] if first else "(no version output)"
    return None, f"not found ({' or '.join(names)})"


def _free(path: Path) -> str:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    u = psutil.disk_usage(str(probe))
    return f"{u.free / 2**30:,.1f} GiB free of {u.total / 2**30:,.1f} GiB ({100 - u.percent:.0f}%)"


def config_search(explicit: str | None = None, *, cwd: Path | None = None,
                  home: Path | None = None, env: dict[str, str] | None = None) -> list[tuple[str, bool]]:
    """The files djtui and DataJoint look in, in their order, each with whether it is there.

    djtui: --config, $DJTUI_CONFIG, ./backup_config.yaml, ~/.config/djtui/config.yaml;
    DataJoint: ~/.datajoint_config.json, ./dj_local_conf.json, datajoint.json upward, the DJ_* variables.
    """
    cwd = cwd or Path.cwd()
    home = home or Path(os.path.expanduser("~"))
    env = dict(os.environ if env is None else env)
    out: list[tuple[str, bool]] = []
    if explicit:
        out.append((f"--config {explicit}", Path(explicit).expanduser().is_file()))
    if env.get(CONFIG_ENV):
        out.append((f"${CONFIG_ENV}={env[CONFIG_ENV]}", Path(env[CONFIG_ENV]).expanduser().is_file()))
    else:
        out.append((f"${CONFIG_ENV} (not set)", False))
    for name in DEFAULT_NAMES:
        out.append((str(cwd / name), (cwd / name).is_file()))
    for name in ("config.yaml", *DEFAULT_NAMES):
        p = user_config_dir() / name
        out.append((str(p), p.is_file()))
    out.append((str(home / ".datajoint_config.json"), (home / ".datajoint_config.json").is_file()))
    out.append((str(cwd / "dj_local_conf.json"), (cwd / "dj_local_conf.json").is_file()))
    dj = find_datajoint_json(cwd)
    out.append((str(dj) if dj else "datajoint.json (upward from . to the repository root)", dj is not None))
    present = [v for v in ("DJ_HOST", "DJ_PORT", "DJ_USER", "DJ_PASS", "DJ_STORES") if env.get(v)]
    out.append(("DJ_* variables: " + (", ".join(present) if present else "none set"), bool(present)))
    return out


def value_sources(sources: tuple[str, ...], env_labels: dict[str, str] = _DJ_ENV) -> str:
    """``host from DJ_HOST, user from /x/dj_local_conf.json, ...`` (never a value): from a connection's sources."""
    parts = []
    for item in sources:
        key, _, label = item.partition(": ")
        if label.startswith("environment"):
            label = env_labels.get(key, label)
        parts.append(f"{key} from {label}")
    return ", ".join(parts) if parts else "every value is a default (localhost:3306, no user)"


def datajoint_generation(db: Database | None, *, cwd: Path | None = None,
                         env: dict[str, str] | None = None) -> tuple[str | None, str]:
    """("0.14" | "2.x" | None, why): the lab's DataJoint, from its tables and its config files.

    ``~external_*`` tables exist only under DataJoint 0.14; a ``datajoint.json`` or ``DJ_STORES`` is 2.x's config.
    """
    env = dict(os.environ if env is None else env)
    if db is not None:
        try:
            found = db.backend.tables(like="~external\\_%")
        except UserError:
            found = []
        if found:
            return "0.14", f"{db.dialect.table(*found[0])} is a DataJoint 0.14 table"
        try:  # DataJoint 2.x adds a ~lineage table to every schema it declares
            found = db.backend.tables(like="~lineage")
        except UserError:
            found = []
        if found:
            return "2.x", f"{db.dialect.table(*found[0])} is DataJoint 2.x's lineage table"
    dj = find_datajoint_json(cwd or Path.cwd())
    if dj is not None:
        return "2.x", f"{dj} is DataJoint 2.x's config"
    if env.get("DJ_STORES"):
        return "2.x", "DJ_STORES is DataJoint 2.x's variable"
    return None, "no ~external_* or ~lineage tables and no datajoint.json: cannot tell"


def _fs(path: Path) -> str:
    """The filesystem holding ``path``: its mount point and type."""
    best = None
    real = os.path.realpath(path)
    try:
        parts = psutil.disk_partitions(all=True)
    except OSError:
        return "?"
    for part in parts:
        mp = part.mountpoint
        if (real == mp or real.startswith(mp.rstrip("/") + "/")) and (best is None or len(mp) > len(best.mountpoint)):
            best = part
    return f"{best.fstype} at {best.mountpoint}" if best else "?"


def check_dir(area: str, name: str, path: Path, *, write: bool, timeout: float,
              may_be_missing: bool = False) -> Check:
    """A directory djtui reads (and writes, ``write``): there, readable/writable, on which filesystem."""
    p = probe_path(path, timeout)
    if p.state == "missing" and may_be_missing:
        parent = path.parent
        ok = os.access(parent, os.W_OK) if parent.is_dir() else False
        return Check(area, name, ok, f"{path} does not exist yet" + (
            f"; created at first use ({_fs(parent)})" if ok else f"; {parent} is not writable"), warn=ok)
    if p.state != "ok":
        return Check(area, name, False, f"{path}: {p.detail}")
    need = os.R_OK | os.X_OK | (os.W_OK if write else 0)
    if not os.access(path, need):
        return Check(area, name, False, f"{path} is not {'writable' if write else 'readable'} by this user")
    return Check(area, name, True, f"{path} {'writable' if write else 'readable'} ({_fs(path)})")


def _config_checks(cfg: Config) -> list[Check]:
    checks: list[Check] = []
    if cfg.path:
        checks.append(Check("config", "file", True, str(cfg.path)))
    else:
        checks.append(Check("config", "file", True, "none found (the files searched are listed below): write one "
                            "with `djtui init`, or try djtui on a demo lab with `djtui demo`", warn=True))
    for w in cfg.warnings:
        checks.append(Check("config", "permissions", True, w, warn=True))
    return checks


def _server_checks(cfg: Config, db: Database, address: str, sources: tuple[str, ...],
                   checks: list[Check]) -> None:
    """Appends to ``checks`` as it goes: what passed stays listed when a later question fails."""
    info = db.server_info()
    checks.append(Check("database", "server", True, f"{info.label} at {address} as {info.current_user}"))
    checks.append(Check("database", "values", True, value_sources(sources)))
    gen, why = datajoint_generation(db)
    checks.append(Check("database", "datajoint", True, f"{gen or 'unknown'}: {why}"))
    if info.is_mariadb and gen == "2.x":
        checks.append(Check("database", "flavor", True,
                            "MariaDB: DataJoint 2.x supports it on a best-effort basis", warn=True))
    try:  # only the lab's admin may read the roles' grants; for others there is nothing to say
        from djtui.services.accounts import AccountsService
        for w in AccountsService(db, cfg.accounts).role_warnings():
            checks.append(Check("accounts", "roles read mysql", True, w, warn=True))
    except UserError:
        pass


def _database_checks(cfg: Config, server: list) -> list[Check]:
    """The database's checks; ``server`` gets the server's ServerInfo when it answered."""
    checks: list[Check] = []
    try:
        settings = resolve_connection(cfg.database)
        if not settings.user:  # say it once, with what to do (the driver's error repeats itself in its hint)
            raise UserError(f"no database user configured (server {settings.address}): set database.user in "
                            "the config (`djtui init` writes one), DJ_USER, or datajoint.json")
        db = Database(settings)
        try:
            _server_checks(cfg, db, settings.address, settings.sources, checks)
            server.append(db.server_info())
        finally:
            db.close()
    except UserError as exc:
        checks.append(Check("database", "server", False, exc.render()))
        try:
            checks.append(Check("database", "values", True, value_sources(resolve_connection(cfg.database).sources)))
        except UserError:
            pass
    return checks


def _backup_checks(cfg: Config, t: float) -> list[Check]:
    if cfg.backup is None:
        return []
    src = cfg.backup.source.base_path
    p = probe_path(src, t)
    checks = [Check("source", str(src), p.state == "ok", p.detail or f"answers in {p.elapsed * 1000:.0f} ms")]
    for dest in cfg.backup.destinations:
        target = dest.mount_point if dest.verify_mount and dest.mount_point else dest.base_path
        p = probe_path(target, t)
        label = f"{dest.name}{'' if dest.enabled else ' (disabled)'}"
        ok = p.state == "ok"
        if ok and dest.verify_mount and dest.mount_point and not os.path.ismount(dest.mount_point):
            # sync refuses it (verify_mount): the share is not mounted
            detail = (f"{dest.mount_point} is not a mount point (is the share mounted?); sync refuses it "
                      "while verify_mount is true")
            checks.append(Check("destination", label, not dest.enabled, detail, warn=not dest.enabled))
        else:
            checks.append(Check("destination", label, ok or not dest.enabled,
                                p.detail or f"{target} answers in {p.elapsed * 1000:.0f} ms",
                                warn=not ok and not dest.enabled))
    return checks


def _folder_checks(cfg: Config, t: float) -> list[Check]:
    checks: list[Check] = []
    for store in cfg.stores:
        if store.protocol == "file":
            checks.append(check_dir("stores", store.name, Path(store.location), write=True, timeout=t))
    for d in cfg.orphans.directories:
        checks.append(check_dir("orphans", f"directory ({d.table})", d.path, write=False, timeout=t))
    for d in cfg.orphans.temp_directories:
        checks.append(check_dir("orphans", "temp directory", d, write=False, timeout=t))
    if cfg.orphans.quarantine_dir is not None:
        checks.append(check_dir("orphans", "quarantine", cfg.orphans.quarantine_dir, write=True, timeout=t,
                                may_be_missing=True))
    return checks


def _tool_checks(cfg: Config, server: ServerInfo | None) -> list[Check]:
    """rsync, and the dump and client tools of the lab's server family (pg_dump and psql on PostgreSQL),
    each compared with the server's version when it answered."""
    from djtui.services.backends.choose import make_backend

    exe, version = tool_version(("rsync",))
    needed = cfg.backup is not None
    checks = [Check("tools", "rsync", exe is not None or not needed, version, warn=exe is None and not needed)]
    try:
        backend = make_backend(resolve_connection(cfg.database).backend, None)  # type: ignore[arg-type]
    except UserError:
        backend = make_backend("mysql", None)  # type: ignore[arg-type]
    try:
        tools = backend.dump_tools()
    except UserError as exc:
        return [*checks, Check("tools", "dump tool", False, exc.render())]
    for name, found in backend.backup_tools():
        if found is None:
            checks.append(Check("tools", name, False, f"{name} is not installed: database backups need it",
                                warn=not cfg.dbbackup.out_dir))
    for what, path in (("dump tool", tools.dump), ("client", tools.client),
                       *((name, found) for name, found in backend.backup_tools() if found)):
        exe, version = tool_version((path,))
        mismatch = backend.tool_mismatch(path, version, server) if exe and server is not None else None
        if mismatch is None:
            checks.append(Check("tools", what, exe is not None, f"{version} ({path})" if exe else version))
        else:
            fatal, why = mismatch
            checks.append(Check("tools", what, not fatal, f"{version}: {why}", warn=not fatal))
    return checks


def _disk_checks(cfg: Config, t: float) -> list[Check]:
    paths: dict[str, Path] = {"state dir": cfg.state_dir}
    if cfg.backup is not None:
        paths["source"] = cfg.backup.source.base_path
        for d in cfg.backup.destinations:
            paths[f"dest {d.name}"] = d.base_path
    if cfg.export.out_dir:
        paths["export out"] = cfg.export.out_dir
    if cfg.dbbackup.out_dir:
        paths["dbbackup out"] = cfg.dbbackup.out_dir
    checks: list[Check] = []
    for label, path in paths.items():
        result: list[str] = []
        th = threading.Thread(target=lambda p=path, out=result: out.append(_free(p)), daemon=True)
        th.start()
        th.join(t)
        checks.append(Check("disk", label, bool(result), result[0] if result else f"{path}: no answer in {t:g} s"))
    return checks


def run_checks(cfg: Config, *, timeout: float | None = None) -> list[Check]:
    """Every check, in the order doctor prints them: config, database, backup paths, folders, tools, disks."""
    t = timeout if timeout is not None else cfg.sessions.mount_timeout
    server: list[ServerInfo] = []
    return [*_config_checks(cfg), *_database_checks(cfg, server), *_backup_checks(cfg, t), *_folder_checks(cfg, t),
            *_tool_checks(cfg, server[0] if server else None), *_disk_checks(cfg, t)]
