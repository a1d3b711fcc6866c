"""The ``backup:`` section: the MultiCameraTracking backup manager's ``backup_config.yaml`` format.

djtui does not own this format, so unknown keys in it warn (file, key, line) and are ignored;
the keys djtui reads are checked strictly.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djtui.config.reader import Reader
from djtui.errors import ConfigError

PATH_PLACEHOLDERS = frozenset({"participant_id", "session_date"})


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


def check_template(r: Reader, template: str, path: tuple[str, ...]) -> str:
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


_RSYNC_FLAGS = re.compile(
    r"(-[A-Za-z]+|--[a-z][a-z-]*(=[^\s;&|`$]*)?)(\s+(-[A-Za-z]+|--[a-z][a-z-]*(=[^\s;&|`$]*)?))*")
_RSYNC_KEYS = ["flags", "bandwidth_limit", "timeout"]


def read_rsync(r: Reader, raw: Any, path: tuple[str, ...], base: RsyncSettings) -> RsyncSettings:
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


def read_backup(r: Reader, raw: Any) -> BackupSettings | None:
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
        path_structure=check_template(
            r, r.string(src_raw, "path_structure", sp, Source.path_structure), (*sp, "path_structure")),
    )
    rp = (*p, "rsync")
    rsync = read_rsync(r, m.get("rsync"), rp, RsyncSettings())
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
            path_structure=check_template(
                r, r.string(d, "path_structure", dp, Destination.path_structure), (*dp, "path_structure")),
            enabled=r.boolean(d, "enabled", dp, True),
            verify_mount=r.boolean(d, "verify_mount", dp, True),
            rsync=read_rsync(r, d.get("rsync"), (*dp, "rsync"), rsync),
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


