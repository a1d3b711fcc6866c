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

from djtui.config import Config
from djtui.errors import UserError
from djtui.services.database import Database, resolve_connection


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


def run_checks(cfg: Config, *, timeout: float | None = None) -> list[Check]:
    checks: list[Check] = []
    checks.append(Check("config", "file", True, cfg.label if cfg.path else "none found: using defaults",
                        warn=cfg.path is None))
    for w in cfg.warnings:
        checks.append(Check("config", "permissions", True, w, warn=True))

    # database
    try:
        settings = resolve_connection(cfg.database)
        db = Database(settings)
        try:
            info = db.server_info()
            checks.append(Check("database", "server", True,
                                f"{info.label} at {settings.address} as {info.current_user}"))
            if info.is_mariadb:
                checks.append(Check("database", "flavor", True,
                                    "MariaDB: DataJoint 2.x supports it on a best-effort basis", warn=True))
            try:  # only the lab's admin may read the roles' grants; for others there is nothing to say
                from djtui.services.accounts import AccountsService
                for w in AccountsService(db, cfg.accounts).role_warnings():
                    checks.append(Check("accounts", "roles read mysql", True, w, warn=True))
            except UserError:
                pass
        finally:
            db.close()
    except UserError as exc:
        checks.append(Check("database", "server", False, exc.render()))

    t = timeout if timeout is not None else cfg.sessions.mount_timeout
    if cfg.backup is not None:
        src = cfg.backup.source.base_path
        p = probe_path(src, t)
        checks.append(Check("source", str(src), p.state == "ok", p.detail or f"answers in {p.elapsed * 1000:.0f} ms"))
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

    for names, what, needed in (
        (("rsync",), "rsync", cfg.backup is not None),
        (("mariadb-dump", "mysqldump"), "dump tool", True),
        (("mariadb", "mysql"), "client", True),
    ):
        exe, version = tool_version(names)
        checks.append(Check("tools", what, exe is not None or not needed, version, warn=exe is None and not needed))

    paths: dict[str, Path] = {"state dir": cfg.state_dir}
    if cfg.backup is not None:
        paths["source"] = cfg.backup.source.base_path
        for d in cfg.backup.destinations:
            paths[f"dest {d.name}"] = d.base_path
    if cfg.export.out_dir:
        paths["export out"] = cfg.export.out_dir
    if cfg.dbbackup.out_dir:
        paths["dbbackup out"] = cfg.dbbackup.out_dir
    for label, path in paths.items():
        result: list[str] = []
        th = threading.Thread(target=lambda p=path, out=result: out.append(_free(p)), daemon=True)
        th.start()
        th.join(t)
        checks.append(Check("disk", label, bool(result), result[0] if result else f"{path}: no answer in {t:g} s"))
    return checks
