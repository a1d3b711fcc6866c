"""Backups on PostgreSQL: ``pg_dump --format=custom`` per schema, ``pg_dumpall --globals-only``, ``pg_restore``.

Why the custom format (``-Fc``) and not plain SQL: pg_dump compresses it itself (no compressor pipe
to fail), ``pg_restore --list`` reads its table of contents without touching the data, a restore can
pick sections and objects, run with ``--single-transaction`` or in parallel (``-j``), and emit plain
SQL again (``pg_restore -f -``) when a rename has to rewrite the statements. A plain dump can only
be fed to psql as a whole. The restore therefore always goes through ``pg_restore``: straight into
the scratch server for a verification, and as SQL text into one ``psql --single-transaction`` for a
live restore, so a restore that fails half-way leaves the server as it was (PostgreSQL's DDL is
transactional). Both load in two passes over the dumps, every schema without its foreign keys, then
every schema's foreign keys (picked by ``pg_restore --use-list``): a per-schema dump holds keys onto
other schemas, which load whichever schema sorts first.

Every schema is dumped from one snapshot: a connection exports it (``pg_export_snapshot()`` in a
REPEATABLE READ READ ONLY transaction held open while the dumps run), each ``pg_dump`` reads it with
``--snapshot``, and the manifest's exact row counts are taken in that same snapshot, so the counts
and the dumps agree and the schemas agree with each other (pg_dump ``-j`` does the same internally).

The roles (``pg_dumpall --globals-only``) are plain SQL, compressed like the MySQL files; as a
non-superuser pg_dumpall cannot read ``pg_authid``, so it retries with ``--no-role-passwords``.
Credentials reach the tools through the backend's ``.pgpass`` named in a password-free conninfo.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from djtui.domain.dbbackup import POSTGRES_NAMES
from djtui.domain.dialects import POSTGRES
from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog
from djtui.services.backends import Backend
from djtui.services.backends.postgres import find_client_tool
from djtui.services.dbbackup.tools import Progress, decompressor_for, pipe_to_file, tool_version, tools_for

if TYPE_CHECKING:
    from djtui.domain.dbbackup import RestoreItem, RestorePlan
    from djtui.services.database import Database

SUFFIX = ".dump"  # pg_dump's custom format
DUMP_OPTIONS = ["--format=custom"]  # pg_dump's own compression (zlib, its default level)
GLOBALS_FILE = "_globals.sql"


def schema_pattern(schema: str) -> str:
    """``--schema`` takes a pattern (``*``, ``?``, ``.``, case folding); double quotes make it literal."""
    return '"' + schema.replace('"', '""') + '"'


def _run(argv: list[str], what: str) -> str:
    commandlog.record("exec", argv)
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace")
    if proc.returncode:
        raise OperationFailed(commandlog.mask(f"{Path(argv[0]).name} failed (exit {proc.returncode}) {what}: "
                                              f"{proc.stderr.strip()[-800:] or 'no message'}"))
    return proc.stdout


class PgSnapshot:
    """A REPEATABLE READ READ ONLY transaction whose snapshot every pg_dump of the backup reads."""

    def __init__(self, db: Database):
        self.db = db
        self.conn = db.connect()
        self._lock = threading.Lock()
        with db.watched(self.conn, "the backup's snapshot"), db.backend.cursor(self.conn) as cur:
            commandlog.record("sql", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot()")
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cur.execute("SELECT pg_export_snapshot()")
            self.snapshot = str(cur.fetchone()[0])

    def counts(self, schema: str) -> dict[str, int]:
        """Exact COUNT(*) per base table, in the snapshot the dumps read."""
        tables = self.db.backend.tables([schema])
        out: dict[str, int] = {}
        with self._lock, self.db.watched(self.conn, f"counting the rows of {schema} in the backup's snapshot"), \
                self.db.backend.cursor(self.conn) as cur:
            for _s, name in tables:
                sql = f"SELECT COUNT(*) FROM {self.db.dialect.table(schema, name)}"
                commandlog.record("sql", sql)
                cur.execute(sql)
                out[name] = int(cur.fetchone()[0])
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


class PgFormat:
    """pg_dump's custom format per schema, the roles from pg_dumpall, read back with pg_restore."""

    suffix = SUFFIX
    counts_note = "row counts are exact COUNT(*) in the snapshot that every schema's pg_dump reads"
    name_rules = POSTGRES_NAMES
    server_label = "the roles"

    def __init__(self, backend: Backend):
        self.backend = backend
        self._tools: dict[str, str] = {}
        self._plain: Any = None
        self._roles = False  # the scratch server holds the backup's roles

    def tool(self, name: str) -> str:
        if name not in self._tools:
            found = find_client_tool(name)
            if not found:
                raise UserError(f"{name} is not installed (the PostgreSQL client tools)",
                                hint="install them, e.g. `apt-get install postgresql-client`")
            self._tools[name] = found
        return self._tools[name]

    @property
    def plain(self) -> Any:
        """zstd (else gzip) for the plain-SQL globals file."""
        if self._plain is None:
            self._plain = tools_for(self.backend)
        return self._plain

    @property
    def server_file(self) -> str:
        return GLOBALS_FILE + self.plain.suffix.removeprefix(".sql")

    @contextlib.contextmanager
    def session(self, db: Database) -> Iterator[PgSnapshot]:
        snap = PgSnapshot(db)
        try:
            yield snap
        finally:
            snap.close()

    def dump_schema(self, cred: Path, schema: str, target: Path, session: Any) -> None:
        argv = [*self.backend.tool_argv(self.tool("pg_dump"), cred), *DUMP_OPTIONS,
                f"--schema={schema_pattern(schema)}", f"--file={target}"]
        if getattr(session, "snapshot", None):
            argv.append(f"--snapshot={session.snapshot}")
        _run(argv, f"dumping schema {schema}")

    def dump_server(self, db: Database, cred: Path, target: Path) -> None:
        base = [*self.backend.tool_argv(self.tool("pg_dumpall"), cred), "--globals-only"]
        try:
            pipe_to_file(base, self.plain.compressor, target)
        except OperationFailed as exc:
            if "pg_authid" not in str(exc):
                raise
            pipe_to_file([*base, "--no-role-passwords"], self.plain.compressor, target)

    def describe(self) -> dict[str, Any]:
        names = ("pg_dump", "pg_dumpall", "pg_restore", "psql")
        versions = {n: tool_version(self.tool(n)) for n in names}
        versions[Path(self.plain.compressor[0]).name] = tool_version(self.plain.compressor[0])
        return {"tool": "pg_dump", "options": [*DUMP_OPTIONS, "--schema=S", "--snapshot=<one exported snapshot>"],
                "compression": "pg_dump custom format (zlib); globals: " + self.plain.suffix.rsplit(".", 1)[-1],
                "file_format": "custom", "globals": "pg_dumpall --globals-only", "tool_versions": versions}

    def sql_text(self, dump: Path, *extra: str) -> list[str]:
        """``pg_restore -f -``: the archive as the SQL script psql would run."""
        return [self.tool("pg_restore"), *extra, "--file=-", str(dump)]

    def foreign_refs(self, dump: Path) -> set[str]:
        text = _run(self.sql_text(dump, "--section=post-data"), f"reading {dump.name}")
        return {_unquote(m) for m in _REFERENCES.findall(text)}

    @staticmethod
    def scratch_server(base_dir: Path | None) -> Any:
        from djtui.services.servers.postgres import PrivatePostgres

        return PrivatePostgres(base_dir)

    def prepare_scratch(self, settings: Any, cred: Path, backup: Path, manifest: dict[str, Any]) -> None:
        """Load the backup's roles (pg_dumpall's file) into the scratch server first, so the schema dumps
        then load with their owners and grants: a verification proves those restorable too. The scratch's
        own admin role is left as it is (its password is the one this verification connects with)."""
        self._roles = False
        server_dump = manifest.get("server_dump")
        if not server_dump:
            return
        f = backup / server_dump["file"]
        with open(f, "rb") as fin:
            unpacked = subprocess.run(decompressor_for(f), stdin=fin, capture_output=True)
        if unpacked.returncode:
            raise OperationFailed(f"{f.name} does not decompress: {unpacked.stderr.decode(errors='replace')[-300:]}")
        text = unpacked.stdout
        admin = re.compile(r"^(?:CREATE|ALTER) ROLE (?:" + re.escape(settings.user) + "|"
                           + re.escape('"' + settings.user.replace('"', '""') + '"') + r")[ ;]")
        sql = b"".join(ln for ln in text.splitlines(keepends=True)
                       if not admin.match(ln.decode("utf-8", "surrogateescape")))
        psql = [*self.backend.tool_argv(self.tool("psql"), cred), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "--single-transaction", "--file=-"]
        commandlog.record("exec", [*decompressor_for(f), "<", str(f), "|", *psql])
        proc = subprocess.run(psql, input=sql, capture_output=True)
        if proc.returncode:
            raise OperationFailed(commandlog.mask(f"psql failed (exit {proc.returncode}) loading the roles of "
                                                  f"{f.name}: {proc.stderr.decode(errors='replace')[-800:]}"))
        self._roles = True

    def load_scratch(self, cred: Path, dumps: Mapping[str, Path], progress: Progress) -> dict[Path, OperationFailed]:
        """pg_restore straight into the scratch server, pass by pass over every dump (``SCRATCH_PASSES``):
        every schema but its foreign keys, then every foreign key, so a key onto another schema of the
        backup finds its table and that table's primary key, whichever schema sorts first. Each pg_restore
        runs in one transaction and stops at the first error; a dump that failed is left out of the later
        passes and named in the answer. A foreign key onto a schema that
        is not in the backup (a backup of some schemas) has nothing to point at here: it is left out, and
        progress says so.

        With the backup's roles loaded (``prepare_scratch``) owners and grants are restored as well; a
        backup without the roles file (``--schemas-only``) is loaded without them."""
        keep = [] if self._roles else ["--no-owner", "--no-privileges"]
        base = [*self.backend.tool_argv(self.tool("pg_restore"), cred), *keep, "--exit-on-error",
                "--single-transaction"]
        failed: dict[Path, OperationFailed] = {}
        with tempfile.TemporaryDirectory(prefix="djtui-pglist-") as folder:
            passes, outside = self.passes(SCRATCH_PASSES, list(dumps.values()), Path(folder), set(dumps))
            for line in outside:
                progress(f"not checked: {line}")
            for what, options in passes:
                todo = [(d, o) for d, o in options if d not in failed]
                for n, (dump, opts) in enumerate(todo, 1):
                    progress(f"[{n}/{len(todo)}] restoring {what} of {dump.name}")
                    try:
                        _run([*base, *opts, str(dump)], f"restoring {what} of {dump.name}")
                    except OperationFailed as exc:
                        failed[dump] = exc
        return failed

    def passes(self, passes: Sequence[tuple[str, tuple[str, ...], str | None]], dumps: Sequence[Path],
               folder: Path, inside: Collection[str] | None = None
               ) -> tuple[list[tuple[str, list[tuple[Path, list[str]]]]], list[str]]:
        """Each pass's pg_restore options per dump. A pass that names a list (``"fk"``: the dump's foreign
        keys, ``"rest"``: everything else) reads a list file written from ``pg_restore --list`` into
        ``folder``; a dump without foreign keys is left out of the ``"fk"`` pass. With ``inside`` (the
        schemas the dumps restore), the foreign keys onto other schemas are left out of the list and
        named in the second answer."""
        lists: dict[tuple[Path, str], Path | None] = {}
        outside: list[str] = []
        for n, dump in enumerate(dumps):
            entries = _run([self.tool("pg_restore"), "--list", str(dump)], f"listing {dump.name}").splitlines()
            fk = [e for e in entries if _FK_ENTRY.match(e)]
            if fk and inside is not None:
                skip = self._keys_outside(dump, folder / f"{n}.all-fk.list", fk, inside)
                fk = [e for e in fk if e.split(";", 1)[0] not in skip]
                outside.extend(skip.values())
            for kind, keep in (("fk", fk), ("rest", [e for e in entries if not _FK_ENTRY.match(e)])):
                lists[(dump, kind)] = None
                if keep:
                    lists[(dump, kind)] = folder / f"{n}.{kind}.list"
                    lists[(dump, kind)].write_text("\n".join(keep) + "\n")
        out = []
        for what, options, kind in passes:
            per = []
            for dump in dumps:
                listed = lists[(dump, kind)] if kind else None
                if kind is None or listed is not None:
                    per.append((dump, [*options, *([f"--use-list={listed}"] if listed else [])]))
            out.append((what, per))
        return out, outside

    def _keys_outside(self, dump: Path, listfile: Path, fk: list[str], inside: Collection[str]) -> dict[str, str]:
        """The dump's foreign keys onto schemas not in ``inside``: TOC id -> what they are, read from the
        verbose SQL text of the keys alone (each entry follows its ``-- TOC entry N`` line)."""
        listfile.write_text("\n".join(fk) + "\n")
        text = _run(self.sql_text(dump, "--verbose", f"--use-list={listfile}"), f"reading {dump.name}")
        parts = re.split(r"^-- TOC entry (\d+) ", text, flags=re.M)
        out = {}
        for toc, body in zip(parts[1::2], parts[2::2], strict=True):
            refs = sorted({_unquote(m) for m in _REFERENCES.findall(body)} - set(inside))
            if refs:
                name = re.search(r"^-- Name: (.*?); Type: FK CONSTRAINT; Schema: (.*?);", body, flags=re.M)
                what = f"{name.group(2)}.{name.group(1)}" if name else f"TOC entry {toc}"
                out[toc] = f"foreign key {what} of {dump.name} points at {', '.join(refs)}, not in the backup"
        return out

    def plan_lines(self, db: Database, items: Sequence[RestoreItem]) -> list[str]:
        """What the plan shows beside the files: one transaction, the order, the foreign keys kept from outside,
        the views in other schemas that would make it fail."""
        for i in items:  # a new name (--as, --rename) over 63 bytes is refused now, not cut by the server
            db.dialect.ident(i.target)
        lines = ["all schemas load in ONE transaction: if any statement fails, nothing is changed"]
        if len(items) > 1:
            lines.append("every schema loads without its foreign keys first, then every schema's foreign keys, "
                         "so keys between the restored schemas find their tables")
        for s, t, name, definition in outside_foreign_keys(db, items):
            lines.append(f"foreign key {name} of {s}.{t} ({definition}): not in the backup; dropped before the "
                         "load and declared again after it (if the restored rows break it, nothing is changed)")
        for vs, vn, kind, tables in dependent_views(db, items):
            ref = db.dialect.table(vs, vn)
            lines.append(
                f"WARNING: {kind} {vs}.{vn} depends on {', '.join(tables)}, which the restore drops and makes "
                f"again; PostgreSQL refuses to drop a table a {kind} uses, so the restore would fail (and change "
                f"nothing). Before restoring: save its definition (SELECT pg_get_viewdef({db.dialect.literal(ref)}"
                f"::regclass, true)), DROP {kind.upper()} {ref}, restore, then CREATE {kind.upper()} {ref} AS "
                "that definition again (and its grants)")
        return lines

    def load_live(self, db: Database, cred: Path, plan: RestorePlan, progress: Progress) -> None:
        """Every dump of the plan in ONE psql transaction: all loaded, or nothing changed.

        The order: the foreign keys on the tables the restore replaces are dropped first (those of tables
        it leaves alone are declared again at the end, the dumps declare the others); then every schema
        but its foreign keys (``--clean``: what the dump holds is dropped and made again), then every
        schema's foreign keys. A key between two restored schemas thus never meets a table that is not
        there yet, nor holds a table that is about to be dropped, in either direction."""
        kept = outside_foreign_keys(db, plan.items)
        head = [f"ALTER TABLE {db.dialect.table(s, t)} DROP CONSTRAINT {db.dialect.ident(n)};\n"
                for s, t, n in [(s, t, n) for s, t, n, _d in kept] + inside_foreign_keys(db, plan.items)]
        tail = [f"ALTER TABLE {db.dialect.table(s, t)} ADD CONSTRAINT {db.dialect.ident(n)} {d};\n"
                for s, t, n, d in kept]
        psql = [*self.backend.tool_argv(self.tool("psql"), cred), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "--single-transaction", "--file=-"]
        rewrite = pg_renamer(plan.renames)
        with tempfile.TemporaryDirectory(prefix="djtui-pglist-") as folder:
            target = {plan.backup / i.file: i.target for i in plan.items}
            passes, _ = self.passes(LIVE_PASSES, list(target), Path(folder))
            sources = [(f"{target[dump]} ({what})", self.sql_text(dump, *opts)) for what, per in passes
                       for dump, opts in per]
            commandlog.record("exec", [*sources[0][1], "|", "...", "|", *psql] if sources else psql)
            _feed(psql, head, sources, tail, rewrite, progress)


# (what, pg_restore options, list) per pass; every dump goes through a pass before the next pass starts.
# The first pass is each dump whole but its foreign keys (tables, rows, then keys and indexes, in one
# transaction: PostgreSQL writes no WAL for rows copied into a table made in the same transaction when
# wal_level is minimal, as on the scratch server), the second every dump's foreign keys.
SCRATCH_PASSES = (("the tables, rows, keys and indexes", (), "rest"), ("the foreign keys", (), "fk"))
LIVE_PASSES = (("tables, rows, keys and indexes", ("--clean", "--if-exists"), "rest"), ("foreign keys", (), "fk"))
_FK_ENTRY = re.compile(r"^\d+; \d+ \d+ FK CONSTRAINT ")
_REFERENCES = re.compile(r'REFERENCES ("(?:[^"]|"")+"|[^\s."(]+)\.')
_COPY = re.compile(r"^COPY .* FROM stdin;\n?$")


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


_DEPENDENT_VIEWS_SQL = """
SELECT DISTINCT vn.nspname, v.relname, v.relkind, tn.nspname, t.relname
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class v ON v.oid = r.ev_class
JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'n'
  AND v.oid <> t.oid AND vn.nspname <> tn.nspname AND tn.nspname = %s AND t.relname = ANY(%s)
ORDER BY 1, 2, 4, 5"""


def dependent_views(db: Database, items: Sequence[RestoreItem]) -> list[tuple[str, str, str, list[str]]]:
    """Views (and materialized views) in another schema that use a table the restore drops and makes
    again: (view schema, view, "view" | "materialized view", ["schema.table", ...]). The dump's own
    views are dropped and made again with its tables; one in another schema blocks the DROP TABLE."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for i in items:
        if not i.replaced:
            continue
        for vs, vn, kind, ts, tn in db.query(_DEPENDENT_VIEWS_SQL, (i.target, list(i.replaced))):
            kind = "materialized view" if kind in ("m", b"m") else "view"
            found.setdefault((vs, vn, kind), []).append(f"{ts}.{tn}")
    return [(vs, vn, kind, tables) for (vs, vn, kind), tables in found.items()]


def outside_foreign_keys(db: Database, items: Sequence[RestoreItem]) -> list[tuple[str, str, str, str]]:
    """Foreign keys onto tables the restore drops and recreates, declared by tables it leaves alone
    (another schema, or a table of the target that is not in the backup): dropped before the load and
    declared again after it, as they were (PostgreSQL will not drop a table other tables reference)."""
    dropped = {(i.target, t) for i in items for t in i.replaced}
    out = []
    for i in items:
        if not i.replaced:
            continue
        for child_schema, child, name, definition in db.backend.foreign_key_definitions(i.target, i.replaced):
            if (child_schema, child) not in dropped:
                out.append((child_schema, child, name, definition))
    return sorted(set(out))


def inside_foreign_keys(db: Database, items: Sequence[RestoreItem]) -> list[tuple[str, str, str]]:
    """Foreign keys the server holds now on the tables the restore drops and recreates (schema, table,
    name): dropped before the load, so no table of another restored schema is held by them; the dumps
    declare theirs again after every schema's rows are in."""
    dropped = {(i.target, t) for i in items for t in i.replaced}
    if not dropped:
        return []
    return sorted({(k.schema, k.table, k.name) for k in db.backend.foreign_keys(sorted({s for s, _t in dropped}))
                   if (k.schema, k.table) in dropped})


def pg_renamer(renames: dict[str, str]) -> Callable[[str], str]:
    """Rewrite one statement line of pg_restore's SQL so schema ``S`` becomes ``renames[S]``.

    Where a name stands for a schema: qualified (``S.t``, ``"S".t``, also inside ``'S.seq'::regclass``
    and function bodies) and after ``SCHEMA`` (CREATE/ALTER/DROP/COMMENT ON/GRANT ON/IN SCHEMA). pg_dump
    quotes a name only when it must; the new name is always written quoted."""
    if not renames:
        return lambda line: line
    lookup: dict[str, str] = {}
    for old in sorted(renames, key=len, reverse=True):
        new = POSTGRES.ident(renames[old])  # over 63 bytes: a UserError, never a name the server cuts
        lookup['"' + old.replace('"', '""') + '"'] = new
        if re.fullmatch(r"[a-z_][a-z0-9_$]*", old):
            lookup[old] = new
    name = "(" + "|".join(re.escape(f) for f in sorted(lookup, key=len, reverse=True)) + ")"
    qualified = re.compile(r'(?<![\w$".])' + name + r"(?=\.)")
    keyword = re.compile(r"\bSCHEMA ((?:IF (?:NOT )?EXISTS )?)" + name + r'(?![\w$"])')

    def rewrite(line: str) -> str:
        line = keyword.sub(lambda m: "SCHEMA " + m.group(1) + lookup[m.group(2)], line)
        return qualified.sub(lambda m: lookup[m.group(1)], line)

    return rewrite


_DROP_SCHEMA = re.compile(r"^DROP SCHEMA IF EXISTS .*;\n?$")
_CREATE_SCHEMA = re.compile(r"^CREATE SCHEMA (?!IF NOT EXISTS)")


def _statement(line: str, rewrite: Callable[[str], str]) -> str:
    """A statement line as the live restore runs it: renamed; the schema kept (tables of the target
    that are not in the backup stay), created when missing."""
    line = rewrite(line)
    if _DROP_SCHEMA.match(line):
        return ""
    return _CREATE_SCHEMA.sub("CREATE SCHEMA IF NOT EXISTS ", line)


def _pump(source: list[str], sink: Any, rewrite: Callable[[str], str]) -> None:
    """pg_restore's SQL into ``sink``: COPY data lines as they are, statement lines rewritten."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(source, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        in_copy = False
        try:
            for raw in proc.stdout:
                if in_copy:
                    sink.write(raw)
                    in_copy = raw != b"\\.\n"
                    continue
                line = raw.decode("utf-8", "surrogateescape")
                sink.write(_statement(line, rewrite).encode("utf-8", "surrogateescape"))
                in_copy = bool(_COPY.match(line))
        finally:
            proc.stdout.close()
            rc = proc.wait()
        if rc:
            err.seek(0)
            raise OperationFailed(f"pg_restore failed (exit {rc}) reading {source[-1]}: "
                                  f"{err.read().decode(errors='replace').strip()[-800:]}")


def _feed(psql: list[str], head: list[str], sources: list[tuple[str, list[str]]], tail: list[str],
          rewrite: Callable[[str], str], progress: Progress) -> None:
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(psql, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        assert proc.stdin is not None
        failure: BaseException | None = None
        try:
            proc.stdin.write("".join(head).encode())
            for n, (target, source) in enumerate(sources, 1):
                progress(f"[{n}/{len(sources)}] loading {Path(source[-1]).name} into {target}")
                _pump(source, proc.stdin, rewrite)
            proc.stdin.write("".join(tail).encode())
        except BrokenPipeError:
            pass
        except OperationFailed as exc:
            failure = exc
            proc.kill()  # psql rolls the open transaction back
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            rc = proc.wait()
        if failure is not None:
            raise OperationFailed(f"{failure}; nothing was changed (one transaction, rolled back)")
        if rc:
            err.seek(0)
            msg = err.read().decode(errors="replace").strip()
            raise OperationFailed(commandlog.mask(f"psql failed (exit {rc}) loading the backup; nothing was changed "
                                                  f"(one transaction, rolled back): {msg[-800:] or 'no message'}"))
