"""Database dumps: run (parallel per-schema + whole server), verify by restore, list, prune, copy.

Why this shape: the seed script put the password on the dump tool's command
line (visible in ``ps``) and wrote straight into the final folder, so a failed
night left a folder that looked like a backup. Here credentials only travel
through a 0600 ``--defaults-extra-file`` in a private temp dir, the dump is
built under a hidden temp name and renamed into place only once the manifest
is written, and "verified" means a restore into a scratch server matched the
manifest's exact row counts (FIELD.md section 6, tier 3).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from djtui.domain.retention import RetentionPolicy, prune_set
from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog
from djtui.services.database import ConnectionSettings, Database

SYSTEM_SCHEMAS = frozenset({"information_schema", "performance_schema", "sys", "mysql"})
STAMP_FORMAT = "%Y-%m-%d_%H%M%S"
PARTIAL_PREFIX = ".partial-"
MANIFEST = "manifest.json"
VERIFIED = "verified.json"
SERVER_FILE = "_server"
SAFETY_FOLDER = "pre-restore"  # in out_dir: the schemas a restore overwrote, as they were

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


def qident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


# ---------------------------------------------------------------------------
# tools and credentials


@dataclass(frozen=True)
class Tools:
    dump: str
    client: str
    compressor: list[str]  # compress stdin to stdout
    decompressor: list[str]  # decompress stdin to stdout
    suffix: str  # ".sql.zst" | ".sql.gz"


def find_tools(prefer_zstd: bool = True) -> Tools:
    """The installed dump/client programs (MariaDB names first) and a compressor."""
    dump = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    client = shutil.which("mariadb") or shutil.which("mysql")
    if not dump or not client:
        raise UserError("the database dump tools are not installed (mariadb-dump/mysqldump and mariadb/mysql)",
                        hint="install the client package, e.g. `apt-get install mariadb-client`")
    zstd = shutil.which("zstd") if prefer_zstd else None
    if zstd:
        return Tools(dump, client, [zstd, "-q", "-1", "-T1", "-c"], [zstd, "-q", "-d", "-c"], ".sql.zst")
    gzip = shutil.which("gzip")
    if not gzip:
        raise UserError("neither zstd nor gzip is installed", hint="apt-get install zstd")
    return Tools(dump, client, [gzip, "-c", "-6"], [gzip, "-d", "-c"], ".sql.gz")


def decompressor_for(path: Path) -> list[str]:
    if path.name.endswith(".zst"):
        exe = shutil.which("zstd")
        if not exe:
            raise UserError(f"{path.name} is zstd-compressed and zstd is not installed", hint="apt-get install zstd")
        return [exe, "-q", "-d", "-c"]
    exe = shutil.which("gzip")
    if not exe:
        raise UserError("gzip is not installed")
    return [exe, "-d", "-c"]


@contextlib.contextmanager
def defaults_file(settings: ConnectionSettings) -> Iterator[Path]:
    """A 0600 option file in a 0700 temp dir with the credentials; removed on exit."""
    tmp = Path(tempfile.mkdtemp(prefix="djtui-cred-"))
    os.chmod(tmp, 0o700)
    path = tmp / "client.cnf"
    lines = ["[client]"]
    if settings.user:
        lines.append(f"user={_opt(settings.user)}")
    if settings.password:
        commandlog.add_secret(settings.password.reveal())
        lines.append(f"password={_opt(settings.password.reveal())}")
    if settings.socket:
        lines.append(f"socket={_opt(settings.socket)}")
    else:
        lines.append(f"host={_opt(settings.host)}")
        lines.append(f"port={int(settings.port)}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, ("\n".join(lines) + "\n").encode())
    finally:
        os.close(fd)
    try:
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _opt(value: str) -> str:
    """An option-file value: quoted, with the escapes the client's option parser understands."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pipe_to_file(first: list[str], second: list[str], out: Path, stdin_path: Path | None = None) -> None:
    """Run ``first | second > out`` without a shell; raise OperationFailed with masked stderr."""
    commandlog.record("exec", [*first, "|", *second])
    with contextlib.ExitStack() as stack:
        fout = stack.enter_context(open(out, "wb"))
        err1 = stack.enter_context(tempfile.TemporaryFile())
        err2 = stack.enter_context(tempfile.TemporaryFile())
        fin: Any = stack.enter_context(open(stdin_path, "rb")) if stdin_path else subprocess.DEVNULL
        p1 = subprocess.Popen(first, stdin=fin, stdout=subprocess.PIPE, stderr=err1)
        p2 = subprocess.Popen(second, stdin=p1.stdout, stdout=fout, stderr=err2)
        assert p1.stdout is not None
        p1.stdout.close()
        rc2 = p2.wait()
        rc1 = p1.wait()
        if rc1 or rc2:
            err1.seek(0)
            err2.seek(0)
            msg = (err1.read().decode(errors="replace") + err2.read().decode(errors="replace")).strip()
            failed = Path(first[0] if rc1 else second[0]).name
            raise OperationFailed(commandlog.mask(f"{failed} failed (exit {rc1 or rc2}): "
                                                  f"{msg[-800:] or 'no message'}"))


# ---------------------------------------------------------------------------
# run


@dataclass(frozen=True)
class SchemaDump:
    name: str
    file: str
    bytes: int
    sha256: str
    tables: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    seconds: float


def dump_options(tool: str) -> list[str]:
    return ["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
            "--max-allowed-packet=512M", "--quick"]


def user_schemas(db: Database) -> list[str]:
    return [s for s in db.schemas() if s.lower() not in SYSTEM_SCHEMAS]


def table_counts(db: Database, schema: str) -> dict[str, int]:
    """Exact row counts (COUNT(*), not the estimates in information_schema)."""
    rows = db.query("SELECT table_name FROM information_schema.tables WHERE table_schema=%s "
                    "AND table_type='BASE TABLE' ORDER BY table_name", (schema,))
    out: dict[str, int] = {}
    for (name,) in rows:
        out[name] = int(db.query(f"SELECT COUNT(*) FROM {qident(schema)}.{qident(name)}")[0][0])
    return out


def _safe_file(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else f"%{ord(c):02x}" for c in name)


def server_file_options(dump_tool: str) -> list[str]:
    """What the whole-server file holds beside the per-schema files.

    With mariadb-dump it is every definition (no rows: those are in the schema files, which are
    dumped in parallel) plus the accounts and grants as CREATE USER / GRANT statements, so the
    backup costs one pass over the data instead of two. mysqldump has no ``--system=users``, so
    there it stays a full ``--all-databases`` dump, which also carries the ``mysql`` schema.
    """
    if Path(dump_tool).name.startswith("mariadb"):
        return ["--all-databases", "--no-data", "--system=users"]
    return ["--all-databases"]


def run_backup(db: Database, out_dir: Path, *, parallel: int = 2, full_server: bool = True,
               schemas: list[str] | None = None, progress: Progress = _quiet,
               now: datetime | None = None) -> BackupResult:
    """Dump every user schema (in parallel) and the whole server into ``out_dir/<stamp>``."""
    t0 = time.monotonic()
    tools = find_tools()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = db.server_info()
    names = schemas if schemas is not None else user_schemas(db)
    stamp = (now or datetime.now()).strftime(STAMP_FORMAT)
    final = out_dir / stamp
    if final.exists():
        raise UserError(f"a backup named {stamp} already exists in {out_dir}", hint="wait a second and run again")
    work = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{stamp}-", dir=out_dir))
    lock = threading.Lock()
    done = [0]
    total = len(names) + (1 if full_server else 0)
    try:
        with defaults_file(db.settings) as cnf:
            base = [tools.dump, f"--defaults-extra-file={cnf}", *dump_options(tools.dump)]

            def one(schema: str) -> SchemaDump:
                s0 = time.monotonic()
                counts = table_counts(db, schema)
                fname = _safe_file(schema) + tools.suffix
                target = work / fname
                _pipe_to_file([*base, "--databases", schema], tools.compressor, target)
                result = SchemaDump(schema, fname, target.stat().st_size, sha256_file(target), counts,
                                    round(time.monotonic() - s0, 3))
                with lock:
                    done[0] += 1
                    progress(f"[{done[0]}/{total}] {schema}: {len(counts)} tables, {result.bytes} bytes")
                return result

            def whole() -> dict[str, Any]:
                fname = SERVER_FILE + tools.suffix
                target = work / fname
                _pipe_to_file([*base, *server_file_options(tools.dump)], tools.compressor, target)
                with lock:
                    done[0] += 1
                    progress(f"[{done[0]}/{total}] whole server: {target.stat().st_size} bytes")
                return {"file": fname, "bytes": target.stat().st_size, "sha256": sha256_file(target)}

            with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
                server_future = pool.submit(whole) if full_server else None
                futures = [pool.submit(one, s) for s in names]
                dumps = [f.result() for f in futures]
                server_dump = server_future.result() if server_future else None
        manifest = {
            "format": 1,
            "created": (now or datetime.now()).isoformat(timespec="seconds"),
            "stamp": stamp,
            "server": {"flavor": info.flavor, "version": info.version, "address": db.settings.address},
            "tool": Path(tools.dump).name,
            "options": dump_options(tools.dump),
            "compression": tools.suffix.rsplit(".", 1)[-1],
            "schemas": [{"name": d.name, "file": d.file, "bytes": d.bytes, "sha256": d.sha256,
                         "tables": d.tables, "seconds": d.seconds} for d in dumps],
            "server_dump": server_dump,
            "counts_note": "row counts are exact COUNT(*) taken just before each schema's dump",
        }
        _write_json_atomic(work / MANIFEST, manifest)
        os.chmod(work, 0o750)
        os.rename(work, final)
        _fsync_dir(out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupResult(final, manifest, time.monotonic() - t0)


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# verify


@dataclass
class VerifyResult:
    path: Path
    ok: bool
    problems: list[str] = field(default_factory=list)
    tables_checked: int = 0
    seconds: float = 0.0


def read_manifest(path: Path) -> dict[str, Any]:
    mf = Path(path) / MANIFEST
    if not mf.is_file():
        raise UserError(f"{path} is not a djtui backup (no {MANIFEST})", where=str(path),
                        hint="pass a folder printed by `djtui dbbackup run` (see `djtui dbbackup list`)")
    try:
        data = json.loads(mf.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{MANIFEST} is not valid JSON: {exc}", where=str(mf)) from None
    if not isinstance(data, dict) or "schemas" not in data:
        raise UserError(f"{MANIFEST} has no schema list", where=str(mf))
    return data


def verify_backup(path: Path, *, progress: Progress = _quiet, scratch_dir: Path | None = None) -> VerifyResult:
    """Hashes first, then restore every schema into a fresh private server and compare row counts."""
    from djtui.services.servers.mariadb import PrivateServer

    t0 = time.monotonic()
    path = Path(path)
    manifest = read_manifest(path)
    result = VerifyResult(path, ok=False)
    files = [(s["file"], s["sha256"]) for s in manifest["schemas"]]
    if manifest.get("server_dump"):
        files.append((manifest["server_dump"]["file"], manifest["server_dump"]["sha256"]))
    for fname, digest in files:
        f = path / fname
        if not f.is_file():
            result.problems.append(f"{fname}: missing")
        elif sha256_file(f) != digest:
            result.problems.append(f"{fname}: sha256 differs from the manifest")
    progress(f"hashes: {len(files) - len(result.problems)}/{len(files)} match")
    if result.problems:
        _unmark(path)
        result.seconds = time.monotonic() - t0
        return result
    tools = find_tools(prefer_zstd=False)
    progress("starting a scratch server")
    with PrivateServer(scratch_dir) as srv, defaults_file(srv.settings) as cnf:
        conn = srv.connect()
        try:
            for i, s in enumerate(manifest["schemas"], 1):
                progress(f"[{i}/{len(manifest['schemas'])}] restoring {s['name']}")
                try:
                    _pipe_to_file(decompressor_for(path / s["file"]),
                                  [tools.client, f"--defaults-extra-file={cnf}", "--max-allowed-packet=512M"],
                                  Path(os.devnull), stdin_path=path / s["file"])
                except OperationFailed as exc:
                    result.problems.append(f"{s['name']}: restore failed: {exc}")
                    continue
                with conn.cursor() as cur:
                    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema=%s "
                                "AND table_type='BASE TABLE'", (s["name"],))
                    restored = {r[0] for r in cur.fetchall()}
                    for table, expected in s["tables"].items():
                        if table not in restored:
                            result.problems.append(f"{s['name']}.{table}: missing after restore")
                            continue
                        cur.execute(f"SELECT COUNT(*) FROM {qident(s['name'])}.{qident(table)}")
                        got = int(cur.fetchone()[0])
                        result.tables_checked += 1
                        if got != int(expected):
                            result.problems.append(f"{s['name']}.{table}: {got} rows restored, "
                                                   f"manifest says {expected}")
                    for extra in sorted(restored - set(s["tables"])):
                        result.problems.append(f"{s['name']}.{extra}: restored but not in the manifest")
        finally:
            conn.close()
    result.ok = not result.problems
    result.seconds = time.monotonic() - t0
    if result.ok:
        _write_json_atomic(path / VERIFIED, {
            "verified": datetime.now().isoformat(timespec="seconds"), "method": "restore+rowcount",
            "tables": result.tables_checked, "seconds": round(result.seconds, 2),
            "manifest_sha256": sha256_file(path / MANIFEST)})
    else:
        _unmark(path)
    return result


def _unmark(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (path / VERIFIED).unlink()


# ---------------------------------------------------------------------------
# list, prune, copy


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    stamp: datetime
    bytes: int
    schemas: int
    verified: str | None  # when, or None

    @property
    def age_hours(self) -> float:
        return (datetime.now() - self.stamp).total_seconds() / 3600


def list_backups(out_dir: Path) -> list[BackupInfo]:
    """Complete backups (with a manifest) in ``out_dir``, newest first; partial temp dirs are skipped."""
    out: list[BackupInfo] = []
    if not Path(out_dir).is_dir():
        return out
    for d in Path(out_dir).iterdir():
        if d.name.startswith(".") or not d.is_dir() or not (d / MANIFEST).is_file():
            continue
        try:
            stamp = datetime.strptime(d.name, STAMP_FORMAT)
        except ValueError:
            continue
        try:
            manifest = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
            nschemas = len(manifest.get("schemas", []))
        except ValueError:
            nschemas = 0
        verified = None
        vf = d / VERIFIED
        if vf.is_file():
            try:
                v = json.loads(vf.read_text(encoding="utf-8"))
                if v.get("manifest_sha256") == sha256_file(d / MANIFEST):
                    verified = v.get("verified")
            except ValueError:
                pass
        size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
        out.append(BackupInfo(d, stamp, size, nschemas, verified))
    return sorted(out, key=lambda b: b.stamp, reverse=True)


def plan_prune(out_dir: Path, policy: RetentionPolicy) -> list[BackupInfo]:
    backups = list_backups(out_dir)
    doomed = set(prune_set([b.stamp for b in backups], policy))
    return [b for b in backups if b.stamp in doomed]


def remove_backup(info: BackupInfo) -> None:
    """Rename out of sight first (so no half-deleted folder looks complete), then delete."""
    trash = info.path.with_name(f".deleting-{info.path.name}")
    os.rename(info.path, trash)
    shutil.rmtree(trash)


def rsync_copy(path: Path, remote: str) -> None:
    """Copy one backup folder to ``remote`` (an rsync destination), argument list, no shell."""
    exe = shutil.which("rsync")
    if not exe:
        raise UserError("rsync is not installed", hint="apt-get install rsync")
    argv = [exe, "-a", "--partial", "--", str(path), remote.rstrip("/") + "/"]
    commandlog.record("exec", argv)
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        raise OperationFailed(f"rsync to {remote} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")


def lock_name(out_dir: Path) -> str:
    return f"dbbackup:{Path(out_dir).resolve()}"


def run_backup_locked(db: Database, out_dir: Path, state_dir: Path, **kw: Any) -> BackupResult:
    """``run_backup`` under the backup folder's lock, so run, verify and prune never overlap."""
    from djtui.services.locks import exclusive

    with exclusive(state_dir, lock_name(out_dir), purpose="dbbackup run"):
        return run_backup(db, out_dir, **kw)


def verify_backup_locked(path: Path, state_dir: Path, **kw: Any) -> VerifyResult:
    from djtui.services.locks import exclusive

    with exclusive(state_dir, lock_name(Path(path).parent), purpose="dbbackup verify"):
        return verify_backup(path, **kw)


# ---------------------------------------------------------------------------
# restore into the server


class CopyFailed(OperationFailed):
    """The dump was written, its copy to ``dbbackup.remote`` failed; ``path`` is the written backup."""

    def __init__(self, path: Path, message: str):
        self.path = path
        super().__init__(f"backup {path} was written, but {message}")


def run_backup_and_copy(db: Database, out_dir: Path, state_dir: Path, *, remote: str | None,
                        progress: Progress = _quiet, **kw: Any) -> BackupResult:
    """The one backup workflow of the CLI (`dbbackup run`, `maintenance run`) and the app: dump, then copy.

    The copy to ``remote`` (``dbbackup.remote``) runs under the same lock as the dump, so a prune
    cannot remove the folder while rsync reads it. A failed copy raises CopyFailed, which names the
    folder that was written.
    """
    from djtui.services.locks import exclusive

    with exclusive(state_dir, lock_name(out_dir), purpose="dbbackup run"):
        res = run_backup(db, out_dir, progress=progress, **kw)
        if remote:
            progress(f"copying {res.path.name} to {remote}")
            try:
                rsync_copy(res.path, remote)
            except (OperationFailed, UserError) as exc:
                raise CopyFailed(res.path, str(exc)) from None
            progress(f"copied to {remote}")
    return res


def prune_backups(out_dir: Path, policy: RetentionPolicy, state_dir: Path, audit: Any, *,
                  expected: list[str] | None = None, db_user: str | None = None) -> list[Path]:
    """Remove the backups outside ``policy``, under the folder's lock, audited.

    ``expected`` is the plan the user confirmed (folder names): the set is computed again at the
    moment of action and, when it differs, nothing is removed (OperationFailed).
    """
    from djtui.services.locks import exclusive

    removed: list[Path] = []
    with exclusive(state_dir, lock_name(out_dir), purpose="dbbackup prune"):
        doomed = plan_prune(out_dir, policy)
        names = [b.path.name for b in doomed]
        if expected is not None and sorted(names) != sorted(expected):
            raise OperationFailed("the backups outside the policy changed since the plan was shown "
                                  f"(now: {', '.join(names) or 'none'}); nothing was removed, look again")
        if not doomed:
            return removed
        with audit.action("dbbackup-prune", target=str(out_dir), db_user=db_user, out=str(out_dir),
                          backups=names) as rec:
            for b in doomed:
                remove_backup(b)
                removed.append(b.path)
            rec.outcome("ok", removed=len(removed))
    return removed


@dataclass(frozen=True)
class RestoreItem:
    """One dump file and where it goes."""

    source: str  # the schema name in the backup
    target: str  # the schema it is loaded into
    file: str
    sha256: str
    tables: dict[str, int]  # rows per table, from the manifest
    checksums: dict[str, int] | None
    current: dict[str, int] | None  # rows per table the target holds now; None: it does not exist

    @property
    def overwrites(self) -> bool:
        return self.current is not None

    @property
    def replaced(self) -> list[str]:
        """Tables of the target that the dump drops and recreates."""
        return sorted(set(self.current or {}) & set(self.tables))

    @property
    def left_alone(self) -> list[str]:
        """Tables of the target that are not in the backup: the dump does not touch them."""
        return sorted(set(self.current or {}) - set(self.tables))


@dataclass(frozen=True)
class RestorePlan:
    backup: Path
    items: tuple[RestoreItem, ...]
    foreign: tuple[str, ...]  # cross-schema foreign keys and what a rename does to them

    @property
    def renames(self) -> dict[str, str]:
        return {i.source: i.target for i in self.items if i.source != i.target}

    @property
    def overwritten(self) -> list[RestoreItem]:
        return [i for i in self.items if i.overwrites]

    @property
    def confirm_word(self) -> str:
        n = len(self.overwritten)
        return f"OVERWRITE {n} SCHEMA{'S' if n != 1 else ''}" if n else "RESTORE"

    def lines(self) -> list[str]:
        out = [f"backup {self.backup}"]
        for i in self.items:
            rows = sum(i.tables.values())
            where = i.target if i.target == i.source else f"{i.target} (renamed from {i.source})"
            out.append(f"{i.file} -> {where}: {len(i.tables)} table(s), {rows} row(s) in the manifest")
            for t, n in sorted(i.tables.items()):
                now = "" if i.current is None else f" (now {i.current[t]})" if t in i.current else " (new)"
                out.append(f"    {t}: {n}{now}")
            if i.overwrites:
                held = sum((i.current or {}).values())
                out.append(f"    OVERWRITES {i.target}: it exists with {len(i.current or {})} table(s), "
                           f"{held} row(s); {len(i.replaced)} table(s) are dropped and loaded from the dump")
                if i.left_alone:
                    out.append(f"    not in the backup, left as they are: {', '.join(i.left_alone)}")
            else:
                out.append(f"    {i.target} does not exist: it is created")
            stores = sorted(t for t in i.tables if t.startswith("~external_"))
            if stores and i.target != i.source:
                out.append(f"    NOTE {', '.join(stores)}: store objects stay under {i.source}/ in the store; "
                           f"DataJoint 0.14 looks for {i.target}'s blobs under {i.target}/, so they are not found")
        out.extend(self.foreign)
        return out


def _restore_targets(manifest: dict[str, Any], schemas: list[str] | None, prefix: str | None,
                     renames: dict[str, str] | None) -> list[tuple[dict[str, Any], str]]:
    by_name = {s["name"]: s for s in manifest["schemas"]}
    chosen = list(schemas) if schemas else list(by_name)
    for name in chosen:
        if name not in by_name:
            raise UserError(f"schema {name!r} is not in this backup", where="--schema",
                            hint=f"the backup holds: {', '.join(sorted(by_name)) or 'nothing'}")
    if prefix and renames:
        raise UserError("give either --as PREFIX or --rename S=NEW, not both", where="--as/--rename")
    renames = dict(renames or {})
    for src in renames:
        if src not in chosen:
            raise UserError(f"--rename {src}=...: {src!r} is not among the schemas restored", where="--rename",
                            hint=f"restored: {', '.join(chosen)}")
    out = []
    for name in chosen:
        target = (prefix + name) if prefix else renames.get(name, name)
        _check_schema_name(target)
        out.append((by_name[name], target))
    targets = [t for _, t in out]
    if len(set(targets)) != len(targets):
        raise UserError("two schemas would be restored under the same name", where="--as/--rename")
    return out


def _check_schema_name(name: str) -> None:
    if not name or len(name) > 64 or name.lower() in SYSTEM_SCHEMAS or name != name.strip() \
            or any(c in name for c in "`/\\.\0") or not name.isprintable():
        raise UserError(f"{name!r} cannot be a schema name to restore into", where="--as/--rename",
                        hint="1-64 printable characters without ` / \\ . and not a system schema")


def plan_restore(db: Database, path: Path, *, schemas: list[str] | None = None, prefix: str | None = None,
                 renames: dict[str, str] | None = None) -> RestorePlan:
    """What a restore would do: which file goes to which schema, what it overwrites, the foreign keys."""
    path = Path(path)
    manifest = read_manifest(path)
    pairs = _restore_targets(manifest, schemas, prefix, renames)
    existing = set(db.schemas())
    items = []
    for s, target in pairs:
        current = table_counts(db, target) if target in existing else None
        items.append(RestoreItem(s["name"], target, s["file"], s["sha256"], dict(s["tables"]),
                                 s.get("checksums"), current))
    rename = {i.source: i.target for i in items}
    foreign: list[str] = []
    for s, _t in pairs:
        for ref in _foreign_refs(path / s["file"], s["name"]):
            if ref == s["name"]:
                continue
            src_target = rename[s["name"]]
            if ref in rename:
                if rename[ref] != ref or src_target != s["name"]:
                    foreign.append(f"foreign keys {s['name']} -> {ref}: restored as {src_target} -> {rename[ref]}")
            else:
                state = "exists" if ref in existing else "DOES NOT EXIST on this server"
                foreign.append(f"foreign keys {src_target} -> {ref}: {ref} is not restored, they point at the "
                               f"live {ref} ({state})")
    return RestorePlan(path, tuple(items), tuple(foreign))


def _foreign_refs(dump: Path, schema: str) -> set[str]:
    """Schemas that the dump's foreign keys (``REFERENCES `other`.`t```) point at."""
    import re

    refs: set[str] = set()
    pat = re.compile(r"REFERENCES `((?:[^`]|``)+)`\.`")
    with _dump_lines(dump) as lines:
        for kind, line in lines:
            if kind == "sql" and "REFERENCES" in line:
                refs.update(m.replace("``", "`") for m in pat.findall(line))
    return refs


@contextlib.contextmanager
def _dump_lines(dump: Path) -> Iterator[Iterator[tuple[str, str]]]:
    """The decompressed dump as (``"data"`` | ``"sql"``, line) pairs; data lines are the rows of INSERTs.

    The dump tools write each row on its own line (strings have their newlines escaped), and an
    INSERT ends on a line ending in ``);``: so a data line is never mistaken for a statement.
    """
    with open(dump, "rb") as fin:
        proc = subprocess.Popen(decompressor_for(dump), stdin=fin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None

    def gen() -> Iterator[tuple[str, str]]:
        in_insert = False
        for raw in proc.stdout:  # type: ignore[union-attr]
            line = raw.decode("utf-8", "surrogateescape")
            if not in_insert and line.startswith(("INSERT INTO ", "REPLACE INTO ")):
                yield "data", line
                in_insert = not line.rstrip("\n").endswith(";")
            elif in_insert:
                yield "data", line
                in_insert = not line.rstrip("\n").endswith(");")
            else:
                yield "sql", line

    try:
        yield gen()
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()


def _renamer(renames: dict[str, str]) -> Callable[[str], str]:
    """Rewrite one statement line so schema ``S`` becomes ``renames[S]``.

    Quoted names are rewritten where they name a schema: ```S`.`` (a qualified reference: foreign
    keys, views, trigger bodies) and the name in ``CREATE DATABASE``/``USE``/``ALTER DATABASE``.
    Unquoted ``S.x`` is rewritten too: trigger and routine bodies keep the text their author typed.
    """
    import re

    if not renames:
        return lambda line: line
    parts = []
    for old in sorted(renames, key=len, reverse=True):
        q = re.escape("`" + old.replace("`", "``") + "`")
        parts.append((re.compile(r"(?<!\.)" + q + r"(?=\s*\.)"), "`" + renames[old].replace("`", "``") + "`"))
        if re.fullmatch(r"\w+", old):
            parts.append((re.compile(r"(?<![\w.`$@])" + re.escape(old) + r"(?=\.[`\w])"), renames[old]))
    head = re.compile(r"^(?:CREATE DATABASE|USE|(?:/\*!\d+ )?ALTER DATABASE|-- Current Database:)")
    whole = [(re.compile(re.escape("`" + old.replace("`", "``") + "`")), "`" + new.replace("`", "``") + "`")
             for old, new in renames.items()]

    def rewrite(line: str) -> str:
        if head.match(line):
            for pat, new in whole:
                line = pat.sub(lambda _m, new=new: new, line)
            return line
        for pat, new in parts:
            line = pat.sub(lambda _m, new=new: new, line)
        return line

    return rewrite


def _load_dump(tools: Tools, cnf: Path, dump: Path, rewrite: Callable[[str], str]) -> None:
    """Decompress, rewrite statement lines (never data), and feed the client; credentials in ``cnf``."""
    client = [tools.client, f"--defaults-extra-file={cnf}", "--max-allowed-packet=512M", "--batch"]
    commandlog.record("exec", [*decompressor_for(dump), "<", str(dump), "|", *client])
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(client, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        assert proc.stdin is not None
        broken = False
        try:
            with _dump_lines(dump) as lines:
                for kind, line in lines:
                    out = line if kind == "data" else rewrite(line)
                    try:
                        proc.stdin.write(out.encode("utf-8", "surrogateescape"))
                    except BrokenPipeError:
                        broken = True
                        break
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            rc = proc.wait()
        if rc or broken:
            err.seek(0)
            msg = err.read().decode(errors="replace").strip()
            raise OperationFailed(commandlog.mask(f"{Path(tools.client).name} failed (exit {rc}) loading "
                                                  f"{dump.name}: {msg[-800:] or 'no message'}"))


@dataclass
class RestoreResult:
    plan: RestorePlan
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    tables_checked: int = 0
    seconds: float = 0.0
    safety_backup: Path | None = None  # the overwritten schemas as they were, when a safety dump was made


def restore_lock_name(db: Database) -> str:
    return f"dbbackup-restore:{db.settings.address}"


def restore_backup(db: Database, plan: RestorePlan, state_dir: Path, audit: Any, *,
                   progress: Progress = _quiet, db_user: str | None = None,
                   safety_dir: Path | None = None) -> RestoreResult:
    """Load the plan's dumps into the server: locked, re-checked, hashes first, counts after, audited.

    At the moment of action the plan is made again and must overwrite exactly the schemas the
    confirmed plan named (else OperationFailed, nothing loaded). Every file's sha256 must match the
    manifest before the first one is loaded. After loading, each table's COUNT(*) (and CHECKSUM TABLE
    when the manifest has one) is compared with the manifest.

    With ``safety_dir``, the schemas about to be overwritten are first dumped there (a normal djtui
    backup, ``safety_dir/<stamp>``, restorable the same way): a restore that loads the wrong backup,
    or fails half-way, loses nothing.
    """
    from djtui.services.locks import exclusive

    t0 = time.monotonic()
    result = RestoreResult(plan)
    with exclusive(state_dir, restore_lock_name(db), purpose="dbbackup restore"), \
            exclusive(state_dir, lock_name(plan.backup.parent), purpose="dbbackup restore"):
        schemas = [i.source for i in plan.items]
        now = plan_restore(db, plan.backup, schemas=schemas, renames={i.source: i.target for i in plan.items})
        if [i.target for i in now.overwritten] != [i.target for i in plan.overwritten]:
            raise OperationFailed("the schemas this restore would overwrite changed since the plan was shown "
                                  f"(now: {', '.join(i.target for i in now.overwritten) or 'none'}); "
                                  "nothing was loaded, look at the plan again")
        for i in plan.items:
            f = plan.backup / i.file
            if not f.is_file():
                raise OperationFailed(f"{f}: missing; nothing was loaded")
            if sha256_file(f) != i.sha256:
                raise OperationFailed(f"{f}: sha256 differs from the manifest; nothing was loaded")
        progress(f"hashes: {len(plan.items)}/{len(plan.items)} match the manifest")
        tools = find_tools(prefer_zstd=False)
        rewrite = _renamer(plan.renames)
        if safety_dir is not None and plan.overwritten:
            progress(f"dumping the {len(plan.overwritten)} schema(s) about to be overwritten to {safety_dir}")
            result.safety_backup = run_backup(db, Path(safety_dir), schemas=[i.target for i in plan.overwritten],
                                              full_server=False).path
        with audit.action("dbbackup-restore", target=", ".join(i.target for i in plan.items), db_user=db_user,
                          backup=str(plan.backup), schemas={i.source: i.target for i in plan.items},
                          overwrites={i.target: sum((i.current or {}).values()) for i in plan.overwritten},
                          safety_backup=str(result.safety_backup) if result.safety_backup else None) as rec:
            with defaults_file(db.settings) as cnf:
                for n, i in enumerate(plan.items, 1):
                    progress(f"[{n}/{len(plan.items)}] loading {i.file} into {i.target}")
                    _load_dump(tools, cnf, plan.backup / i.file, rewrite)
            for i in plan.items:
                result.problems.extend(_compare(db, i, result))
            result.ok = not result.problems
            rec.outcome("ok" if result.ok else "mismatch", tables=result.tables_checked,
                        problems=result.problems[:20])
    result.seconds = time.monotonic() - t0
    return result


def _compare(db: Database, item: RestoreItem, result: RestoreResult) -> list[str]:
    problems = []
    got = table_counts(db, item.target)
    for table, expected in item.tables.items():
        if table not in got:
            problems.append(f"{item.target}.{table}: missing after restore")
            continue
        result.tables_checked += 1
        if got[table] != int(expected):
            problems.append(f"{item.target}.{table}: {got[table]} rows after restore, manifest says {expected}")
        if item.checksums and table in item.checksums:
            row = db.query(f"CHECKSUM TABLE {qident(item.target)}.{qident(table)} EXTENDED")
            if row and row[0][1] is not None and int(row[0][1]) != int(item.checksums[table]):
                problems.append(f"{item.target}.{table}: CHECKSUM TABLE differs from the manifest")
    return problems
