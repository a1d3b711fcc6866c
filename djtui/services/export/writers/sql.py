"""Export writers (the SQL file) and ``verify``: load an export into a fresh server and compare.

The SQL file is written by djtui itself: ``CREATE DATABASE`` / ``CREATE TABLE`` as the server
shows them, rows as batched INSERTs, tables parents-first, so the ``mariadb``/``mysql`` client
loads it into an empty server with foreign-key checks on. ``manifest.json`` beside it holds
each table's row count and an order-independent content checksum, which ``verify`` recomputes
on the loaded copy.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from djtui.domain.cascade import quote_ident, quote_table, split_name
from djtui.errors import OperationFailed, UserError
from djtui.services.export import (
    STATEMENT_TIMEOUT_S,
    ExportSession,
    NeededFile,
    connect_export,
    db_errors,
    literal_row_expression,
    needed_files,
    stream_literal_rows,
    table_columns,
)

SQL_FILE = "export.sql"
MANIFEST = "manifest.json"
FILES_LIST = "files.tsv"
_MASK = (1 << 64) - 1


# ---------------------------------------------------------------------------
# charset / collation stripping, outside quoted text only

_CHARSET = re.compile(
    r"\s+(?:DEFAULT\s+)?(?:CHARSET|CHARACTER\s+SET)\s*=\s*\w+"
    r"|\s+(?:DEFAULT\s+)?COLLATE\s*=\s*\w+"
    r"|\s+(?:DEFAULT\s+)?(?:CHARACTER\s+SET)\s+\w+"
    r"|\s+(?:DEFAULT\s+)?COLLATE\s+\w+", re.I)
_QUOTED = re.compile(r"('(?:[^'\\]|\\.|'')*'|`(?:[^`]|``)*`|\"(?:[^\"\\]|\\.)*\")", re.S)
# a column whose collation is named without its character set (the table's default): pinned, so the
# column keeps its meaning (``utf8mb4_bin`` keys stay case-sensitive) whatever the target's default is
_BARE_COLLATE = re.compile(
    r"^(?P<head>[ \t]*`(?:[^`]|``)+`[ \t]+\w+(?:\([^)\n]*\))?(?:[ \t]+(?:unsigned|zerofill|binary))*)"
    r"[ \t]+COLLATE[ \t]+(?P<coll>[A-Za-z0-9]+_\w+)", re.I | re.M)


def _outside_quotes(text: str, edit: Callable[[str], str]) -> str:
    parts = _QUOTED.split(text)
    return "".join(p if i % 2 else edit(p) for i, p in enumerate(parts))


def _column_list_end(ddl: str) -> int | None:
    """Index of the parenthesis that closes a CREATE TABLE's column list (None: there is none)."""
    masked = _QUOTED.sub(lambda m: "_" * len(m.group()), ddl)
    depth = 0
    for i, ch in enumerate(masked):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def strip_charset(ddl: str) -> str:
    """Remove the table's (or database's) default ``CHARSET=x``, ``COLLATE=x``, ``CHARACTER SET x``.

    Only the options after the column list: a column's own ``CHARACTER SET`` / ``COLLATE`` changes
    what its values mean (a ``utf8mb4_bin`` key holds both ``a`` and ``A``), so it always stays; one
    that names only a collation gets its character set written out, as the default it relied on is gone.
    Comments and identifiers are left alone (the seed's ``sed`` would edit them too).
    """
    end = _column_list_end(ddl)
    if end is None:  # CREATE DATABASE: all of it is options
        return _outside_quotes(ddl, lambda p: _CHARSET.sub("", p))
    head = _BARE_COLLATE.sub(lambda m: f"{m['head']} CHARACTER SET {m['coll'].split('_', 1)[0]} COLLATE {m['coll']}",
                             ddl[:end + 1])
    return head + _outside_quotes(ddl[end + 1:], lambda p: _CHARSET.sub("", p))


_AUTO_INC = re.compile(r"\s+AUTO_INCREMENT=\d+")


# ---------------------------------------------------------------------------
# checksums


@dataclass
class TableSum:
    """Row count and an order-independent checksum: the sum of xxh3 hashes of each row's SQL literal
    (UTF-8), so ``verify`` can read the loaded copy in any order."""

    rows: int = 0
    checksum: int = 0

    def add(self, rows: list[bytes]) -> None:
        self.rows += len(rows)
        self.checksum = (self.checksum + sum(map(xxhash.xxh3_64_intdigest, rows))) & _MASK


def table_sum(conn: Any, table: str) -> TableSum:
    """Count and checksum of a whole table, as ``verify`` sees the loaded copy (generated columns
    left out, as in the export's INSERTs: the copy computes them again)."""
    out = TableSum()
    expr = literal_row_expression(table_columns(conn, table), "t")
    for rows in stream_literal_rows(conn, expr, f"{quote_table(table)} AS t", 5000):
        out.add(rows)
    return out


# ---------------------------------------------------------------------------
# the list of stored files the rows reference (every export directory has one)


def write_files_list(session: ExportSession, out_dir: Path, stores: Sequence[Any] = ()) -> dict[str, Any]:
    """``files.tsv``: store, path, size, exists, table and problem of every stored object the exported
    rows reference, checked in the configured stores; returns the manifest's summary of it."""
    found: list[NeededFile] = needed_files(session, stores)
    tmp = out_dir / (FILES_LIST + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(("store", "path", "size", "exists", "table", "problem"))
        for f in found:
            exists = {True: "yes", False: "MISSING", None: "not checked"}[f.exists]
            w.writerow((f.store, f.path, "" if f.size is None else f.size, exists, f.table, f.problem or ""))
    os.replace(tmp, out_dir / FILES_LIST)
    return {"list": FILES_LIST, "count": len(found), "bytes": sum(f.size or 0 for f in found),
            "missing": sum(1 for f in found if f.exists is False),
            "not_checked": sum(1 for f in found if f.exists is None)}


# ---------------------------------------------------------------------------
# the SQL writer


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _write_sql_file(session: ExportSession, out_dir: Path, *, strip: bool, batch_rows: int,
                    progress: Callable[[str, int], None] | None) -> list[dict[str, Any]]:
    """``export.sql`` in ``out_dir``; returns each table's manifest entry (rows, checksum)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SQL_FILE
    tmp = out_dir / (SQL_FILE + ".part")
    tables_meta = []
    with open(tmp, "wb") as fh:
        fh.write(b"-- djtui export\n"
                 b"SET NAMES utf8mb4;\nSET TIME_ZONE = '+00:00';\n"
                 b"SET SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO';\nSET UNIQUE_CHECKS = 0;\n\n")
        created: set[str] = set()
        current_db = None
        for table in session.plan.tables:
            db, name = split_name(table)
            if db not in created:
                ddl = session.show_create_database(db)
                ddl = ddl.replace("CREATE DATABASE ", "CREATE DATABASE IF NOT EXISTS ", 1) \
                    if "IF NOT EXISTS" not in ddl else ddl
                fh.write(_utf8((strip_charset(ddl) if strip else ddl) + ";\n"))
                created.add(db)
            if db != current_db:
                fh.write(_utf8(f"USE {quote_ident(db)};\n"))
                current_db = db
            ddl = _AUTO_INC.sub("", session.show_create_table(table))
            fh.write(_utf8(f"\n-- {table}\n{strip_charset(ddl) if strip else ddl};\n"))
            cols = "(" + ", ".join(quote_ident(c) for c in session.columns(table)) + ")"
            head = _utf8(f"INSERT INTO {quote_ident(name)} {cols} VALUES\n")
            acc = TableSum()
            own_parent = table in session.plan.self_referencing  # its rows come in key order, not parents first
            if own_parent:
                fh.write(b"SET FOREIGN_KEY_CHECKS = 0;\n")
            for rows in session.iter_literal_rows(table, batch_rows):
                acc.add(rows)
                fh.write(head + b",\n".join(rows) + b";\n")
            if own_parent:  # the cascade closed the table under its own key: every parent row is in
                fh.write(b"SET FOREIGN_KEY_CHECKS = 1;\n")
            tables_meta.append({"table": table, "rows": acc.rows, "checksum": f"{acc.checksum:016x}"})
            if progress:
                progress(table, acc.rows)
    os.replace(tmp, path)
    return tables_meta


def write_sql(session: ExportSession, out_dir: Path, *, strip: bool = False, batch_rows: int = 1000,
              progress: Callable[[str, int], None] | None = None, stores: Sequence[Any] = ()) -> dict[str, Any]:
    """Write ``export.sql``, ``files.tsv`` and ``manifest.json``; the session must have run its cascade."""
    started = time.monotonic()
    tables_meta = _write_sql_file(session, out_dir, strip=strip, batch_rows=batch_rows, progress=progress)
    manifest = {
        "format": "sql",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "leaves": [{"table": lf.table, "restriction": lf.restriction} for lf in session.leaves],
        "files": [SQL_FILE, FILES_LIST],
        "tables": tables_meta,
        "stored_files": write_files_list(session, out_dir, stores),
        "seconds": round(time.monotonic() - started, 3),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# ---------------------------------------------------------------------------
# verify


@dataclass(frozen=True)
class TableCheck:
    table: str
    expected_rows: int
    rows: int | None
    expected_checksum: str
    checksum: str | None

    @property
    def ok(self) -> bool:
        return self.rows == self.expected_rows and self.checksum == self.expected_checksum


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError("no manifest.json here: this is not a djtui export directory", where=str(directory),
                        hint="pass the --out directory of `djtui export write`") from None
    except ValueError as exc:
        raise UserError(f"manifest.json is not valid JSON: {exc}", where=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("tables"), list):
        raise UserError("manifest.json has no table list", where=str(path))
    return data


def find_client() -> str:
    for name in ("mariadb", "mysql"):
        exe = shutil.which(name)
        if exe:
            return exe
    raise UserError("no mariadb/mysql client is installed to load the export",
                    hint="apt-get install mariadb-client")


def load_sql(settings: Any, sql_file: Path) -> None:
    """Load a SQL file with the command-line client; the password goes through a 0600 defaults file."""
    client = find_client()
    fd, cnf = tempfile.mkstemp(prefix="djtui-", suffix=".cnf")
    try:
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)
            pw = settings.password.reveal() if settings.password else ""
            fh.write(f"[client]\nuser={settings.user}\npassword=\"{pw}\"\nhost={settings.host}\n"
                     f"port={settings.port}\nprotocol=TCP\n")
        with open(sql_file, "rb") as src:
            proc = subprocess.run([client, f"--defaults-extra-file={cnf}", "--batch", "--binary-mode"],
                                  stdin=src, capture_output=True, timeout=3600)
        if proc.returncode != 0:
            raise OperationFailed(f"loading {sql_file.name} failed: "
                                  f"{proc.stderr.decode(errors='replace').strip()}")
    finally:
        os.unlink(cnf)


def verify_export(directory: Path, *, server_dir: Path | None = None) -> list[TableCheck]:
    """Load the export into a fresh private server and compare counts and checksums per table."""
    from djtui.services.servers.mariadb import PrivateServer

    manifest = read_manifest(directory)
    sql_file = directory / str(manifest.get("sql_file", SQL_FILE))
    if not sql_file.is_file():
        hint = ("run ./export.sh CLIENT.CNF first: it writes export.sql" if manifest.get("format") == "script"
                else "the export is incomplete; write it again")
        raise UserError(f"{SQL_FILE} is missing", where=str(directory), hint=hint)
    with PrivateServer(server_dir) as srv:
        load_sql(srv.settings, sql_file)
        conn = connect_export(srv.settings)
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION time_zone = '+00:00'")
            checks = []
            for entry in manifest["tables"]:
                try:
                    got: TableSum | None = table_sum(conn, entry["table"])
                except db_errors():
                    got = None
                checks.append(TableCheck(entry["table"], int(entry["rows"]), got.rows if got else None,
                                         entry["checksum"], f"{got.checksum:016x}" if got else None))
        finally:
            conn.close()
    return checks


def export_sql(db: Any, graph: Any, leaves: list, out_dir: Path, *, strip: bool | None = None,
               batch_rows: int = 1000, progress: Callable[[str, int], None] | None = None, fmt: str = "sql",
               statement_timeout: float | None = STATEMENT_TIMEOUT_S, stores: Sequence[Any] = ()) -> dict[str, Any]:
    """Cascade, then write (``fmt`` sql, script or docker) from one read-only snapshot (see export.py).

    ``strip`` None: the format's default (docker strips the table defaults, sql keeps them);
    ``stores`` (the config's) are where ``files.tsv`` checks the stored objects the rows reference.
    """
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UserError("the output directory is not empty", where=str(out_dir),
                        hint="choose a new directory; an export is never written over another")
    with ExportSession(db, graph, leaves, statement_timeout=statement_timeout) as session:
        session.run()
        if fmt == "script":
            return write_script(session, out_dir, chunk_keys=batch_rows, progress=progress, stores=stores)
        if fmt == "docker":
            return write_docker(session, out_dir, batch_rows=batch_rows, progress=progress, stores=stores,
                                strip=True if strip is None else strip)
        return write_sql(session, out_dir, strip=bool(strip), batch_rows=batch_rows, progress=progress,
                         stores=stores)


def save_graph_text(out_dir: Path, graph: Any, tables: Iterable[str], fmt: str = "mermaid") -> Path:
    """The export's graph as Mermaid (``.mmd``) or DOT (``.dot``) text in ``out_dir``."""
    from djtui.domain.cascade import to_dot, to_mermaid

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ("export-graph.mmd" if fmt == "mermaid" else "export-graph.dot")
    path.write_text(to_mermaid(graph, tables) if fmt == "mermaid" else to_dot(graph, tables))
    return path


# ---------------------------------------------------------------------------
# the dump script (for sites that want mysqldump)

SCRIPT_FILE = "export.sh"


def _key_chunks(session: ExportSession, table: str, size: int) -> list[str]:
    """WHERE conditions naming the exported keys, ``size`` keys each (never one giant string)."""
    from djtui.services.export import sql_literal

    pk = session.pk(table)
    keys = sorted(session.keys(table), key=repr)
    cols = ", ".join(quote_ident(c) for c in pk)
    out = []
    for s in range(0, len(keys), size):
        values = ",".join("(" + ",".join(sql_literal(v) for v in key) + ")" for key in keys[s:s + size])
        out.append(f"({cols}) IN ({values})")
    return out


def write_script(session: ExportSession, out_dir: Path, *, chunk_keys: int = 1000,
                 progress: Callable[[str, int], None] | None = None, stores: Sequence[Any] = ()) -> dict[str, Any]:
    """``export.sh``: one mysqldump per key chunk, tables parents-first; it writes ``export.sql``.

    Credentials come from a 0600 option file given as ``$1`` (or ``$DJTUI_DEFAULTS_FILE``), never argv.
    Only a table's first chunk carries its CREATE TABLE; no chunk drops a table (the seed's bug).
    """
    import shlex

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "#!/usr/bin/env bash",
        "# djtui export: run as  ./export.sh /path/to/client.cnf   (an option file with [client] user/password/",
        "# host/port, mode 0600); it writes export.sql next to this script.",
        "set -euo pipefail",
        'cnf="${1:-${DJTUI_DEFAULTS_FILE:-}}"',
        'if [ -z "$cnf" ] || [ ! -f "$cnf" ]; then echo "usage: $0 CLIENT.CNF (mode 0600)" >&2; exit 2; fi',
        'case "$(stat -c %a "$cnf")" in 600|400) ;; *) echo "$cnf must be mode 0600" >&2; exit 2;; esac',
        'here="$(cd "$(dirname "$0")" && pwd)"',
        'out="$here/export.sql.part"',
        'dump() { mysqldump --defaults-extra-file="$cnf" --single-transaction --hex-blob --skip-add-drop-table '
        '--skip-triggers --no-create-db "$@" >> "$out"; }',
        'printf "SET NAMES utf8mb4;\\n" > "$out"',
    ]
    tables_meta = []
    created: set[str] = set()
    for table in session.plan.tables:
        db, name = split_name(table)
        if db not in created:
            create = f"CREATE DATABASE IF NOT EXISTS {quote_ident(db)};"
            lines.append(f"printf '%s\\n' {shlex.quote(create)} >> \"$out\"")
            created.add(db)
        lines.append(f"printf '%s\\n' {shlex.quote(f'USE {quote_ident(db)};')} >> \"$out\"")
        chunks = _key_chunks(session, table, chunk_keys)
        if not chunks:
            lines.append(f"dump --no-data {shlex.quote(db)} {shlex.quote(name)}")
        for n, where in enumerate(chunks):
            flag = "" if n == 0 else "--no-create-info "
            lines.append(f"dump {flag}{shlex.quote(db)} {shlex.quote(name)} --where={shlex.quote(where)}")
        acc = TableSum()
        for rows in session.iter_literal_rows(table):
            acc.add(rows)
        tables_meta.append({"table": table, "rows": acc.rows, "checksum": f"{acc.checksum:016x}"})
        if progress:
            progress(table, acc.rows)
    lines += ['mv "$out" "$here/export.sql"', 'echo "wrote $here/export.sql"']
    path = out_dir / SCRIPT_FILE
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)
    manifest = {
        "format": "script",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "leaves": [{"table": lf.table, "restriction": lf.restriction} for lf in session.leaves],
        "files": [SCRIPT_FILE, FILES_LIST],
        "tables": tables_meta,
        "stored_files": write_files_list(session, out_dir, stores),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# ---------------------------------------------------------------------------
# the docker bundle

_COMPOSE = """\
# djtui export bundle: `make up`, then connect to 127.0.0.1:${DB_PORT:-3306} as root
services:
  db:
    build: {context: ., dockerfile: Dockerfile}
    environment:
      MYSQL_ROOT_PASSWORD: ${MYSQL_ROOT_PASSWORD:?copy .env.example to .env and set it}
    ports: ["127.0.0.1:${DB_PORT:-3306}:3306"]
    volumes: ["db_data:/var/lib/mysql"]
    healthcheck:
      test: ["CMD", "mysqladmin", "ping", "-h", "127.0.0.1"]
      interval: 5s
      retries: 60
  hub:
    image: quay.io/jupyter/minimal-notebook:latest
    profiles: ["hub"]
    depends_on: {db: {condition: service_healthy}}
    environment:
      DJ_HOST: db
      DJ_USER: root
      DJ_PASS: ${MYSQL_ROOT_PASSWORD}
    ports: ["127.0.0.1:${HUB_PORT:-8888}:8888"]
    volumes: ["./notebooks:/home/jovyan/work"]
volumes:
  db_data:
"""

_DOCKERFILE = """\
FROM mysql:8.0
COPY db/export.sql /djtui/export.sql
# not executable: the entrypoint then sources it, and only a sourced file has its docker_process_sql
COPY db/load-once.sh /docker-entrypoint-initdb.d/50-djtui-load-once.sh
RUN chmod 0644 /docker-entrypoint-initdb.d/50-djtui-load-once.sh
"""

_LOAD_ONCE = """\
#!/usr/bin/env bash
# Loads the export once, on the first start of the MySQL image. The entrypoint SOURCES this file
# because it is not executable (mode 0644): docker_process_sql is a function of the entrypoint's shell,
# so a file it runs as a child process would not have it. Run any other way, this stops with an error,
# never marking an empty server as loaded. The marker lives in the data volume: restarts never import again.
# A subshell: its shell options and variables do not leak into the entrypoint that sources this file.
(
    set -euo pipefail
    sql=/djtui/export.sql
    marker=/var/lib/mysql/.djtui-export-loaded
    if [ -e "$marker" ]; then
        echo "djtui: export already loaded ($(cat "$marker")), skipping"
        exit 0
    fi
    if [ "$(type -t docker_process_sql)" != function ]; then
        echo "djtui: docker_process_sql is not defined: this file must be sourced by the mysql image's" \\
             "entrypoint, not run (make it non-executable: chmod 644 it); nothing was loaded" >&2
        exit 1
    fi
    echo "djtui: loading $sql"
    set +u  # the entrypoint's function reads variables that may be unset (MYSQL_DATABASE)
    if ! docker_process_sql --binary-mode < "$sql"; then
        echo "djtui: loading $sql FAILED; the server holds an incomplete export and is not marked as loaded." \\
             "Fix the cause, then start from an empty volume: make clean && make up" >&2
        exit 1
    fi
    set -u
    date -u +%Y-%m-%dT%H:%M:%SZ > "$marker.part"
    mv "$marker.part" "$marker"
    echo "djtui: export loaded"
)
"""

_MAKEFILE = """\
.PHONY: up down enter clean hub
up:
\tdocker compose up -d --build db
hub:
\tdocker compose --profile hub up -d --build
down:
\tdocker compose --profile hub down
enter:
\tdocker compose exec db bash -c 'mysql -uroot -p'
clean:
\tdocker compose --profile hub down --volumes
"""

_ENV = """\
# copy to .env and change; .env is read by docker compose and must not be shared
MYSQL_ROOT_PASSWORD=change-me
DB_PORT=3306
HUB_PORT=8888
"""


# MariaDB column types MySQL 8.0 does not have: a bundle holding one cannot load there
MARIADB_ONLY_TYPES = ("uuid", "inet4", "inet6", "vector", "xmltype")
_COLUMN_TYPE = re.compile(r"^[ \t]*`(?:[^`]|``)+`[ \t]+(\w+)", re.M)


def _source_is_mariadb(conn: Any) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION(), @@version_comment")
        version, comment = cur.fetchone()
    return "mariadb" in f"{_str(version)} {_str(comment)}".lower()


def mariadb_only_types(session: ExportSession) -> dict[str, list[str]]:
    """Per table of the export, the MariaDB-only column types its DDL uses (empty from MySQL)."""
    if not _source_is_mariadb(session.conn):
        return {}
    found: dict[str, list[str]] = {}
    for table in session.plan.tables:
        types = {t.lower() for t in _COLUMN_TYPE.findall(session.show_create_table(table))}
        hit = sorted(types & set(MARIADB_ONLY_TYPES))
        if hit:
            found[table] = hit
    return found


def mysql8_warning(found: dict[str, list[str]]) -> str | None:
    """The warning for MariaDB-only types in a bundle for MySQL 8.0 (None: there are none)."""
    if not found:
        return None
    types = sorted({t for ts in found.values() for t in ts})
    tables = ", ".join(f"{t} ({', '.join(ts)})" for t, ts in found.items())
    return (f"MySQL 8.0 has no column type {', '.join(types)}: the bundle's server will refuse "
            f"db/export.sql at the first of these tables: {tables}. `djtui export verify` loads into MariaDB "
            f"and cannot notice. Fix: change the column types on the source (uuid -> binary(16) or char(36), "
            f"inet6 -> varbinary(16) or varchar(39)), or use a MariaDB image (FROM mariadb:10.11) in the Dockerfile")


def write_docker(session: ExportSession, out_dir: Path, *, batch_rows: int = 1000,
                 progress: Callable[[str, int], None] | None = None, strip: bool = True,
                 stores: Sequence[Any] = ()) -> dict[str, Any]:
    """A directory that `make up` turns into a MySQL 8.0 server holding the export (loaded once).

    ``strip`` (the default) removes the table and database default charsets and collations, which
    MySQL 8.0 may not know (MariaDB's); column collations always stay.
    """
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    tables_meta = _write_sql_file(session, out_dir / "db", strip=strip, batch_rows=batch_rows, progress=progress)
    files_summary = write_files_list(session, out_dir, stores)
    warnings = [w for w in [mysql8_warning(mariadb_only_types(session))] if w]
    files = {
        "docker-compose.yml": _COMPOSE, "Dockerfile": _DOCKERFILE, "db/load-once.sh": _LOAD_ONCE,
        "Makefile": _MAKEFILE, ".env.example": _ENV,
    }
    for name, text in files.items():
        (out_dir / name).write_text(text)
    (out_dir / "db" / "load-once.sh").chmod(0o644)  # sourced by the entrypoint, never run (see the script)
    (out_dir / "notebooks").mkdir(exist_ok=True)
    tables = "\n".join(f"| `{t['table']}` | {t['rows']} |" for t in tables_meta)
    stored = files_summary["count"]
    stored_text = (f"The rows reference {stored} stored files ({files_summary['bytes']} bytes; "
                   f"{files_summary['missing']} missing, {files_summary['not_checked']} not checked): "
                   f"`{FILES_LIST}` lists them (store, path, size, exists). Ship them with this bundle.\n\n"
                   if stored else f"The rows reference no stored files (`{FILES_LIST}` is empty).\n\n")
    warning_text = "".join(f"**Warning:** {w}.\n\n" for w in warnings)
    (out_dir / "README.md").write_text(
        "# Database export\n\nWritten by djtui. Needs `make` and Docker.\n\n" + warning_text +
        "1. `cp .env.example .env` and set `MYSQL_ROOT_PASSWORD`.\n"
        "2. `make up` builds and starts MySQL 8.0; the first start loads `db/export.sql` once.\n"
        "3. Connect to 127.0.0.1:$DB_PORT as root. `make hub` adds a notebook server (notebooks/).\n"
        "4. `make enter` opens a mysql shell, `make down` stops, `make clean` also deletes the data volume.\n\n"
        + stored_text + f"| table | rows |\n|---|---|\n{tables}\n")
    manifest = {
        "format": "docker",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "leaves": [{"table": lf.table, "restriction": lf.restriction} for lf in session.leaves],
        "sql_file": f"db/{SQL_FILE}",
        "files": sorted([*files, "README.md", f"db/{SQL_FILE}", FILES_LIST]),
        "tables": tables_meta,
        "stored_files": files_summary,
        "warnings": warnings,
        "seconds": round(time.monotonic() - started, 3),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
