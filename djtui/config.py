"""Load and validate djtui's one YAML configuration file.

The ``backup:`` section is the MultiCameraTracking backup manager's
``backup_config.yaml`` format, read as documented; the other sections are
djtui's own. Everything is validated before any command runs, and an error
names the file, the key (with its line) and what was expected.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import string
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from djtui.errors import ConfigError

CONFIG_ENV = "DJTUI_CONFIG"
DEFAULT_NAMES = ("backup_config.yaml",)
PATH_PLACEHOLDERS = frozenset({"participant_id", "session_date"})

SPYGLASS_SHARED_PREFIXES = (
    "behavior", "common", "decoding", "figurl", "lfp", "linearization",
    "mua", "position", "ripple", "sharing", "spikesorting",
)


class Secret:
    """A credential that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


# ---------------------------------------------------------------------------
# the sections


@dataclass(frozen=True)
class RsyncSettings:
    """How rsync runs: the configured flags, plus ``bandwidth_limit`` (KB/s as rsync's ``--bwlimit``
    reads it: units of 1024 bytes; None or 0 is no limit) and ``timeout`` (seconds without I/O before
    rsync gives up, ``--timeout``; None or 0 is none)."""

    flags: str = "-a"
    bandwidth_limit: float | None = None
    timeout: int | None = None

    def options(self) -> list[str]:
        """The options these settings add after the flags (so they win over a --bwlimit in the flags)."""
        out = []
        if self.bandwidth_limit is not None:  # 0 is rsync's "no limit", and overrides one in the flags
            bw = self.bandwidth_limit
            out.append(f"--bwlimit={int(bw) if float(bw).is_integer() else bw}")
        if self.timeout is not None:
            out.append(f"--timeout={self.timeout}")
        return out


@dataclass(frozen=True)
class Destination:
    name: str
    mount_point: Path | None
    base_path: Path
    path_structure: str = "{participant_id}/{session_date}"
    enabled: bool = True
    verify_mount: bool = True
    rsync: RsyncSettings = field(default_factory=RsyncSettings)  # backup.rsync with this destination's overrides


@dataclass(frozen=True)
class Source:
    base_path: Path
    path_structure: str = "{participant_id}/{session_date}"


@dataclass(frozen=True)
class Filters:
    participant_prefixes: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verification:
    verify_after_sync: bool = True
    verify_method: str = "size"  # size | checksum


@dataclass(frozen=True)
class BackupSettings:
    source: Source
    destinations: tuple[Destination, ...] = ()
    filters: Filters = field(default_factory=Filters)
    rsync: RsyncSettings = field(default_factory=RsyncSettings)
    verification: Verification = field(default_factory=Verification)

    def destination(self, name: str) -> Destination:
        for dest in self.destinations:
            if dest.name == name:
                return dest
        names = ", ".join(d.name for d in self.destinations) or "none configured"
        raise ConfigError(
            f"unknown destination {name!r}",
            hint=f"configured destinations: {names}",
        )

    @property
    def enabled_destinations(self) -> tuple[Destination, ...]:
        return tuple(d for d in self.destinations if d.enabled)


@dataclass(frozen=True)
class DatabaseSettings:
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: Secret | None = None
    password_env: str | None = None
    socket: str | None = None
    use_datajoint_config: bool = True
    connect_timeout: int = 5
    statement_timeout_s: float = 300.0  # the longest any one database call may take


@dataclass(frozen=True)
class ExtraImportTable:
    table: str  # db.table
    participant_column: str = "participant_id"
    date_column: str = "session_date"


@dataclass(frozen=True)
class ParticipantIdRule:
    strip_prefixes: tuple[str, ...] = ("p", "t")
    numeric_only: bool = True  # strip only when what remains is all digits


@dataclass(frozen=True)
class SessionsSettings:
    imported_rule: str = "multicamera"  # multicamera | tables
    sessions_schema: str = "mocap_sessions"
    multicamera_schema: str = "multicamera_tracking"
    tables: tuple[ExtraImportTable, ...] = ()
    participant_id: ParticipantIdRule = field(default_factory=ParticipantIdRule)
    sqlite_path: Path | None = None
    video_extensions: tuple[str, ...] = (".mp4",)
    mount_timeout: float = 5.0
    checksum_workers: int = 4


@dataclass(frozen=True)
class StoreSettings:
    name: str
    protocol: str  # file | s3
    location: str
    endpoint: str | None = None
    bucket: str | None = None
    access_key: Secret | None = None
    secret_key: Secret | None = None
    secure: bool = False
    # the keys that change where DataJoint puts objects; None = the default of the store's DataJoint
    # version (0.14: subfolding (2, 2); 2.x: no subfolding, hash_prefix `_hash`, schema_prefix `_schema`)
    subfolding: tuple[int, ...] | None = None
    hash_prefix: str = "_hash"
    schema_prefix: str = "_schema"
    filepath_prefix: str | None = None
    stage: str | None = None  # 0.14 filepath stores: the local folder files are staged from (not scanned)

    @property
    def legacy_folds(self) -> tuple[int, ...]:
        """0.14's subfolding: (2, 2) unless the store says otherwise (an empty list: none)."""
        return (2, 2) if self.subfolding is None else self.subfolding


# DataJoint's store keys (0.14 and 2.3, every protocol): read, or known and not needed by djtui
DJ_STORE_KEYS = ("protocol", "location", "endpoint", "bucket", "access_key", "secret_key", "secure",
                 "subfolding", "partition_pattern", "token_length", "hash_prefix", "schema_prefix",
                 "filepath_prefix", "stage", "proxy_server", "project_name", "token", "project", "container",
                 "account_name", "account_key", "connection_string")
MANAGED_LAYOUTS = ("auto", "flat", "spyglass_analysis", "relative")


@dataclass(frozen=True)
class ManagedDirectory:
    path: Path
    table: str
    column: str
    # where a row's file lies: flat `<dir>/<file name>`, spyglass_analysis `<dir>/<name up to its last _>/<name>`
    # (or flat, Spyglass's legacy place), relative `<dir>/<the stored relative path>`; auto picks
    # spyglass_analysis for a table named analysis_nwbfile, else relative
    layout: str = "auto"


@dataclass(frozen=True)
class OrphanSettings:
    tables: tuple[str, ...] = ()
    directories: tuple[ManagedDirectory, ...] = ()
    temp_directories: tuple[Path, ...] = ()
    grace_hours: float = 1.0
    min_file_age_hours: float = 1.0
    temp_max_age_days: float = 7.0
    max_share: float = 0.20
    quarantine_dir: Path | None = None
    purge_after_days: float = 7.0


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

    @property
    def label(self) -> str:
        return str(self.path) if self.path else "(no config file)"


# ---------------------------------------------------------------------------
# reading


class _Reader:
    """Typed access to a YAML mapping that remembers key paths and lines."""

    def __init__(self, source: str, lines: dict[tuple[str, ...], int], base_dir: Path):
        self.source = source
        self.lines = lines
        self.base_dir = base_dir
        self.warnings: list[str] = []  # unknown keys in formats djtui does not own (lenient mappings)

    def where(self, path: tuple[str, ...]) -> str:
        key = ".".join(path) if path else "(top level)"
        line = self.lines.get(path)
        while line is None and path:
            path = path[:-1]
            line = self.lines.get(path)
        return f"{self.source}, key `{key}`" + (f" (line {line})" if line else "")

    def fail(self, path: tuple[str, ...], what: str, hint: str | None = None) -> ConfigError:
        return ConfigError(what, where=self.where(path), hint=hint)

    def mapping(self, value: Any, path: tuple[str, ...], allowed: Iterable[str], *, lenient: bool = False) -> dict:
        """``value`` as a mapping whose keys are all ``allowed``.

        An unknown key is an error (exit 2) in djtui's own sections. With ``lenient`` (a format
        djtui does not own, such as the backup manager's ``backup:`` section) it is a warning that
        names the file, the key and its line, and the key is left out of what is returned.
        """
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_kind(value)}")
        allowed = list(allowed)
        unknown = [key for key in value if not isinstance(key, str) or key not in allowed]
        for key in unknown:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean `{near[0]}`?" if near else f"allowed keys: {', '.join(allowed)}"
            if not lenient:
                raise self.fail((*path, str(key)), f"unknown key `{key}`", hint)
            self.warnings.append(f"{self.where((*path, str(key)))}: unknown key `{key}` ignored "
                                 f"(djtui does not use it; {hint})")
        return {k: v for k, v in value.items() if k not in unknown} if unknown else value

    def string(self, m: dict, key: str, path: tuple[str, ...], default: Any = ..., *,
               choices: Iterable[str] | None = None) -> Any:
        if key not in m or m[key] is None:
            if default is ...:
                raise self.fail((*path, key), f"missing required key `{key}`",
                                "add it (see backup_config.example.yaml)")
            return default
        value = m[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.fail((*path, key), f"expected a string, got {_kind(value)}")
        if choices is not None and value not in choices:
            raise self.fail((*path, key), f"{value!r} is not one of: {', '.join(choices)}")
        return value

    def boolean(self, m: dict, key: str, path: tuple[str, ...], default: bool) -> bool:
        value = m.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail((*path, key), f"expected true or false, got {value!r}")
        return value

    def number(self, m: dict, key: str, path: tuple[str, ...], default: Any, *, integer: bool = False,
               minimum: float | None = None, maximum: float | None = None) -> Any:
        value = m.get(key, default)
        if value is None:
            return default
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            raise self.fail((*path, key), f"expected {'a whole number' if integer else 'a number'}, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail((*path, key), f"{value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise self.fail((*path, key), f"{value} is above the maximum {maximum}")
        return value

    def strings(self, m: dict, key: str, path: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
        value = m.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            raise self.fail((*path, key), "expected a list of strings, got a single string",
                            f"write it as a list: {key}: [{value!r}]")
        if not isinstance(value, list):
            raise self.fail((*path, key), f"expected a list of strings, got {_kind(value)}")
        out = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise self.fail((*path, key, str(i)), f"expected a string, got {_kind(item)}")
            out.append(str(item))
        return tuple(out)

    def path(self, m: dict, key: str, path: tuple[str, ...], default: Any = ..., *,
             relative_ok: bool = False) -> Any:
        raw = self.string(m, key, path, default)
        if raw is None:
            return None
        if "\x00" in raw:
            raise self.fail((*path, key), "a path cannot contain a NUL byte")
        p = Path(os.path.expanduser(raw))
        if not p.is_absolute():
            if not relative_ok:
                raise self.fail((*path, key), f"path {raw!r} is relative",
                                "use an absolute path (relative paths change meaning with the working directory)")
            p = self.base_dir / p
        return p

    def secret(self, m: dict, key: str, path: tuple[str, ...]) -> Secret | None:
        value = self.string(m, key, path, None)
        return Secret(value) if value else None

    def items(self, m: dict, key: str, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
        value = m.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail((*path, key), f"expected a list, got {_kind(value)}")
        return [((*path, key, str(i)), item) for i, item in enumerate(value)]


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def _line_map(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path of the document to its 1-based line."""
    lines: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                sub = (*path, str(k.value))
                lines[sub] = k.start_mark.line + 1
                walk(v, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                sub = (*path, str(i))
                lines[sub] = v.start_mark.line + 1
                walk(v, sub)

    if root is not None:
        lines[()] = 1
        walk(root, ())
    return lines


def _check_template(r: _Reader, template: str, path: tuple[str, ...]) -> str:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise r.fail(path, f"path_structure {template!r} is not a valid template: {exc}") from None
    for f in fields:
        if f not in PATH_PLACEHOLDERS:
            raise r.fail(path, f"path_structure has an unknown placeholder {{{f}}}",
                         "use {participant_id} and {session_date} only")
    if "participant_id" not in fields or "session_date" not in fields:
        raise r.fail(path, "path_structure must contain both {participant_id} and {session_date}")
    if template.startswith("/") or ".." in template.split("/"):
        raise r.fail(path, "path_structure must be relative to base_path and cannot contain `..`")
    return template


_TABLE_NAME = re.compile(r"^[^.`\x00\n]+\.[^.`\x00\n]+\Z")


def _table_name(r: _Reader, value: str, path: tuple[str, ...]) -> str:
    if not _TABLE_NAME.match(value):
        raise r.fail(path, f"{value!r} is not a `database.table` name")
    return value


_RSYNC_FLAGS = re.compile(
    r"(-[A-Za-z]+|--[a-z][a-z-]*(=[^\s;&|`$]*)?)(\s+(-[A-Za-z]+|--[a-z][a-z-]*(=[^\s;&|`$]*)?))*")
_RSYNC_KEYS = ["flags", "bandwidth_limit", "timeout"]


def _read_rsync(r: _Reader, raw: Any, path: tuple[str, ...], base: RsyncSettings) -> RsyncSettings:
    """``backup.rsync`` (over the defaults) or a destination's ``rsync:`` (over ``backup.rsync``), key by key."""
    rs = r.mapping(raw, path, _RSYNC_KEYS, lenient=True)
    flags = r.string(rs, "flags", path, base.flags).strip()
    if not _RSYNC_FLAGS.fullmatch(flags):
        raise r.fail((*path, "flags"), f"rsync flags {flags!r} are not a list of options",
                     "write options only, e.g. \"-avh\"; paths and shell syntax are not allowed here")
    bw = r.number(rs, "bandwidth_limit", path, base.bandwidth_limit, minimum=0)
    if bw is not None and 0 < bw < 0.5:
        raise r.fail((*path, "bandwidth_limit"), f"bandwidth_limit {bw} is below rsync's minimum of 0.5 KB/s",
                     "write KB/s (units of 1024 bytes) as rsync's --bwlimit reads them, e.g. 10000; 0 is no limit")
    timeout = r.number(rs, "timeout", path, base.timeout, integer=True, minimum=0)
    return RsyncSettings(flags=flags, bandwidth_limit=bw, timeout=timeout)


def _read_backup(r: _Reader, raw: Any) -> BackupSettings | None:
    """The MultiCameraTracking backup manager's section: a format djtui does not own, so unknown keys
    anywhere in it warn (naming file, key and line) and are ignored; known keys are checked strictly."""
    if raw is None:
        return None
    p = ("backup",)
    m = r.mapping(raw, p, ["destinations", "source", "filters", "rsync", "verification"], lenient=True)
    src_raw = r.mapping(m.get("source"), (*p, "source"), ["base_path", "path_structure"], lenient=True)
    if "source" not in m:
        raise r.fail((*p, "source"), "missing required key `source`", "add backup.source.base_path")
    sp = (*p, "source")
    source = Source(
        base_path=r.path(src_raw, "base_path", sp),
        path_structure=_check_template(
            r, r.string(src_raw, "path_structure", sp, Source.path_structure), (*sp, "path_structure")),
    )
    rp = (*p, "rsync")
    rsync = _read_rsync(r, m.get("rsync"), rp, RsyncSettings())
    dests = []
    seen: set[str] = set()
    for dp, item in r.items(m, "destinations", p):
        d = r.mapping(item, dp, ["name", "mount_point", "base_path", "path_structure", "enabled", "verify_mount",
                                 "rsync"], lenient=True)
        name = r.string(d, "name", dp)
        if not name.strip():
            raise r.fail((*dp, "name"), "a destination name cannot be empty")
        if name in seen:
            raise r.fail((*dp, "name"), f"destination name {name!r} is used twice")
        seen.add(name)
        base = r.path(d, "base_path", dp)
        mount = r.path(d, "mount_point", dp, None)
        if mount is not None and base != mount and mount not in base.parents:
            raise r.fail((*dp, "base_path"), f"base_path {base} is not inside mount_point {mount}")
        dests.append(Destination(
            name=name, mount_point=mount, base_path=base,
            path_structure=_check_template(
                r, r.string(d, "path_structure", dp, Destination.path_structure), (*dp, "path_structure")),
            enabled=r.boolean(d, "enabled", dp, True),
            verify_mount=r.boolean(d, "verify_mount", dp, True),
            rsync=_read_rsync(r, d.get("rsync"), (*dp, "rsync"), rsync),
        ))
    fp = (*p, "filters")
    f = r.mapping(m.get("filters"), fp, ["participant_prefixes", "exclude_patterns"], lenient=True)
    vp = (*p, "verification")
    v = r.mapping(m.get("verification"), vp, ["verify_after_sync", "verify_method"], lenient=True)
    return BackupSettings(
        source=source,
        destinations=tuple(dests),
        filters=Filters(
            participant_prefixes=r.strings(f, "participant_prefixes", fp, ()),
            exclude_patterns=r.strings(f, "exclude_patterns", fp, ()),
        ),
        rsync=rsync,
        verification=Verification(
            verify_after_sync=r.boolean(v, "verify_after_sync", vp, True),
            verify_method=r.string(v, "verify_method", vp, "size", choices=("size", "checksum")),
        ),
    )


def _read_database(r: _Reader, raw: Any) -> DatabaseSettings:
    p = ("database",)
    m = r.mapping(raw, p, ["host", "port", "user", "password", "password_env", "socket",
                          "use_datajoint_config", "connect_timeout", "statement_timeout_s"])
    return DatabaseSettings(
        host=r.string(m, "host", p, None),
        port=r.number(m, "port", p, None, integer=True, minimum=1, maximum=65535),
        user=r.string(m, "user", p, None),
        password=r.secret(m, "password", p),
        password_env=r.string(m, "password_env", p, None),
        socket=r.string(m, "socket", p, None),
        use_datajoint_config=r.boolean(m, "use_datajoint_config", p, True),
        connect_timeout=r.number(m, "connect_timeout", p, 5, integer=True, minimum=1, maximum=600),
        statement_timeout_s=float(r.number(m, "statement_timeout_s", p, 300.0, minimum=1, maximum=86_400)),
    )


def _read_sessions(r: _Reader, raw: Any) -> SessionsSettings:
    p = ("sessions",)
    m = r.mapping(raw, p, ["imported_rule", "sessions_schema", "multicamera_schema", "tables",
                          "participant_id", "sqlite", "video_extensions", "mount_timeout", "checksum_workers"])
    tables = []
    for tp, item in r.items(m, "tables", p):
        t = r.mapping(item, tp, ["table", "participant_column", "date_column"])
        tables.append(ExtraImportTable(
            table=_table_name(r, r.string(t, "table", tp), (*tp, "table")),
            participant_column=r.string(t, "participant_column", tp, "participant_id"),
            date_column=r.string(t, "date_column", tp, "session_date"),
        ))
    pp = (*p, "participant_id")
    pid = r.mapping(m.get("participant_id"), pp, ["strip_prefixes", "numeric_only"])
    sq = (*p, "sqlite")
    sqlite = r.mapping(m.get("sqlite"), sq, ["path"])
    rule = r.string(m, "imported_rule", p, "multicamera", choices=("multicamera", "tables"))
    if rule == "tables" and not tables:
        raise r.fail((*p, "tables"), "imported_rule is `tables` but no tables are listed",
                     "list the tables that must hold a session, or use imported_rule: multicamera")
    exts = r.strings(m, "video_extensions", p, (".mp4",))
    return SessionsSettings(
        imported_rule=rule,
        sessions_schema=r.string(m, "sessions_schema", p, "mocap_sessions"),
        multicamera_schema=r.string(m, "multicamera_schema", p, "multicamera_tracking"),
        tables=tuple(tables),
        participant_id=ParticipantIdRule(
            strip_prefixes=r.strings(pid, "strip_prefixes", pp, ("p", "t")),
            numeric_only=r.boolean(pid, "numeric_only", pp, True),
        ),
        sqlite_path=r.path(sqlite, "path", sq, None),
        video_extensions=tuple(e if e.startswith(".") else "." + e for e in exts),
        mount_timeout=r.number(m, "mount_timeout", p, 5.0, minimum=0.1, maximum=600),
        checksum_workers=r.number(m, "checksum_workers", p, 4, integer=True, minimum=1, maximum=64),
    )


def _store_folds(value: Any) -> tuple[int, ...] | str | None:
    """DataJoint's ``subfolding``: a list of positive whole numbers (empty or null: none); a str is an error."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or any(isinstance(n, bool) or not isinstance(n, int) or n < 1
                                                   for n in value):
        return f"expected a list of positive whole numbers such as [2, 2], got {value!r}"
    return tuple(value)


def _store_prefix(value: Any, default: str | None) -> str | None:
    if value is None:
        return default
    return str(value).strip("/")


def _read_stores(r: _Reader, raw: Any) -> tuple[StoreSettings, ...]:
    p = ("stores",)
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise r.fail(p, f"expected a mapping of store names, got {_kind(raw)}")
    out = []
    for name, item in raw.items():
        sp = (*p, str(name))
        # a copy of the lab's DataJoint store settings loads unchanged: DataJoint's keys are known, a key
        # neither DataJoint 0.14/2.3 nor djtui has (a later DataJoint's) is a warning that names it
        s = r.mapping(item, sp, DJ_STORE_KEYS, lenient=True)
        protocol = r.string(s, "protocol", sp, choices=("file", "s3"))
        location = r.string(s, "location", sp)
        if protocol == "file" and not Path(location).is_absolute():
            raise r.fail((*sp, "location"), f"store location {location!r} is relative", "use an absolute path")
        if protocol == "s3":
            for needed in ("endpoint", "bucket"):
                if not s.get(needed):
                    raise r.fail((*sp, needed), f"an s3 store needs `{needed}`")
        folds = _store_folds(s.get("subfolding"))
        if isinstance(folds, str):
            raise r.fail((*sp, "subfolding"), folds)
        for key in ("hash_prefix", "schema_prefix", "filepath_prefix", "stage"):
            r.string(s, key, sp, None)
        out.append(StoreSettings(
            name=str(name), protocol=protocol, location=location,
            endpoint=r.string(s, "endpoint", sp, None), bucket=r.string(s, "bucket", sp, None),
            access_key=r.secret(s, "access_key", sp), secret_key=r.secret(s, "secret_key", sp),
            secure=r.boolean(s, "secure", sp, False), subfolding=folds,
            hash_prefix=_store_prefix(s.get("hash_prefix"), "_hash") or "",
            schema_prefix=_store_prefix(s.get("schema_prefix"), "_schema") or "",
            filepath_prefix=_store_prefix(s.get("filepath_prefix"), None),
            stage=r.string(s, "stage", sp, None),
        ))
    return tuple(out)


def _read_orphans(r: _Reader, raw: Any) -> OrphanSettings:
    p = ("orphans",)
    m = r.mapping(raw, p, ["tables", "directories", "temp_directories", "grace_hours", "min_file_age_hours",
                          "temp_max_age_days", "max_share", "quarantine_dir", "purge_after_days"])
    tables = tuple(_table_name(r, t, (*p, "tables", str(i)))
                   for i, t in enumerate(r.strings(m, "tables", p, ())))
    dirs = []
    for dp, item in r.items(m, "directories", p):
        d = r.mapping(item, dp, ["path", "table", "column", "layout"])
        dirs.append(ManagedDirectory(
            path=r.path(d, "path", dp),
            table=_table_name(r, r.string(d, "table", dp), (*dp, "table")),
            column=r.string(d, "column", dp),
            layout=r.string(d, "layout", dp, "auto", choices=MANAGED_LAYOUTS),
        ))
    temps = tuple(r.path({"p": t}, "p", (*p, "temp_directories", str(i)))
                  for i, t in enumerate(r.strings(m, "temp_directories", p, ())))
    return OrphanSettings(
        tables=tables, directories=tuple(dirs), temp_directories=temps,
        grace_hours=r.number(m, "grace_hours", p, 1.0, minimum=0),
        min_file_age_hours=r.number(m, "min_file_age_hours", p, 1.0, minimum=0),
        temp_max_age_days=r.number(m, "temp_max_age_days", p, 7.0, minimum=0),
        max_share=r.number(m, "max_share", p, 0.20, minimum=0, maximum=1),
        quarantine_dir=r.path(m, "quarantine_dir", p, None),
        purge_after_days=r.number(m, "purge_after_days", p, 7.0, minimum=0),
    )


def _read_export(r: _Reader, raw: Any) -> ExportSettings:
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


def _read_accounts(r: _Reader, raw: Any) -> AccountSettings:
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


def _read_dbbackup(r: _Reader, raw: Any) -> DbBackupSettings:
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


def _read_maintenance(r: _Reader, raw: Any) -> MaintenanceSettings:
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


_SECTIONS: dict[str, Callable[[_Reader, Any], Any]] = {
    "backup": _read_backup,
    "database": _read_database,
    "sessions": _read_sessions,
    "stores": _read_stores,
    "orphans": _read_orphans,
    "export": _read_export,
    "accounts": _read_accounts,
    "dbbackup": _read_dbbackup,
    "maintenance": _read_maintenance,
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
    r = _Reader(source, _line_map(text), base_dir or Path.cwd())
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


def _dj_json(path: Path) -> dict[str, Any]:
    import json
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read DataJoint config: {exc}", where=str(path),
                          hint="fix the JSON, or set database.use_datajoint_config: false") from None
    return data if isinstance(data, dict) else {}


def _dj_store_specs(data: dict[str, Any], specs: dict[str, dict[str, Any]], label: str) -> None:
    """Both layouts: a nested ``stores`` dict (0.14 and 2.x) and flat ``stores.<name>.<attr>`` keys (2.x)."""
    nested = data.get("stores")
    if isinstance(nested, dict):
        for name, spec in nested.items():
            if isinstance(spec, dict):  # 2.x also keeps `default: "main"` strings here
                specs.setdefault(str(name), {}).update(spec, _from=label)
    for key, value in data.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "stores":
            specs.setdefault(parts[1], {}).update({parts[2]: value, "_from": label})


def datajoint_stores(*, cwd: Path | None = None, home: Path | None = None,
                     env: dict[str, str] | None = None) -> tuple[tuple[StoreSettings, ...], tuple[str, ...]]:
    """The stores a lab's DataJoint config defines, so djtui scans what DataJoint writes without retyping it.

    Read in DataJoint's order (lowest first): ``~/.datajoint_config.json``, ``./dj_local_conf.json``
    (0.14), ``datajoint.json`` found upward with ``.secrets/stores.<name>.<attr>`` files, and the
    ``DJ_STORES`` variable (2.3). Stores djtui cannot scan (gcs, azure, plugins) are skipped with a warning.
    """
    import json
    cwd = cwd or Path.cwd()
    home = home or Path(os.path.expanduser("~"))
    env = dict(os.environ if env is None else env)
    specs: dict[str, dict[str, Any]] = {}
    for path in (home / ".datajoint_config.json", cwd / "dj_local_conf.json"):
        _dj_store_specs(_dj_json(path), specs, str(path))
    dj_json = None
    current = cwd.resolve()
    while dj_json is None:  # upward to the repository root, as DataJoint 2.x looks for it
        if (current / "datajoint.json").is_file():
            dj_json = current / "datajoint.json"
        elif (current / ".git").exists() or current == current.parent:
            break
        current = current.parent
    if dj_json is not None:
        two = _dj_json(dj_json)
        _dj_store_specs(two, specs, str(dj_json))
        for spec in specs.values():
            if spec["_from"] == str(dj_json):
                spec.setdefault("_v2", True)
        secrets = dj_json.parent / ".secrets"
        if secrets.is_dir():
            for f in sorted(secrets.iterdir()):
                parts = f.name.split(".")
                if len(parts) == 3 and parts[0] == "stores" and f.is_file():
                    spec = specs.setdefault(parts[1], {"_from": str(dj_json), "_v2": True})
                    spec.setdefault(parts[2], f.read_text(encoding="utf-8").strip())
    if env.get("DJ_STORES"):
        try:
            raw = json.loads(env["DJ_STORES"])
        except ValueError as exc:
            raise ConfigError(f"DJ_STORES is not JSON: {exc}", where="$DJ_STORES") from None
        specs = {}
        _dj_store_specs({"stores": raw if isinstance(raw, dict) else {}}, specs, "$DJ_STORES")
        for spec in specs.values():
            spec["_v2"] = True
    out, warnings = [], []
    for name, spec in specs.items():
        protocol = str(spec.get("protocol", "")).lower()
        where = f"{spec['_from']}: stores.{name}"
        location = spec.get("location")
        unknown = sorted(k for k in spec if k not in DJ_STORE_KEYS and k not in ("_from", "_v2"))
        if unknown:
            warnings.append(f"{where}: unknown key(s) {', '.join(f'`{k}`' for k in unknown)} ignored "
                            "(neither DataJoint 0.14/2.3 nor djtui reads them)")
        folds = _store_folds(spec.get("subfolding"))
        if isinstance(folds, str):
            warnings.append(f"{where}: subfolding: {folds}; store skipped")
            continue
        if protocol not in ("file", "s3"):
            warnings.append(f"{where}: protocol {protocol or '(none)'!r} is not scanned by djtui (file and s3 are)")
            continue
        if not isinstance(location, str) or (protocol == "file" and not Path(location).is_absolute()):
            warnings.append(f"{where}: location {location!r} is not an absolute path; store skipped")
            continue
        if protocol == "s3" and not (spec.get("endpoint") and spec.get("bucket")):
            warnings.append(f"{where}: an s3 store needs endpoint and bucket; store skipped")
            continue
        ak, sk = spec.get("access_key"), spec.get("secret_key")
        out.append(StoreSettings(
            name=name, protocol=protocol, location=location,
            endpoint=str(spec["endpoint"]) if spec.get("endpoint") else None,
            bucket=str(spec["bucket"]) if spec.get("bucket") else None,
            access_key=Secret(str(ak)) if ak else None, secret_key=Secret(str(sk)) if sk else None,
            # 2.x defaults to HTTPS for s3; 0.14 to plain HTTP
            secure=bool(spec.get("secure", spec.get("_v2", False))), subfolding=folds,
            hash_prefix=_store_prefix(spec.get("hash_prefix"), "_hash") or "",
            schema_prefix=_store_prefix(spec.get("schema_prefix"), "_schema") or "",
            filepath_prefix=_store_prefix(spec.get("filepath_prefix"), None),
            stage=str(spec["stage"]) if spec.get("stage") else None,
        ))
    return tuple(out), tuple(warnings)


def with_datajoint_stores(cfg: Config, **where: Any) -> Config:
    """``cfg`` plus the DataJoint config's stores; a store of the same name in djtui's file wins."""
    if not cfg.database.use_datajoint_config:
        return cfg
    found, warnings = datajoint_stores(**where)
    mine = {s.name for s in cfg.stores}
    extra = tuple(s for s in found if s.name not in mine)
    if not extra and not warnings:
        return cfg
    from dataclasses import replace
    return replace(cfg, stores=(*cfg.stores, *extra), warnings=(*cfg.warnings, *warnings))


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
    return cfg
