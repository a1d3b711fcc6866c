"""The admin sections: ``export:``, ``accounts:``, ``dbbackup:`` and ``maintenance:`` (with its ``notify:``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djtui.config.reader import Reader, Secret

SPYGLASS_SHARED_PREFIXES = (
    "behavior", "common", "decoding", "figurl", "lfp", "linearization",
    "mua", "position", "ripple", "sharing", "spikesorting",
)


@dataclass(frozen=True)
class ExportSettings:
    out_dir: Path | None = None
    schema_prefixes: tuple[str, ...] = ()
    strip_charset: bool = False
    insert_batch_rows: int = 1000
    statement_timeout_s: float = 300.0  # limit of a statement that evaluates a leaf's restriction; 0: none


@dataclass(frozen=True)
class AccountSettings:
    shared_prefixes: tuple[str, ...] = SPYGLASS_SHARED_PREFIXES
    user_can_create: bool = True
    default_host: str = "%"
    password_expiry_days: int | None = None
    # where guest/collab/user SELECT: "lab" (every `<prefix>_<name>` schema, not `mysql`), "all"
    # (Spyglass's `%`, which lets them read every password hash), or a tuple of schema prefixes
    read_scope: str | tuple[str, ...] = "lab"


@dataclass(frozen=True)
class Drive:
    path: Path
    min_free_gb: float


@dataclass(frozen=True)
class DbBackupSettings:
    out_dir: Path | None = None
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 6
    remote: str | None = None
    parallel: int = 2


@dataclass(frozen=True)
class NotifySettings:
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_to: tuple[str, ...] = ()
    slack_webhook: Secret | None = None


@dataclass(frozen=True)
class MaintenanceSettings:
    drives: tuple[Drive, ...] = ()
    temp_dirs: tuple[Path, ...] = ()
    history_csv: Path | None = None
    notify: NotifySettings = field(default_factory=NotifySettings)


def read_export(r: Reader, raw: Any) -> ExportSettings:
    p = ("export",)
    m = r.mapping(raw, p, ["out_dir", "schema_prefixes", "strip_charset", "insert_batch_rows", "statement_timeout_s"])
    return ExportSettings(
        out_dir=r.path(m, "out_dir", p, None),
        schema_prefixes=r.strings(m, "schema_prefixes", p, ()),
        strip_charset=r.boolean(m, "strip_charset", p, False),
        insert_batch_rows=r.number(m, "insert_batch_rows", p, 1000, integer=True, minimum=1, maximum=1_000_000),
        statement_timeout_s=float(r.number(m, "statement_timeout_s", p, 300.0, minimum=0, maximum=31_536_000)),
    )


_PREFIX = re.compile(r"^[A-Za-z0-9_]+\Z")


def read_accounts(r: Reader, raw: Any) -> AccountSettings:
    p = ("accounts",)
    m = r.mapping(raw, p, ["shared_prefixes", "user_can_create", "default_host", "password_expiry_days",
                           "read_scope"])
    prefixes = r.strings(m, "shared_prefixes", p, SPYGLASS_SHARED_PREFIXES)
    for i, prefix in enumerate(prefixes):
        if not _PREFIX.match(prefix):
            raise r.fail((*p, "shared_prefixes", str(i)), f"prefix {prefix!r} may hold letters, digits and _ only")
    scope: str | tuple[str, ...]
    if isinstance(m.get("read_scope"), list):
        scope = r.strings(m, "read_scope", p, ())
        if not scope:
            raise r.fail((*p, "read_scope"), "an empty list of prefixes",
                         "name schema prefixes (e.g. [common, alice]), or write `lab` or `all`")
        for i, prefix in enumerate(scope):
            if not _PREFIX.match(prefix):
                raise r.fail((*p, "read_scope", str(i)), f"prefix {prefix!r} may hold letters, digits and _ only")
    else:
        scope = r.string(m, "read_scope", p, "lab", choices=("lab", "all"))
    return AccountSettings(
        shared_prefixes=prefixes,
        user_can_create=r.boolean(m, "user_can_create", p, True),
        default_host=r.string(m, "default_host", p, "%"),
        password_expiry_days=r.number(m, "password_expiry_days", p, None, integer=True, minimum=1),
        read_scope=scope,
    )


def read_dbbackup(r: Reader, raw: Any) -> DbBackupSettings:
    p = ("dbbackup",)
    m = r.mapping(raw, p, ["out_dir", "keep_daily", "keep_weekly", "keep_monthly", "remote", "parallel"])
    return DbBackupSettings(
        out_dir=r.path(m, "out_dir", p, None),
        keep_daily=r.number(m, "keep_daily", p, 7, integer=True, minimum=0),
        keep_weekly=r.number(m, "keep_weekly", p, 4, integer=True, minimum=0),
        keep_monthly=r.number(m, "keep_monthly", p, 6, integer=True, minimum=0),
        remote=r.string(m, "remote", p, None),
        parallel=r.number(m, "parallel", p, 2, integer=True, minimum=1, maximum=32),
    )


def read_maintenance(r: Reader, raw: Any) -> MaintenanceSettings:
    p = ("maintenance",)
    m = r.mapping(raw, p, ["drives", "temp_dirs", "history_csv", "notify"])
    drives = []
    for dp, item in r.items(m, "drives", p):
        d = r.mapping(item, dp, ["path", "min_free_gb"])
        drives.append(Drive(path=r.path(d, "path", dp),
                            min_free_gb=r.number(d, "min_free_gb", dp, 0.0, minimum=0)))
    temps = tuple(r.path({"p": t}, "p", (*p, "temp_dirs", str(i)))
                  for i, t in enumerate(r.strings(m, "temp_dirs", p, ())))
    np_ = (*p, "notify")
    n = r.mapping(m.get("notify"), np_, ["smtp_host", "smtp_port", "smtp_from", "smtp_to", "slack_webhook"])
    return MaintenanceSettings(
        drives=tuple(drives), temp_dirs=temps,
        history_csv=r.path(m, "history_csv", p, None),
        notify=NotifySettings(
            smtp_host=r.string(n, "smtp_host", np_, None),
            smtp_port=r.number(n, "smtp_port", np_, 25, integer=True, minimum=1, maximum=65535),
            smtp_from=r.string(n, "smtp_from", np_, None),
            smtp_to=r.strings(n, "smtp_to", np_, ()),
            slack_webhook=r.secret(n, "slack_webhook", np_),
        ),
    )


