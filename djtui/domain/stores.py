"""Where DataJoint keeps external objects, and which of them are orphans.

Pure rules, no I/O. DataJoint 0.14 names an object by the ``hash`` uuid of its
``~external_<store>`` row; DataJoint 2.x names it by a content hash inside a JSON
column. Getting these layouts exactly right is what keeps a cleaner from calling
live data an orphan, so they live here, tested on their own.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# reasons, exactly as the CLI's JSON reports them
UNUSED_ROW = "unused-row"
UNTRACKED_OBJECT = "untracked-object"
MISSING_OBJECT = "missing-object"
ZERO_BYTE = "zero-byte"
ORPHAN_ROW = "orphan-row"
UNTRACKED_FILE = "untracked-file"
STALE_TEMP = "stale-temp"
REASONS = (UNUSED_ROW, UNTRACKED_OBJECT, MISSING_OBJECT, ZERO_BYTE, ORPHAN_ROW, UNTRACKED_FILE, STALE_TEMP)
# what acting on an item means: rows are deleted (in a transaction, after a re-check),
# files and objects are moved into the quarantine (restorable)
ROW_REASONS = frozenset({ORPHAN_ROW, UNUSED_ROW, MISSING_OBJECT})
FILE_REASONS = frozenset({UNTRACKED_OBJECT, UNTRACKED_FILE, STALE_TEMP, ZERO_BYTE})
ACTIONABLE = ROW_REASONS | FILE_REASONS

DEFAULT_SUBFOLDING = (2, 2)
_HEX32 = re.compile(r"^[0-9a-f]{32}\Z")


def join(*parts: str) -> str:
    """A store-relative posix path, without empty or leading/trailing slashes."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def subfold(name: str, folds: tuple[int, ...] = DEFAULT_SUBFOLDING) -> list[str]:
    """DataJoint's subfolders: the first ``folds[0]`` characters, then the next ``folds[1]``..."""
    out, pos = [], 0
    for n in folds:
        out.append(name[pos:pos + n])
        pos += n
    return out


def _hex(h: uuid.UUID | str | bytes) -> str:
    if isinstance(h, uuid.UUID):
        return h.hex
    if isinstance(h, bytes):
        return uuid.UUID(bytes=h).hex if len(h) == 16 else uuid.UUID(h.decode()).hex
    return uuid.UUID(str(h)).hex


def uuid_text(x: str) -> str:
    """``str(uuid.UUID(x))`` for 32 lowercase hex characters, without building a UUID (a scan makes many)."""
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def legacy_blob_path(db: str, h: uuid.UUID | str | bytes, folds: tuple[int, ...] = DEFAULT_SUBFOLDING) -> str:
    """0.14 blob: ``<db>/<hex[0:2]>/<hex[2:4]>/<32 hex>`` relative to the store location."""
    x = h if isinstance(h, str) and _HEX32.match(h) else _hex(h)
    if folds == DEFAULT_SUBFOLDING:
        return f"{db}/{x[:2]}/{x[2:4]}/{x}"  # the common case, without the general join
    return join(db, *subfold(x, folds), x)


def legacy_attach_path(db: str, h: uuid.UUID | str | bytes, attachment_name: str,
                       folds: tuple[int, ...] = DEFAULT_SUBFOLDING) -> str:
    """0.14 attachment: the blob path plus ``.<attachment_name>``."""
    return legacy_blob_path(db, h, folds) + "." + attachment_name


def legacy_object_path(db: str, h: uuid.UUID | str | bytes, attachment_name: str | None,
                       filepath: str | None, folds: tuple[int, ...] = DEFAULT_SUBFOLDING) -> str:
    """The object a ``~external_<store>`` row names: filepath rows point at ``<filepath>``."""
    if filepath:
        return join(filepath)
    if attachment_name:
        return legacy_attach_path(db, h, attachment_name, folds)
    return legacy_blob_path(db, h, folds)


def schema_prefix(db: str) -> str:
    """The listing prefix of one schema. The trailing slash is the point: ``a/`` never lists ``a_v2/``."""
    return db.strip("/") + "/"


def belongs_to_schema(rel_path: str, db: str) -> bool:
    return rel_path.startswith(schema_prefix(db))


def legacy_hash_of(rel_path: str, db: str) -> str | None:
    """The 32-hex hash a 0.14 blob/attachment path carries, or None when it is not such a path."""
    if not belongs_to_schema(rel_path, db):
        return None
    name = rel_path.rsplit("/", 1)[-1]
    head = name[:32]
    if _HEX32.match(head) and (len(name) == 32 or name[32] == "."):
        return head
    return None


# --- DataJoint 2.x --------------------------------------------------------------

HASH_PREFIX = "_hash"
SCHEMA_PREFIX = "_schema"


def content_hash(data: bytes) -> str:
    """2.x content hash: the MD5 digest in lowercase base32 without padding (26 characters)."""
    return base64.b32encode(hashlib.md5(data).digest()).decode().rstrip("=").lower()


def hash_path(schema: str, h: str, *, prefix: str = HASH_PREFIX, folds: tuple[int, ...] = ()) -> str:
    """2.x hash-addressed object: ``{hash_prefix}/{schema}/[subfolds/]{hash}``."""
    return join(prefix, schema, *subfold(h, folds), h)


def schema_path(schema: str, table: str, pk_part: str, *rest: str, prefix: str = SCHEMA_PREFIX) -> str:
    """2.x schema-addressed object: ``{schema_prefix}/{schema}/{table}/{pk}/...``."""
    return join(prefix, schema, table, pk_part, *rest)


def referenced_paths_2x(values: Iterable[Any], store: str) -> set[str]:
    """The object paths named by stored-column JSON values (dicts) of one store."""
    out: set[str] = set()
    for v in values:
        if isinstance(v, Mapping) and v.get("path") and (v.get("store") in (None, store)):
            out.add(join(str(v["path"])))
    return out


# what DataJoint 2.3 writes beside an object (storage.py put_folder/_put_folder): `<path>.manifest.json`
# for a folder object; it belongs to `<path>` (live with it, an orphan with it). The store's
# `datajoint_store.json` lies at the location's root, outside every scanned section.
SIDECAR_SUFFIXES = (".manifest.json",)
STORE_METADATA_FILE = "datajoint_store.json"


def owner_2x(rel_path: str) -> str:
    """The object a stored file belongs to: itself, or for a sidecar the object it sits beside."""
    for suffix in SIDECAR_SUFFIXES:
        if rel_path.endswith(suffix) and len(rel_path) > len(suffix):
            return rel_path[: -len(suffix)]
    return rel_path


def is_referenced_2x(rel_path: str, referenced: set[str]) -> bool:
    """A path is live when named, when it lies inside a named folder (``<object@>`` stores folders),
    or when it is the sidecar (``<path>.manifest.json``) of a named object, as DataJoint's GC counts it."""
    if rel_path in referenced:
        return True
    rel_path = owner_2x(rel_path)
    if rel_path in referenced:
        return True
    parts = rel_path.split("/")
    return any("/".join(parts[:i]) in referenced for i in range(1, len(parts)))


# --- set arithmetic -------------------------------------------------------------


class StoredObject(NamedTuple):
    """One object or file as listed: store-relative path, size, modification time (epoch s).

    A NamedTuple, not a dataclass: a store lists millions of these and creation cost counts.
    """

    path: str
    size: int
    mtime: float


@dataclass(frozen=True)
class OrphanItem:
    """One thing a source calls an orphan, and why."""

    source: str
    reason: str
    path: str | None = None  # store-/directory-relative path
    key: Mapping[str, Any] | None = None  # a row's primary key
    size: int = 0
    mtime: float | None = None
    detail: str | None = None  # why, when the reason alone would mislead (a tracked name in the wrong place)

    @property
    def ident(self) -> str:
        if self.path is not None:
            return self.path
        return ",".join(f"{k}={v}" for k, v in (self.key or {}).items())

    @property
    def ref(self) -> str:
        """Reason and ident: one path can be two items (an unused row whose object is empty)."""
        return f"{self.reason}:{self.ident}"

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"size": self.size, "reason": self.reason}
        if self.path is not None:
            d["path"] = self.path
        else:
            d["key"] = {k: str(v) if not isinstance(v, (int, float, str)) else v for k, v in (self.key or {}).items()}
        if self.detail:
            d["detail"] = self.detail
        return d


class ExternalRow(NamedTuple):
    """The part of a ``~external_<store>`` row that names its object."""

    hash: str  # 32 lowercase hex
    attachment_name: str | None = None
    filepath: str | None = None


@dataclass(frozen=True)
class LegacyStoreFindings:
    items: tuple[OrphanItem, ...]
    rows: int
    objects: int


def legacy_store_orphans(source: str, db: str, rows: Iterable[ExternalRow], unused: Mapping[str, int],
                         objects: Mapping[str, StoredObject], *, now: float, grace_s: float,
                         folds: tuple[int, ...] = DEFAULT_SUBFOLDING,
                         extra_present: Mapping[str, StoredObject] | None = None,
                         sizes: Mapping[str, int] | None = None) -> LegacyStoreFindings:
    """All four kinds of 0.14 orphans of one schema's external table on one store.

    ``unused`` maps the hashes of rows no table references to their sizes; ``objects`` is
    the listing under ``<db>/`` (keys store-relative); ``extra_present`` holds filepath
    objects that lie elsewhere in the store; ``sizes`` gives recorded sizes of rows
    (for missing objects). Objects younger than ``grace_s`` are never untracked:
    DataJoint writes the object before its row.
    """
    items: list[OrphanItem] = []
    expected: set[str] = set()
    extra = extra_present or {}
    sizes = sizes or {}
    nrows = 0
    for h, att, fp in rows:
        nrows += 1
        path = legacy_object_path(db, h, att, fp, folds)
        expected.add(path)
        if h in unused:
            items.append(OrphanItem(source, UNUSED_ROW, path=path, key={"hash": str(uuid.UUID(h))}, size=unused[h]))
        obj = objects.get(path) or extra.get(path)
        if obj is None:
            items.append(OrphanItem(source, MISSING_OBJECT, path=path, key={"hash": str(uuid.UUID(h))},
                                    size=sizes.get(h, 0)))
        elif obj.size == 0 and now - obj.mtime >= grace_s:  # a file being written is empty for a moment
            items.append(OrphanItem(source, ZERO_BYTE, path=path, size=0, mtime=obj.mtime))
    for path, obj in objects.items():
        if path in expected or now - obj.mtime < grace_s:
            continue
        items.append(OrphanItem(source, UNTRACKED_OBJECT, path=path, size=obj.size, mtime=obj.mtime))
    return LegacyStoreFindings(tuple(items), nrows, len(objects))


@dataclass
class LegacyListing:
    """One schema's objects in a compact form: a million blobs must not cost a million path strings.

    ``blob_names`` holds the 32-character names found at their canonical place
    ``<db>/<n[0:2]>/<n[2:4]>/<n>`` (with the default subfolding); every other file under
    ``<db>/`` (attachments, strays) is in ``others`` by store-relative path. ``zero`` holds the
    paths of empty files of either kind. ``details`` may carry size and mtime where the listing
    had them for free (S3); the rest is looked up only for the few candidates that need it.
    """

    blob_names: set[str] = field(default_factory=set)
    others: dict[str, StoredObject | None] = field(default_factory=dict)
    zero: set[str] = field(default_factory=set)
    details: dict[str, StoredObject] = field(default_factory=dict)
    count: int = 0

    def add(self, db: str, obj: StoredObject, folds: tuple[int, ...] = DEFAULT_SUBFOLDING) -> None:
        """Add one listed object (S3 and other listings that come with size and mtime)."""
        self.count += 1
        path = obj.path
        name = path.rsplit("/", 1)[-1]
        if len(name) == 32 and _HEX32.match(name) and path == legacy_blob_path(db, name, folds):
            self.blob_names.add(name)
        else:
            self.others[path] = obj
        self.details[path] = obj
        if obj.size == 0:
            self.zero.add(path)


@dataclass(frozen=True)
class LegacyCandidates:
    """What set arithmetic alone decides; ages (grace) are checked on these few paths afterwards."""

    untracked: tuple[str, ...]  # listed paths no row names
    missing: tuple[tuple[str, str], ...]  # (hash, path) of rows whose object is not listed
    zero: tuple[str, ...]  # listed, named by a row, and empty
    rows: int


def legacy_candidates(db: str, blob_rows: set[str], other_rows: Iterable[ExternalRow], listing: LegacyListing,
                      *, extra_present: Mapping[str, StoredObject] | None = None,
                      folds: tuple[int, ...] = DEFAULT_SUBFOLDING) -> LegacyCandidates:
    """The set arithmetic of :func:`legacy_store_orphans` on compact keys (same answer, tested so).

    ``blob_rows`` are the 32-hex hashes of rows with neither attachment name nor filepath;
    ``folds`` is the store's ``subfolding`` (the listing must have been made with the same).
    The blob sides are two sets here; :func:`merged_candidates` decides the rest.
    """
    return merged_candidates(db, listing.blob_names - blob_rows, blob_rows - listing.blob_names, len(blob_rows),
                             other_rows, listing, extra_present=extra_present, folds=folds)


def merged_candidates(db: str, only_listed: Iterable[str], only_rows: Iterable[str], blob_rows: int,
                      other_rows: Iterable[ExternalRow], listing: LegacyListing, *,
                      extra_present: Mapping[str, StoredObject] | None = None,
                      folds: tuple[int, ...] = DEFAULT_SUBFOLDING) -> LegacyCandidates:
    """The 0.14 candidate rule, given the blob difference: names listed but no row, hashes with a row but no object.

    The streamed scan finds that difference by merging two sorted streams
    (:func:`djtui.domain.setdiff.sorted_difference`), so the blob names and blob-row hashes are never
    held; ``blob_rows`` is how many blob rows were compared. ``listing`` holds the store's other files
    (attachments, filepath objects, strays: the few, compared as sets), the empty files and the count.
    """
    extra = extra_present or {}
    untracked_names = set(only_listed)
    untracked = [legacy_blob_path(db, n, folds) for n in sorted(untracked_names)]
    missing = [(h, legacy_blob_path(db, h, folds)) for h in only_rows]
    expected_other: set[str] = set()
    nrows = blob_rows
    for h, att, fp in other_rows:
        nrows += 1
        path = legacy_object_path(db, h, att, fp, folds)
        expected_other.add(path)
        if path not in listing.others and path not in extra:
            missing.append((h, path))
    untracked += [p for p in listing.others if p not in expected_other]
    # an empty listed blob is named by a row unless it is on the listed side alone
    zero = [p for p in listing.zero if p in expected_other or (
        p not in listing.others and p.rsplit("/", 1)[-1] not in untracked_names)]
    zero += [p for p, o in extra.items() if o.size == 0]
    return LegacyCandidates(tuple(untracked), tuple(missing), tuple(zero), nrows)


def store_2x_orphans(source: str, objects: Mapping[str, StoredObject], referenced: set[str], *,
                     now: float, grace_s: float) -> list[OrphanItem]:
    """2.x objects under ``_hash/`` or ``_schema/`` named by no JSON column (past the grace age)."""
    out = []
    for path, obj in objects.items():
        if now - obj.mtime < grace_s or is_referenced_2x(path, referenced):
            continue
        out.append(OrphanItem(source, UNTRACKED_OBJECT, path=path, size=obj.size, mtime=obj.mtime))
    return out


FLAT, SPYGLASS_ANALYSIS, RELATIVE = "flat", "spyglass_analysis", "relative"


def spyglass_analysis_dir(name: str) -> str:
    """Spyglass 0.6's subfolder of an analysis file: its name up to the last ``_`` (``a_B.nwb`` -> ``a``).

    As Spyglass computes it (``fname[0:fname.rfind("_")]``), also for a name without ``_``.
    """
    return name[: name.rfind("_")]


def layout_paths(value: str, layout: str) -> tuple[str, ...]:
    """The directory-relative places a row's value says its file lies at, first the one it belongs at.

    ``flat``: ``<file name>``; ``spyglass_analysis``: ``<name up to its last _>/<name>``, or flat (Spyglass's
    legacy place, found first by ``AnalysisNwbfile.get_abs_path``); ``relative``: the value as a path.
    """
    name = value.rsplit("/", 1)[-1]
    if layout == FLAT:
        return (name,)
    if layout == SPYGLASS_ANALYSIS:
        if "/" in value:  # a stored relative path (filepath@analysis) names its place itself
            return (value,)
        return (join(spyglass_analysis_dir(name), name), name)
    return (value,)


@dataclass
class TrackedFiles:
    """The paths rows of managed tables give their files, and by name, which table and place."""

    paths: set[str] = field(default_factory=set)
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # file name -> (table, where it belongs)

    def add(self, value: str, layout: str, table: str, *, exact: str | None = None) -> None:
        """A row's file; ``exact`` is the one path the row names itself (a ``filepath@`` column's
        ``~external`` row), which wins over the places the layout allows."""
        places = (exact,) if exact else layout_paths(value, layout)
        self.paths.update(places)
        self.names.setdefault(places[0].rsplit("/", 1)[-1], (table, places[0]))

    def why_untracked(self, rel_path: str) -> str | None:
        """For an untracked file whose name a row names: where that row's file belongs."""
        hit = self.names.get(rel_path.rsplit("/", 1)[-1])
        if hit is None:
            return None
        return f"name is tracked by {hit[0]}, but it belongs at {hit[1]}"


def is_file_referenced(rel_path: str, referenced: set[str] | TrackedFiles) -> bool:
    """A managed-directory file is tracked when a row's layout puts a file at its very path.

    A copy with a tracked name elsewhere (``backup_2022/x.nwb``) is not tracked.
    """
    paths = referenced.paths if isinstance(referenced, TrackedFiles) else referenced
    return rel_path in paths


def normalize_reference(value: Any, root: str) -> str | None:
    """A column value as a directory-relative path (absolute paths under ``root`` are made relative)."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    text = text.strip()
    if not text:
        return None
    root = root.rstrip("/") + "/"
    if text.startswith(root):
        text = text[len(root):]
    return text.strip("/")


@dataclass(frozen=True)
class DirectoryFindings:
    items: tuple[OrphanItem, ...]
    files: int


def directory_orphans(source: str, files: Iterable[StoredObject], referenced: set[str] | TrackedFiles | None, *,
                      now: float, min_age_s: float, temp_max_age_s: float | None = None) -> DirectoryFindings:
    """Untracked, zero-byte and (for temp directories, ``referenced is None``) stale files."""
    items: list[OrphanItem] = []
    n = 0
    for f in files:
        n += 1
        age = now - f.mtime
        if referenced is None:
            if temp_max_age_s is not None and age >= temp_max_age_s:
                items.append(OrphanItem(source, STALE_TEMP, path=f.path, size=f.size, mtime=f.mtime))
            continue
        if age < min_age_s:
            continue
        if not is_file_referenced(f.path, referenced):
            why = referenced.why_untracked(f.path) if isinstance(referenced, TrackedFiles) else None
            items.append(OrphanItem(source, UNTRACKED_FILE, path=f.path, size=f.size, mtime=f.mtime, detail=why))
        elif f.size == 0:
            items.append(OrphanItem(source, ZERO_BYTE, path=f.path, size=0, mtime=f.mtime))
    return DirectoryFindings(tuple(items), n)


@dataclass(frozen=True)
class SourceName:
    """A parsed source name: ``table:<db>.<table>``, ``external:<schema>:<store>``, ``store:<s>``, ``dir:<p>``."""

    kind: str
    parts: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        if self.kind == "table":
            return f"table:{self.parts[0]}.{self.parts[1]}"
        return f"{self.kind}:" + ":".join(self.parts)


def parse_source(text: str) -> SourceName:
    """Parse a source name; raise ValueError with what was expected."""
    kind, sep, rest = text.partition(":")
    if not sep or not rest:
        raise ValueError(f"source {text!r} has no kind: expected table:, external:, store: or dir:")
    if kind == "table":
        db, dot, table = rest.partition(".")
        if not dot or not db or not table:
            raise ValueError(f"source {text!r}: expected table:<db>.<table>")
        return SourceName("table", (db, table))
    if kind == "external":
        schema, sep2, store = rest.rpartition(":")
        if not sep2 or not schema or not store:
            raise ValueError(f"source {text!r}: expected external:<schema>:<store>")
        return SourceName("external", (schema, store))
    if kind in ("store", "dir"):
        return SourceName(kind, (rest,))
    raise ValueError(f"source {text!r}: unknown kind {kind!r}; expected table, external, store or dir")


def exceeds_share(acting: int, total: int, max_share: float) -> bool:
    """The guard against a run that would remove too much of a source (a sign of a wrong config)."""
    if acting == 0:
        return False
    if total <= 0:
        return True
    return acting / total > max_share


# --- DataJoint-Cleaner configuration ----------------------------------------------


@dataclass(frozen=True)
class CleanerRun:
    """One ``[[cleaning_runs]]`` entry of a DataJoint-Cleaner TOML file, resolved."""

    index: int
    db_host: str
    db_user: str
    db_password: str
    schema: str
    store: str
    endpoint: str
    access_key: str
    secret_key: str
    secure: bool
    bucket: str
    location: str
    db_port: int = 3306  # DataJoint-Cleaner passes `port` to pymysql next to `host`
    database_server: str = ""  # the name of its `database_servers` table, for messages
    db_socket: str | None = None  # `unix_socket`: pymysql then connects there, not to host:port


# the keys of a DataJoint-Cleaner TOML djtui reads; dj-cleaner hands a server's whole table to pymysql or
# MinIO, so other keys are legal there: djtui warns, naming them, and does not use them
_CLEANER_KEYS = {
    "": ("database_servers", "storage_servers", "cleaning_runs"),
    "database_servers.*": ("host", "port", "user", "password", "unix_socket"),
    "storage_servers.minio.*": ("endpoint", "access_key", "secret_key", "secure"),
    "cleaning_runs[]": ("database_server", "schema", "store", "storage_server", "bucket", "location"),
}


def cleaner_config_warnings(data: Mapping[str, Any]) -> list[str]:
    """The keys of a DataJoint-Cleaner TOML djtui does not read, each named with where it is."""
    out: list[str] = []

    def check(m: Any, known: tuple[str, ...], where: str) -> None:
        if isinstance(m, Mapping):
            for k in m:
                if k not in known:
                    out.append(f"`{where + '.' if where else ''}{k}` is not read by djtui (ignored)")

    check(data, _CLEANER_KEYS[""], "")
    for name, db in (data.get("database_servers") or {}).items():
        check(db, _CLEANER_KEYS["database_servers.*"], f"database_servers.{name}")
    storages = data.get("storage_servers") or {}
    if isinstance(storages, Mapping):
        for kind in storages:
            if kind != "minio":
                out.append(f"`storage_servers.{kind}` is not read by djtui (only minio servers are)")
        for name, st in (storages.get("minio") or {}).items():
            check(st, _CLEANER_KEYS["storage_servers.minio.*"], f"storage_servers.minio.{name}")
    runs = data.get("cleaning_runs")
    for n, run in enumerate(runs if isinstance(runs, list) else []):
        check(run, _CLEANER_KEYS["cleaning_runs[]"], f"cleaning_runs[{n}]")
    return out


def _cleaner_server(db: Mapping[str, Any], where: str, host: str) -> tuple[str, int]:
    """Host and port of a ``database_servers`` entry: ``port`` as dj-cleaner reads it, or ``host:port``."""
    port_raw = db.get("port")
    if ":" in host and host.count(":") == 1:
        host, _, in_host = host.partition(":")
        if port_raw in (None, ""):
            port_raw = in_host
        elif str(port_raw) != in_host:
            raise ValueError(f"`{where}` names two ports: host {host}:{in_host} and port {port_raw}")
    if port_raw in (None, ""):
        return host, 3306
    if isinstance(port_raw, bool):
        raise ValueError(f"`{where}.port` must be a port number, not {port_raw!r}")
    try:
        port = int(port_raw)
    except (TypeError, ValueError):
        raise ValueError(f"`{where}.port` must be a port number, not {port_raw!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"`{where}.port` {port} is not a port number (1-65535)")
    return host, port


def parse_cleaner_config(data: Mapping[str, Any]) -> list[CleanerRun]:
    """Resolve the runs of a DataJoint-Cleaner config; raise ValueError naming the key that is wrong."""
    dbs = data.get("database_servers")
    storages = (data.get("storage_servers") or {})
    runs = data.get("cleaning_runs")
    if not isinstance(dbs, Mapping) or not dbs:
        raise ValueError("`database_servers` must be a table with at least one server")
    if not isinstance(storages, Mapping) or not isinstance(storages.get("minio"), Mapping):
        raise ValueError("`storage_servers.minio` must be a table of MinIO servers")
    if not isinstance(runs, list) or not runs:
        raise ValueError("`cleaning_runs` must be an array of tables ([[cleaning_runs]])")

    def need(m: Any, key: str, where: str) -> Any:
        if not isinstance(m, Mapping) or key not in m or m[key] in (None, ""):
            raise ValueError(f"`{where}.{key}` is missing")
        return m[key]

    out = []
    for n, run in enumerate(runs):
        where = f"cleaning_runs[{n}]"
        db_name = str(need(run, "database_server", where))
        if db_name not in dbs:
            raise ValueError(f"`{where}.database_server` names {db_name!r}, which is not in `database_servers`")
        kind, _, st_name = str(need(run, "storage_server", where)).partition(".")
        if kind != "minio" or st_name not in storages["minio"]:
            raise ValueError(f"`{where}.storage_server` must be `minio.<name>` of `storage_servers.minio`")
        db = dbs[db_name]
        st = storages["minio"][st_name]
        dbw, stw = f"database_servers.{db_name}", f"storage_servers.minio.{st_name}"
        host, port = _cleaner_server(db, dbw, str(need(db, "host", dbw)))
        out.append(CleanerRun(
            index=n, db_host=host, db_port=port, database_server=db_name, db_user=str(need(db, "user", dbw)),
            db_socket=str(db["unix_socket"]) if db.get("unix_socket") else None,
            db_password=str(need(db, "password", dbw)), schema=str(need(run, "schema", where)),
            store=str(need(run, "store", where)), endpoint=str(need(st, "endpoint", stw)),
            access_key=str(need(st, "access_key", stw)), secret_key=str(need(st, "secret_key", stw)),
            secure=bool(st.get("secure", False)), bucket=str(need(run, "bucket", where)),
            location=str(need(run, "location", where)),
        ))
    return out
