"""The docker bundle: a MySQL 8.0 compose project that loads the export's SQL once, on first start."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from djtui.services.export import catalog
from djtui.services.export.session import ExportSession
from djtui.services.export.writers.sql import (
    FILES_LIST,
    MANIFEST,
    SQL_FILE,
    write_files_list,
    write_sql_file,
)

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
    return "mariadb" in f"{catalog.text(version)} {catalog.text(comment)}".lower()


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
    tables_meta = write_sql_file(session, out_dir / "db", strip=strip, batch_rows=batch_rows, progress=progress)
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

