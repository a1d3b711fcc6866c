"""Find, read and validate the one configuration file into a frozen ``Config``.

Each section has its own module and reader; this one knows the top-level keys, the search order
for the file, the permission check on a file that holds a secret, and the DataJoint stores merge.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from djtui.config.backup import BackupSettings, read_backup
from djtui.config.database import DatabaseSettings, read_database
from djtui.config.keys import read_keys
from djtui.config.reader import Reader, line_map
from djtui.config.sections import (
    AccountSettings,
    DbBackupSettings,
    ExportSettings,
    MaintenanceSettings,
    read_accounts,
    read_dbbackup,
    read_export,
    read_maintenance,
)
from djtui.config.sessions import SessionsSettings, read_sessions
from djtui.config.stores import OrphanSettings, StoreSettings, datajoint_stores, read_orphans, read_stores
from djtui.errors import ConfigError

CONFIG_ENV = "DJTUI_CONFIG"
DEFAULT_NAMES = ("backup_config.yaml",)


@dataclass(frozen=True)
class Config:
    path: Path | None
    backup: BackupSettings | None
    database: DatabaseSettings
    sessions: SessionsSettings
    stores: tuple[StoreSettings, ...]
    orphans: OrphanSettings
    export: ExportSettings
    accounts: AccountSettings
    dbbackup: DbBackupSettings
    maintenance: MaintenanceSettings
    audit_log: Path
    state_dir: Path
    readonly: bool = False
    warnings: tuple[str, ...] = ()
    # binding id -> Textual key string (`x` or `x,delete`); the app applies it with App.set_keymap
    keys: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def label(self) -> str:
        return str(self.path) if self.path else "(no config file)"


_SECTIONS: dict[str, Callable[[Reader, Any], Any]] = {
    "backup": read_backup,
    "database": read_database,
    "sessions": read_sessions,
    "stores": read_stores,
    "orphans": read_orphans,
    "export": read_export,
    "accounts": read_accounts,
    "dbbackup": read_dbbackup,
    "maintenance": read_maintenance,
    "keys": read_keys,
}
_TOP_KEYS = [*_SECTIONS, "audit_log", "state_dir", "readonly"]


def user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "djtui"


def user_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "djtui"


def find_config(explicit: str | os.PathLike | None = None) -> Path | None:
    """The config file to use: --config, then $DJTUI_CONFIG, then ./backup_config.yaml, then the user dir."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist", where="--config",
                              hint="check the path, or run without --config to use the default search")
        return p
    env = os.environ.get(CONFIG_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist", where=f"${CONFIG_ENV}",
                              hint=f"fix or unset {CONFIG_ENV}")
        return p
    for name in DEFAULT_NAMES:
        p = Path.cwd() / name
        if p.is_file():
            return p
    for name in ("config.yaml", *DEFAULT_NAMES):
        p = user_config_dir() / name
        if p.is_file():
            return p
    return None


def parse_config(text: str, *, source: str = "<config>", base_dir: Path | None = None,
                 path: Path | None = None) -> Config:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"malformed YAML{line}: {problem}", where=source,
                          hint="check indentation and quoting near that line") from None
    r = Reader(source, line_map(text), base_dir or Path.cwd())
    if data is None:
        data = {}
    top = r.mapping(data, (), _TOP_KEYS)
    sections = {name: reader(r, top.get(name)) for name, reader in _SECTIONS.items()}
    state_dir = r.path(top, "state_dir", (), None) or user_state_dir()
    audit_log = r.path(top, "audit_log", (), None) or state_dir / "audit.jsonl"
    warnings = list(r.warnings)
    if path is not None and _has_plain_secret(sections):
        try:
            mode = path.stat().st_mode
        except OSError:
            mode = 0
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(
                f"{path} holds a password and is readable by other users; "
                f"run `chmod 600 {path}` (or use database.password_env)")
    return Config(path=path, state_dir=state_dir, audit_log=audit_log,
                  readonly=r.boolean(top, "readonly", (), False), warnings=tuple(warnings), **sections)


def _has_plain_secret(sections: dict[str, Any]) -> bool:
    if sections["database"].password:
        return True
    if any(s.secret_key for s in sections["stores"]):
        return True
    return bool(sections["maintenance"].notify.slack_webhook)


def with_datajoint_stores(cfg: Config, **where: Any) -> Config:
    """``cfg`` plus the DataJoint config's stores; a store of the same name in djtui's file wins."""
    if not cfg.database.use_datajoint_config:
        return cfg
    found, warnings = datajoint_stores(**where)
    mine = {s.name for s in cfg.stores}
    extra = tuple(s for s in found if s.name not in mine)
    if not extra and not warnings:
        return cfg
    return replace(cfg, stores=(*cfg.stores, *extra), warnings=(*cfg.warnings, *warnings))


_TAKEN_SECRETS: dict[str, str] = {}  # database.password_env variables taken out of os.environ


def password_from_environment(name: str) -> str | None:
    """``database.password_env``'s value, taken out of the process's environment (and kept here) so the
    dump and client tools djtui starts do not inherit the password in theirs (``/proc/<pid>/environ``)."""
    if name in os.environ:
        _TAKEN_SECRETS[name] = os.environ.pop(name)
    return _TAKEN_SECRETS.get(name)


def load_config(explicit: str | os.PathLike | None = None, *, warn: Callable[[str], None] | None = None) -> Config:
    """Find, read and validate the configuration; a missing file yields the defaults."""
    path = find_config(explicit)
    if path is None:
        return with_datajoint_stores(parse_config("", source="(defaults)"))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("the file is not UTF-8 text", where=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}", where=str(path)) from None
    cfg = with_datajoint_stores(parse_config(text, source=str(path), base_dir=path.parent.resolve(),
                                             path=path.resolve()))
    for w in cfg.warnings:
        (warn or (lambda s: print(f"warning: {s}", file=sys.stderr)))(w)
    if cfg.database.password_env:
        password_from_environment(cfg.database.password_env)  # before any child process starts
    return cfg
