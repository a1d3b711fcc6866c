"""What a session is, how its paths are laid out, and when its local copy is safe to delete.

Pure rules only: the services gather listings and database answers, and this
module decides. Keeping the rules here means the CLI, the screens and the
delete re-check can never disagree about what "Verified" or "Safe" means.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import operator
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from djtui.domain.mounts import remount_hint
from djtui.domain.units import plural  # noqa: F401  (callers import it from here too)
from djtui.errors import UserError

_PID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}\Z")  # \Z: `$` would accept a trailing newline


@dataclass(frozen=True, order=True)
class SessionKey:
    """A session as operators name it: the participant id on disk and the date."""

    participant_id: str
    session_date: dt.date

    @property
    def date_str(self) -> str:
        return self.session_date.strftime("%Y%m%d")

    @property
    def label(self) -> str:
        return f"{self.participant_id} {self.date_str}"


# the order every session list is shown in: by date, then participant (a C key function: lists hold 50,000)
BY_DATE = operator.attrgetter("session_date", "participant_id")


def validate_participant(value: str, *, where: str = "participant_id") -> str:
    """A participant id that is safe to put in a path: no `/`, no `..`, no control characters."""
    if not value or "/" in value or "\\" in value or value in (".", "..") or ".." in value or not _PID.match(value):
        raise UserError(f"participant id {value!r} is not valid", where=where,
                        hint="use letters, digits, `_`, `-` or `.` (no `/` and no `..`), at most 50 characters")
    return value


def parse_date(value: str, *, where: str = "session_date") -> dt.date:
    """YYYYMMDD (or YYYY-MM-DD) into a date; impossible dates are refused."""
    text = value.strip()
    m = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", text)
    if not m:
        raise UserError(f"date {value!r} is not YYYYMMDD", where=where, hint="write dates like 20250104")
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise UserError(f"date {value!r} does not exist ({exc})", where=where,
                        hint="check the month and the day") from None


def parse_range(start: str | None, end: str | None, *, where: tuple[str, str] = ("--start-date", "--end-date")
                ) -> tuple[dt.date | None, dt.date | None]:
    """A date range from two optional YYYYMMDD texts; an empty text is an open end, a reversed range is refused.

    ``where`` names the two fields as the user sees them (CLI flags, the screen's inputs).
    """
    s = parse_date(start, where=where[0]) if start and start.strip() else None
    e = parse_date(end, where=where[1]) if end and end.strip() else None
    if s and e and s > e:
        raise UserError(f"start date {start.strip()} is after end date {end.strip()}",  # type: ignore[union-attr]
                        where=f"{where[0]}/{where[1]}", hint="swap them")
    return s, e


def session_key(participant: str, date: str) -> SessionKey:
    return SessionKey(validate_participant(participant), parse_date(date))


def normalize_participant(disk_id: str, strip_prefixes: Iterable[str], numeric_only: bool) -> str:
    """The database's spelling of a disk participant id (the GUI stores `p123` as `123`)."""
    for prefix in sorted(strip_prefixes, key=len, reverse=True):
        if prefix and disk_id.startswith(prefix) and len(disk_id) > len(prefix):
            rest = disk_id[len(prefix):]
            if not numeric_only or rest.isdigit():
                return rest
    return disk_id


def render_path(template: str, key: SessionKey) -> str:
    """The session's folder relative to a base path, following a `path_structure` template."""
    return template.format(participant_id=key.participant_id, session_date=key.date_str)


def template_regex(template: str) -> re.Pattern[str]:
    """A regex that reads (participant_id, session_date) back out of a relative path."""
    out = []
    for part in re.split(r"(\{participant_id\}|\{session_date\})", template):
        if part == "{participant_id}":
            out.append(r"(?P<participant_id>[^/]+)")
        elif part == "{session_date}":
            out.append(r"(?P<session_date>\d{8})")
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "$")


def matches_prefix(participant: str, prefixes: Iterable[str]) -> bool:
    prefixes = tuple(prefixes)
    return not prefixes or participant.startswith(prefixes)


def excluded(rel_path: str, patterns: Iterable[str]) -> bool:
    """rsync-like: a pattern without `/` matches the file name, one with `/` the relative path."""
    name = rel_path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel_path if "/" in pat else name, pat.lstrip("/")) for pat in patterns)


class FileEntry(NamedTuple):
    """One regular file of a session (a tuple: scans create hundreds of thousands of them)."""

    rel: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Listing:
    """A session folder on one side: its regular files, and anything odd found while scanning."""

    exists: bool
    files: tuple[FileEntry, ...] = ()
    special: tuple[str, ...] = ()  # FIFOs, sockets, devices: never read, never deleted
    symlinks: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.files)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def by_rel(self) -> dict[str, FileEntry]:
        return {f.rel: f for f in self.files}

    def videos(self, extensions: Iterable[str]) -> int:
        exts = tuple(e.lower() for e in extensions)
        return sum(1 for f in self.files if f.rel.lower().endswith(exts))


@dataclass(frozen=True)
class Comparison:
    """Source vs one destination: which files are missing, extra, or of another size (or content)."""

    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    size_mismatch: tuple[str, ...] = ()
    hash_mismatch: tuple[str, ...] = ()
    compared: int = 0
    hashed: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.size_mismatch or self.hash_mismatch)

    def summary(self) -> str:
        if self.ok:
            extra = f", {len(self.extra)} extra at destination" if self.extra else ""
            how = f", {self.hashed} hashed" if self.hashed else ""
            return f"{self.compared} files match{how}{extra}"
        parts = []
        for label, items in (("missing", self.missing), ("size differs", self.size_mismatch),
                             ("content differs", self.hash_mismatch)):
            if items:
                names = ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")
                parts.append(f"{len(items)} {label} ({names})")
        return "; ".join(parts)


def compare_sizes(src: Listing, dst: Listing) -> Comparison:
    """Every source file must exist at the destination with the same size (never a sample)."""
    d = dst.by_rel()
    missing, mismatch = [], []
    for f in src.files:
        other = d.get(f.rel)
        if other is None:
            missing.append(f.rel)
        elif other.size != f.size:
            mismatch.append(f.rel)
    s = {f.rel for f in src.files}
    extra = sorted(r for r in d if r not in s)
    return Comparison(tuple(missing), tuple(extra), tuple(mismatch), (), compared=len(src.files))


def mtime_ns(text: str) -> int:
    """A modification time as the scanner wrote it: `find`'s ``%T@`` ("1750766400.1234567890") or ns digits."""
    sec, dot, frac = text.partition(".")
    if not dot:
        return int(text)
    if sec.startswith("-"):  # before 1970: rare enough for exact decimal arithmetic
        from decimal import Decimal
        return int(Decimal(text) * 1_000_000_000)
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


class FileTable(Mapping[str, tuple[int, int, str | None]]):
    """rel -> (size, mtime_ns, hash), kept as the text columns a scan produced until someone reads it.

    A batch verification records about 100,000 files; building a tuple per file only to write it
    out again cost more than the scan. Sizes are decimal text or ints, mtimes what ``mtime_ns`` reads.
    """

    __slots__ = ("_dict", "hashes", "mtimes", "rels", "sizes")

    def __init__(self, rels: Sequence[str], sizes: Sequence[str | int], mtimes: Sequence[str | int],
                 hashes: Sequence[str | None] | None = None):
        self.rels, self.sizes, self.mtimes, self.hashes = rels, sizes, mtimes, hashes
        self._dict: dict[str, tuple[int, int, str | None]] | None = None

    def as_dict(self) -> dict[str, tuple[int, int, str | None]]:
        if self._dict is None:
            hashes = self.hashes if self.hashes is not None else [None] * len(self.rels)
            self._dict = {r: (int(s), m if isinstance(m, int) else mtime_ns(m), h)
                          for r, s, m, h in zip(self.rels, self.sizes, self.mtimes, hashes, strict=True)}
        return self._dict

    def __getitem__(self, rel: str) -> tuple[int, int, str | None]:
        return self.as_dict()[rel]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.rels)

    def columns(self) -> tuple[list[str], list[str], list[str], list[str] | None]:
        """The four columns as text, for storage (no per-file objects when they are text already)."""
        def text(col: Sequence[str | int]) -> list[str]:
            return col if isinstance(col, list) and (not col or isinstance(col[0], str)) else [str(x) for x in col]
        hashes = None if self.hashes is None else ["" if h is None else h for h in self.hashes]
        return text(self.rels), text(self.sizes), text(self.mtimes), hashes  # type: ignore[arg-type]


@dataclass(frozen=True)
class Scan:
    """One folder as the fast scanner saw it: parallel text columns, no object per file.

    Regular files carry their relative path, size and mtime; every other entry is kept as
    ``"/" + rel`` with its kind ("d" folder, "l" symlink, "s" FIFO, socket or device) in ``mtimes``.
    So two sides whose ``size_map()`` are equal have the same files with the same sizes, proven by
    one dict comparison in C; only folders that differ are turned into a ``Listing``.
    """

    exists: bool
    rels: Sequence[str] = ()
    sizes: Sequence[str] = ()
    mtimes: Sequence[str] = ()
    others: int = 0  # entries that are not regular files
    error: str | None = None  # part of the folder could not be read (permissions): the listing is incomplete

    @property
    def count(self) -> int:
        return len(self.rels) - self.others

    def size_map(self) -> dict[str, str]:
        return dict(zip(self.rels, self.sizes, strict=True))

    def file_columns(self) -> tuple[Sequence[str], Sequence[str], Sequence[str]]:
        if not self.others:
            return self.rels, self.sizes, self.mtimes
        keep = [i for i, r in enumerate(self.rels) if not r.startswith("/")]
        return [self.rels[i] for i in keep], [self.sizes[i] for i in keep], [self.mtimes[i] for i in keep]

    @property
    def bytes(self) -> int:
        return sum(map(int, self.file_columns()[1]))

    def file_table(self, hashes: Sequence[str | None] | None = None) -> FileTable:
        rels, sizes, mtimes = self.file_columns()
        return FileTable(list(rels), list(sizes), list(mtimes), hashes)

    def oddities(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(special files, symbolic links), sorted, as ``listing()`` has them, without an object per file."""
        if not self.exists or not self.others:
            return (), ()
        special, links = [], []
        for rel, mt in zip(self.rels, self.mtimes, strict=True):
            if rel.startswith("/"):
                if mt == "l":
                    links.append(rel[1:])
                elif mt == "s":
                    special.append(rel[1:])
        return tuple(sorted(special)), tuple(sorted(links))

    def listing(self) -> Listing:
        if not self.exists:
            return Listing(False)
        files, special, links = [], [], []
        for rel, size, mt in zip(self.rels, self.sizes, self.mtimes, strict=True):
            if not rel.startswith("/"):
                files.append(FileEntry(rel, int(size), mtime_ns(mt)))
            elif mt == "l":
                links.append(rel[1:])
            elif mt == "s":
                special.append(rel[1:])
        files.sort(key=lambda f: f.rel)
        return Listing(True, tuple(files), tuple(sorted(special)), tuple(sorted(links)))

    @classmethod
    def of(cls, listing: Listing) -> Scan:
        """The columns of a listing made by the Python scanner (no folder entries: they never differ)."""
        if not listing.exists:
            return cls(False)
        rels = [f.rel for f in listing.files] + ["/" + r for r in listing.special] + \
            ["/" + r for r in listing.symlinks]
        sizes = [str(f.size) for f in listing.files] + [""] * (len(listing.special) + len(listing.symlinks))
        mtimes = [str(f.mtime_ns) for f in listing.files] + ["s"] * len(listing.special) + \
            ["l"] * len(listing.symlinks)
        return cls(True, rels, sizes, mtimes, len(listing.special) + len(listing.symlinks))


def compare_scans(src: Scan, dst: Scan) -> Comparison:
    """``compare_sizes`` on two scans: one C-level dict comparison when they agree, the full diff when not."""
    if src.size_map() == dst.size_map():
        return Comparison(compared=src.count)
    return compare_sizes(src.listing(), dst.listing())


@dataclass(frozen=True)
class VerifyRecord:
    """A passing verification as it was when it ran; delete compares today's source against it."""

    participant_id: str
    session_date: str
    destination: str
    verified_at: float
    method: str  # size | checksum
    files: Mapping[str, tuple[int, int, str | None]]  # rel -> (size, mtime_ns, hash)

    def to_json(self) -> dict:
        return {"participant_id": self.participant_id, "session_date": self.session_date,
                "destination": self.destination, "verified_at": self.verified_at, "method": self.method,
                "files": {k: list(v) for k, v in sorted(self.files.items())}}

    @classmethod
    def from_json(cls, data: dict) -> VerifyRecord:
        return cls(str(data["participant_id"]), str(data["session_date"]), str(data["destination"]),
                   float(data["verified_at"]), str(data["method"]),
                   {k: (int(v[0]), int(v[1]), v[2]) for k, v in data["files"].items()})


def record_drift(record: VerifyRecord | None, src: Listing) -> list[str]:
    """How today's source differs from what was verified; empty means the record still holds."""
    if record is None:
        return ["never verified"]
    if not src.exists:  # not "<file>: gone since verification" once per file: the session itself went
        return ["the local copy was deleted after verification (the backup keeps it)"]
    out = []
    now = src.by_rel()
    for rel, f in now.items():
        old = record.files.get(rel)
        if old is None:
            out.append(f"{rel}: appeared after verification")
        elif old[0] != f.size:
            out.append(f"{rel}: size {f.size} differs from verified {old[0]}")
        elif f.mtime_ns != old[1]:
            out.append(f"{rel}: modified after verification")
    for rel in record.files:
        if rel not in now:
            out.append(f"{rel}: gone since verification")
    return out


@dataclass(frozen=True)
class ContentMismatch:
    """A file whose content a checksum verify found different, with both sides' size and mtime as seen then.

    A size check cannot see such a difference, so it must not clear it: it stands while the file's
    size and mtime are unchanged on both sides, until a checksum verify passes.
    """

    rel: str
    src_size: int
    src_mtime_ns: int
    dst_size: int
    dst_mtime_ns: int
    found_at: float
    method: str = "checksum"

    def applies(self, src: Mapping[str, tuple[int, int]], dst: Mapping[str, tuple[int, int]]) -> bool:
        """Both sides still hold the file with the size and mtime it had when the difference was found."""
        return src.get(self.rel) == (self.src_size, self.src_mtime_ns) and \
            dst.get(self.rel) == (self.dst_size, self.dst_mtime_ns)

    def reason(self) -> str:
        return f"{self.rel}: {mismatch_reason([self])}"


def mismatch_reason(items: Sequence[ContentMismatch]) -> str:
    """Why a remembered content difference blocks a verify, and what clears it."""
    when = dt.datetime.fromtimestamp(min(m.found_at for m in items)).strftime("%Y-%m-%d %H:%M:%S")
    methods = "/".join(sorted({m.method for m in items}))
    files = "the file" if len(items) == 1 else "the files"
    return (f"content differed at {when} ({methods} verify); the size check cannot clear it: "
            f"re-copy {files} and run verify --checksum")


def standing_mismatches(known: Iterable[ContentMismatch], src: Mapping[str, tuple[int, int]],
                        dst: Mapping[str, tuple[int, int]]) -> list[ContentMismatch]:
    """The remembered differences that still apply; a file changed on either side no longer counts."""
    return [m for m in known if m.applies(src, dst)]


def listing_stats(listing: Listing | None) -> dict[str, tuple[int, int]]:
    """rel -> (size, mtime_ns) of a listing's regular files."""
    return {f.rel: (f.size, f.mtime_ns) for f in listing.files} if listing is not None else {}


def scan_stats(scan: Scan, rels: Iterable[str]) -> dict[str, tuple[int, int]]:
    """rel -> (size, mtime_ns) of the regular files among ``rels`` in a scan."""
    want = set(rels)
    out = {}
    for rel, size, mt in zip(*scan.file_columns(), strict=True):
        if rel in want:
            out[rel] = (int(size), mtime_ns(mt))
    return out


@dataclass(frozen=True)
class DjStatus:
    """Whether the database holds the session, and if not which part is missing."""

    imported: bool
    missing: tuple[str, ...] = ()
    error: str | None = None
    in_database: bool | None = None  # some table holds the session at all (None: not known)


MOUNT_OK, MOUNT_MISSING, MOUNT_HUNG = "ok", "missing", "hung"
BACKUP_COMPLETE, BACKUP_PARTIAL, BACKUP_MISSING = "complete", "partial", "missing"


@dataclass(frozen=True)
class DestinationStatus:
    name: str
    path: str
    mount: str = MOUNT_OK  # ok | missing | hung
    listing: Listing | None = None
    comparison: Comparison | None = None
    drift: tuple[str, ...] = ("never verified",)
    detail: str = ""
    content_differs: tuple[str, ...] = ()  # files a checksum verify found different; they still apply
    mount_point: str | None = None  # where a hung destination is mounted (None: not known)

    @property
    def remount_hint(self) -> str:
        return remount_hint(self.mount_point)

    @property
    def backup_files(self) -> int:
        """Source files the destination holds with the same size (the n of "n of m files")."""
        if self.mount != MOUNT_OK or self.listing is None or not self.listing.exists or self.comparison is None:
            return 0
        c = self.comparison
        return max(c.compared - len(c.missing) - len(c.size_mismatch), 0)

    @property
    def backup_state(self) -> str:
        """complete: every source file is there with its size; partial: some are; missing: none (or no folder)."""
        if self.mount != MOUNT_OK:
            return self.mount
        if self.listing is None or not self.listing.exists:
            return BACKUP_MISSING
        c = self.comparison
        if c is not None and not c.missing and not c.size_mismatch:
            return BACKUP_COMPLETE
        present = c is not None and len(c.missing) < c.compared
        return BACKUP_PARTIAL if present else BACKUP_MISSING

    @property
    def backup(self) -> bool:
        """The destination holds every source file with the same size (an empty or partial folder is not a backup)."""
        return self.backup_state == BACKUP_COMPLETE

    @property
    def sizes_match(self) -> bool:
        return self.backup and self.comparison is not None and self.comparison.ok and self.comparison.compared > 0

    @property
    def verified(self) -> bool:
        """Sizes match now, a passing verification record still matches the source, no known content difference."""
        return self.sizes_match and not self.drift and not self.content_differs


@dataclass(frozen=True)
class SessionStatus:
    key: SessionKey
    db_participant: str
    source_path: str
    source: Listing
    dj: DjStatus
    destinations: tuple[DestinationStatus, ...] = field(default_factory=tuple)
    videos: int = 0
    local: bool = True  # False: known from the database or a destination only, nothing on local disk

    @property
    def at_destination(self) -> bool:
        """Some destination holds files of the session (what Backup means when nothing is local)."""
        return any(d.listing is not None and d.listing.count > 0 for d in self.destinations)

    @property
    def exists_nowhere(self) -> bool:
        """Not on local disk, not in the database, at no destination (and every destination answered)."""
        return (not self.source.exists and self.dj.in_database is False
                and all(d.mount == MOUNT_OK and (d.listing is None or not d.listing.exists)
                        for d in self.destinations))

    @property
    def backup(self) -> bool:
        return bool(self.destinations) and all(d.backup for d in self.destinations)

    @property
    def backup_partial(self) -> bool:
        """Not complete everywhere, but some destination holds some of the files: the ⚠ of the Backup column."""
        return not self.backup and any(d.backup_state in (BACKUP_PARTIAL, BACKUP_COMPLETE) for d in self.destinations)

    @property
    def backup_state(self) -> str:
        if self.backup:
            return BACKUP_COMPLETE
        return BACKUP_PARTIAL if self.backup_partial else BACKUP_MISSING

    @property
    def verified(self) -> bool:
        return bool(self.destinations) and all(d.verified for d in self.destinations)

    @property
    def sizes_match(self) -> bool:
        return bool(self.destinations) and all(d.sizes_match for d in self.destinations)

    @property
    def needs_verify(self) -> bool:
        """Every backup looks complete by size, but no current verification record proves it.

        Not when a checksum verify found a content difference that still applies: another verify cannot help.
        """
        return self.sizes_match and not self.verified and not any(d.content_differs for d in self.destinations)

    @property
    def hung(self) -> bool:
        return any(d.mount == MOUNT_HUNG for d in self.destinations)

    @property
    def safe(self) -> bool:
        return (self.dj.imported and self.source.count > 0 and self.backup and self.verified
                and not self.source.special and not self.source.symlinks)

    def reasons_unsafe(self) -> list[str]:
        """Every reason the local copy may not be deleted, in words an operator can act on."""
        out = []
        if not self.local:
            return ["not on local disk: nothing to delete"]
        if self.source.count == 0:
            out.append("the source folder holds no files")
        if self.source.special:
            out.append("special files in the session (never backed up): " + name_list(self.source.special))
        if self.source.symlinks:
            out.append("symbolic links in the session: " + name_list(self.source.symlinks))
        if not self.dj.imported:
            what = ", ".join(self.dj.missing) or self.dj.error or "unknown"
            out.append(f"not imported into DataJoint (missing: {what})")
        if not self.destinations:
            out.append("no enabled destination is configured")
        for d in self.destinations:
            if d.mount == MOUNT_HUNG:
                out.append(f"{d.name}: mount not answering (stale?); {d.remount_hint}")
            elif d.mount == MOUNT_MISSING:
                out.append(f"{d.name}: destination not mounted/accessible ({d.detail or d.path})")
            elif d.backup_state == BACKUP_MISSING:
                out.append(f"{d.name}: no backup at {d.path}")
            elif d.backup_state == BACKUP_PARTIAL:
                out.append(f"{d.name}: partial backup, {d.backup_files} of {self.source.count} files "
                           f"({d.comparison.summary() if d.comparison else 'not compared'})")
            elif not d.sizes_match:
                out.append(f"{d.name}: backup differs ({d.comparison.summary() if d.comparison else 'not compared'})")
            elif d.drift:
                out.append(f"{d.name}: " + "; ".join(d.drift[:5]) + (" ..." if len(d.drift) > 5 else ""))
        return out

    def to_json(self) -> dict:
        return {
            "participant_id": self.key.participant_id,
            "db_participant_id": self.db_participant,
            "session_date": self.key.date_str,
            "local": self.local,
            "source_path": self.source_path,
            "files": self.source.count,
            "videos": self.videos,
            "bytes": self.source.bytes,
            "dj": self.dj.imported,
            "dj_missing": list(self.dj.missing),
            "backup": self.backup,
            "backup_state": self.backup_state,
            "verified": self.verified,
            "sizes_match": self.sizes_match,
            "safe": self.safe,
            "destinations": [
                {"name": d.name, "path": d.path, "mount": d.mount, "mount_point": d.mount_point, "backup": d.backup,
                 "backup_state": d.backup_state,
                 "backup_files": d.backup_files, "sizes_match": d.sizes_match,
                 "verified": d.verified, "files": d.listing.count if d.listing else None,
                 "bytes": d.listing.bytes if d.listing else None,
                 "differences": d.comparison.summary() if d.comparison else None, "drift": list(d.drift[:20]),
                 "content_differs": list(d.content_differs[:20])}
                for d in self.destinations],
            "reasons_unsafe": self.reasons_unsafe(),
        }


def name_list(rels: Sequence[str], limit: int = 5) -> str:
    """``a, b, c and 4 more``: a few names of a long list, for a message."""
    return ", ".join(rels[:limit]) + (f" and {len(rels) - limit} more" if len(rels) > limit else "")


def cell(ok: bool, warn: bool = False) -> str:
    """The ✓/✗/⚠ mark used by the table in both the CLI and the screen."""
    if warn:
        return "⚠"
    return "✓" if ok else "✗"


