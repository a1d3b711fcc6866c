"""The ``stores:`` and ``orphans:`` sections, and the stores a lab's DataJoint config already defines.

A copy of the lab's DataJoint store settings loads unchanged: DataJoint's own keys are known, and a
key neither DataJoint 0.14/2.3 nor djtui has is a warning that names it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from djtui.config.reader import Reader, Secret, kind, table_name
from djtui.errors import ConfigError


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


def store_folds(value: Any) -> tuple[int, ...] | str | None:
    """DataJoint's ``subfolding``: a list of positive whole numbers (empty or null: none); a str is an error."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or any(isinstance(n, bool) or not isinstance(n, int) or n < 1
                                                   for n in value):
        return f"expected a list of positive whole numbers such as [2, 2], got {value!r}"
    return tuple(value)


def store_prefix(value: Any, default: str | None) -> str | None:
    if value is None:
        return default
    return str(value).strip("/")


def read_stores(r: Reader, raw: Any) -> tuple[StoreSettings, ...]:
    p = ("stores",)
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise r.fail(p, f"expected a mapping of store names, got {kind(raw)}")
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
        folds = store_folds(s.get("subfolding"))
        if isinstance(folds, str):
            raise r.fail((*sp, "subfolding"), folds)
        for key in ("hash_prefix", "schema_prefix", "filepath_prefix", "stage"):
            r.string(s, key, sp, None)
        out.append(StoreSettings(
            name=str(name), protocol=protocol, location=location,
            endpoint=r.string(s, "endpoint", sp, None), bucket=r.string(s, "bucket", sp, None),
            access_key=r.secret(s, "access_key", sp), secret_key=r.secret(s, "secret_key", sp),
            secure=r.boolean(s, "secure", sp, False), subfolding=folds,
            hash_prefix=store_prefix(s.get("hash_prefix"), "_hash") or "",
            schema_prefix=store_prefix(s.get("schema_prefix"), "_schema") or "",
            filepath_prefix=store_prefix(s.get("filepath_prefix"), None),
            stage=r.string(s, "stage", sp, None),
        ))
    return tuple(out)


def read_orphans(r: Reader, raw: Any) -> OrphanSettings:
    p = ("orphans",)
    m = r.mapping(raw, p, ["tables", "directories", "temp_directories", "grace_hours", "min_file_age_hours",
                          "temp_max_age_days", "max_share", "quarantine_dir", "purge_after_days"])
    tables = tuple(table_name(r, t, (*p, "tables", str(i)))
                   for i, t in enumerate(r.strings(m, "tables", p, ())))
    dirs = []
    for dp, item in r.items(m, "directories", p):
        d = r.mapping(item, dp, ["path", "table", "column", "layout"])
        dirs.append(ManagedDirectory(
            path=r.path(d, "path", dp),
            table=table_name(r, r.string(d, "table", dp), (*dp, "table")),
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


def _dj_json(path: Path) -> dict[str, Any]:
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


def _find_datajoint_json(cwd: Path) -> Path | None:
    """``datajoint.json`` upward to the repository root, as DataJoint 2.x looks for it."""
    current = cwd.resolve()
    while True:
        if (current / "datajoint.json").is_file():
            return current / "datajoint.json"
        if (current / ".git").exists() or current == current.parent:
            return None
        current = current.parent


def _datajoint_specs(cwd: Path, home: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every store spec the DataJoint config files and variables hold, later sources over earlier ones."""
    specs: dict[str, dict[str, Any]] = {}
    for path in (home / ".datajoint_config.json", cwd / "dj_local_conf.json"):
        _dj_store_specs(_dj_json(path), specs, str(path))
    dj_json = _find_datajoint_json(cwd)
    if dj_json is not None:
        _dj_store_specs(_dj_json(dj_json), specs, str(dj_json))
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
    return specs


def _spec_store(name: str, spec: dict[str, Any], warnings: list[str]) -> StoreSettings | None:
    """One DataJoint store spec as djtui's store, or None (and a warning saying why) when djtui cannot scan it."""
    protocol = str(spec.get("protocol", "")).lower()
    where = f"{spec['_from']}: stores.{name}"
    location = spec.get("location")
    unknown = sorted(k for k in spec if k not in DJ_STORE_KEYS and k not in ("_from", "_v2"))
    if unknown:
        warnings.append(f"{where}: unknown key(s) {', '.join(f'`{k}`' for k in unknown)} ignored "
                        "(neither DataJoint 0.14/2.3 nor djtui reads them)")
    folds = store_folds(spec.get("subfolding"))
    if isinstance(folds, str):
        warnings.append(f"{where}: subfolding: {folds}; store skipped")
        return None
    if protocol not in ("file", "s3"):
        warnings.append(f"{where}: protocol {protocol or '(none)'!r} is not scanned by djtui (file and s3 are)")
        return None
    if not isinstance(location, str) or (protocol == "file" and not Path(location).is_absolute()):
        warnings.append(f"{where}: location {location!r} is not an absolute path; store skipped")
        return None
    if protocol == "s3" and not (spec.get("endpoint") and spec.get("bucket")):
        warnings.append(f"{where}: an s3 store needs endpoint and bucket; store skipped")
        return None
    ak, sk = spec.get("access_key"), spec.get("secret_key")
    return StoreSettings(
        name=name, protocol=protocol, location=location,
        endpoint=str(spec["endpoint"]) if spec.get("endpoint") else None,
        bucket=str(spec["bucket"]) if spec.get("bucket") else None,
        access_key=Secret(str(ak)) if ak else None, secret_key=Secret(str(sk)) if sk else None,
        # 2.x defaults to HTTPS for s3; 0.14 to plain HTTP
        secure=bool(spec.get("secure", spec.get("_v2", False))), subfolding=folds,
        hash_prefix=store_prefix(spec.get("hash_prefix"), "_hash") or "",
        schema_prefix=store_prefix(spec.get("schema_prefix"), "_schema") or "",
        filepath_prefix=store_prefix(spec.get("filepath_prefix"), None),
        stage=str(spec["stage"]) if spec.get("stage") else None,
    )


def datajoint_stores(*, cwd: Path | None = None, home: Path | None = None,
                     env: dict[str, str] | None = None) -> tuple[tuple[StoreSettings, ...], tuple[str, ...]]:
    """The stores a lab's DataJoint config defines, so djtui scans what DataJoint writes without retyping it.

    Read in DataJoint's order (lowest first): ``~/.datajoint_config.json``, ``./dj_local_conf.json``
    (0.14), ``datajoint.json`` found upward with ``.secrets/stores.<name>.<attr>`` files, and the
    ``DJ_STORES`` variable (2.3). Stores djtui cannot scan (gcs, azure, plugins) are skipped with a warning.
    """
    specs = _datajoint_specs(cwd or Path.cwd(), home or Path(os.path.expanduser("~")),
                             dict(os.environ if env is None else env))
    warnings: list[str] = []
    stores = [_spec_store(name, spec, warnings) for name, spec in specs.items()]
    return tuple(s for s in stores if s is not None), tuple(warnings)
