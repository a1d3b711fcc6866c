"""The docker bundle on PostgreSQL: a compose project whose ``postgres`` service (image postgres:15)
loads the export's SQL once, from the image's init scripts (``/docker-entrypoint-initdb.d``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from djtui.services.export.pgsession import PgExportSession
from djtui.services.export.writers.pgsql import write_pg_sql_file
from djtui.services.export.writers.sql import FILES_LIST, MANIFEST, SQL_FILE, write_files_list

MARKER = ".djtui-export-loaded"

_COMPOSE = """\
# djtui export bundle: `make up`, then connect to 127.0.0.1:${DB_PORT:-5432} as postgres
services:
  postgres:
    image: postgres:15
    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?copy .env.example to .env and set it}
      POSTGRES_DB: postgres
    ports: ["127.0.0.1:${DB_PORT:-5432}:5432"]
    volumes:
      - db_data:/var/lib/postgresql/data
      - ./db/export.sql:/djtui/export.sql:ro
      - ./db/load-once.sh:/docker-entrypoint-initdb.d/50-djtui-load-once.sh:ro
    healthcheck:
      # healthy once the export is loaded: the init scripts run on a socket-only server, so TCP
      # answers only after them, and a failed load leaves no marker
      test: ["CMD-SHELL",
             "pg_isready -h 127.0.0.1 -U postgres && test -e /var/lib/postgresql/data/.djtui-export-loaded"]
      interval: 5s
      retries: 120
  hub:
    image: quay.io/jupyter/minimal-notebook:latest
    profiles: ["hub"]
    depends_on: {postgres: {condition: service_healthy}}
    environment:
      DJ_BACKEND: postgresql
      DJ_HOST: postgres
      DJ_PORT: "5432"
      DJ_USER: postgres
      DJ_PASS: ${POSTGRES_PASSWORD}
    ports: ["127.0.0.1:${HUB_PORT:-8888}:8888"]
    volumes: ["./notebooks:/home/jovyan/work"]
volumes:
  db_data:
"""

_LOAD_ONCE = """\
#!/usr/bin/env bash
# Loads the export once, on the first start of the postgres image (its init scripts run only while the
# data directory is new). Works run or sourced by the entrypoint. One transaction: a failed load leaves
# no table behind and no marker, so the service never turns healthy; fix the cause, then start from an
# empty volume: make clean && make up.
# A subshell: its shell options and variables do not leak into an entrypoint that sources this file.
(
    set -euo pipefail
    sql="${DJTUI_EXPORT_SQL:-/djtui/export.sql}"
    marker="${PGDATA:-/var/lib/postgresql/data}/.djtui-export-loaded"
    if [ -e "$marker" ]; then
        echo "djtui: export already loaded ($(cat "$marker")), skipping"
        exit 0
    fi
    echo "djtui: loading $sql"
    if ! psql -X -q -v ON_ERROR_STOP=1 --single-transaction --username "${POSTGRES_USER:-postgres}" \\
            --dbname "${POSTGRES_DB:-postgres}" -f "$sql"; then
        echo "djtui: loading $sql FAILED; nothing was loaded. Fix the cause, then: make clean && make up" >&2
        exit 1
    fi
    date -u +%Y-%m-%dT%H:%M:%SZ > "$marker.part"
    mv "$marker.part" "$marker"
    echo "djtui: export loaded"
)
"""

_MAKEFILE = """\
.PHONY: up down enter clean hub
up:
\tdocker compose up -d postgres
hub:
\tdocker compose --profile hub up -d
down:
\tdocker compose --profile hub down
enter:
\tdocker compose exec postgres psql -U postgres
clean:
\tdocker compose --profile hub down --volumes
"""

_ENV = """\
# copy to .env and change; .env is read by docker compose and must not be shared
POSTGRES_PASSWORD=change-me
DB_PORT=5432
HUB_PORT=8888
"""


def write_pg_docker(session: PgExportSession, out_dir: Path, *, progress: Callable[[str, int], None] | None = None,
                    stores: Sequence[Any] = ()) -> dict[str, Any]:
    """A directory that `make up` turns into a PostgreSQL 15 server holding the export (loaded once)."""
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    tables_meta = write_pg_sql_file(session, out_dir / "db", progress=progress)
    files_summary = write_files_list(session, out_dir, stores)
    files = {"docker-compose.yml": _COMPOSE, "db/load-once.sh": _LOAD_ONCE, "Makefile": _MAKEFILE,
             ".env.example": _ENV}
    for name, text in files.items():
        (out_dir / name).write_text(text)
    (out_dir / "db" / "load-once.sh").chmod(0o755)
    (out_dir / "notebooks").mkdir(exist_ok=True)
    tables = "\n".join(f"| `{t['table']}` | {t['rows']} |" for t in tables_meta)
    stored = files_summary["count"]
    stored_text = (f"The rows reference {stored} stored files ({files_summary['bytes']} bytes; "
                   f"{files_summary['missing']} missing, {files_summary['not_checked']} not checked): "
                   f"`{FILES_LIST}` lists them (store, path, size, exists). Ship them with this bundle.\n\n"
                   if stored else f"The rows reference no stored files (`{FILES_LIST}` is empty).\n\n")
    (out_dir / "README.md").write_text(
        "# Database export (PostgreSQL)\n\nWritten by djtui. Needs `make` and Docker.\n\n"
        "1. `cp .env.example .env` and set `POSTGRES_PASSWORD`.\n"
        "2. `make up` starts PostgreSQL 15 (service `postgres`); its first start loads `db/export.sql` once, "
        "in one transaction, and the service turns healthy when the load is done.\n"
        "3. Connect to 127.0.0.1:$DB_PORT as postgres (DataJoint 2.x: `DJ_BACKEND=postgresql`). "
        "`make hub` adds a notebook server (notebooks/).\n"
        "4. `make enter` opens psql, `make down` stops, `make clean` also deletes the data volume.\n\n"
        + stored_text + f"| table | rows |\n|---|---|\n{tables}\n")
    manifest = {
        "format": "docker",
        "backend": session.family,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "leaves": [{"table": lf.table, "restriction": lf.restriction} for lf in session.leaves],
        "sql_file": f"db/{SQL_FILE}",
        "files": sorted([*files, "README.md", f"db/{SQL_FILE}", FILES_LIST]),
        "tables": tables_meta,
        "stored_files": files_summary,
        "warnings": [],
        "seconds": round(time.monotonic() - started, 3),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
