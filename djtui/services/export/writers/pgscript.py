"""The dump script on PostgreSQL: ``export.sh`` runs ``pg_dump`` and ``psql`` and writes ``export.sql``.

``pg_dump`` cannot filter rows (it has ``--table`` but no ``--where``), and dumping whole tables
would ship every row. So ``pg_dump --schema-only`` writes the tables' DDL (pre-data before the
rows, post-data with the keys and foreign keys after them, as in djtui's own SQL file), and the
rows come from ``psql`` running ``rows.psql``: the exported keys go into temporary tables, then
``COPY (SELECT ... JOIN the keys) TO STDOUT`` prints each table's rows in COPY text, the format
pg_dump's own data section uses, between the ``COPY ... FROM stdin;`` and ``\\.`` lines that load
them. All tables are read in ONE ``REPEATABLE READ, READ ONLY`` transaction, so the rows are one
moment of the database (a ``psql -c`` per table would not be). The key lists hold the keys the
cascade found when the script was written; ``rows.psql`` inserts them ``chunk_keys`` at a time.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from djtui.domain.cascade import split_name
from djtui.domain.dialects import POSTGRES
from djtui.services.export.pgsession import TEXT_SETTINGS, PgExportSession
from djtui.services.export.writers.pgsql import _SEQUENCES, HEADER, _names, copy_header, schema_ddl
from djtui.services.export.writers.sql import FILES_LIST, MANIFEST, TableSum, write_files_list

SCRIPT_FILE = "export.sh"
ROWS_FILE = "rows.psql"
SCHEMA_FILE = "schema.sql"


def _keys_text(session: PgExportSession, table: str) -> list[tuple[str, ...]]:
    """The exported keys of ``table`` as the server's text of each value (any key type loads back from it)."""
    cols = ", ".join(f"{POSTGRES.ident(c)}::text" for c in session.pk(table))
    order = ", ".join(str(n + 1) for n in range(len(session.pk(table))))
    return session.rows(f"SELECT {cols} FROM {session.key_table(table)} ORDER BY {order}")


def rows_script(session: PgExportSession, chunk_keys: int) -> str:
    """``rows.psql``: the key tables, filled with the exported keys, then one COPY per table."""
    ident, lit = POSTGRES.ident, POSTGRES.literal
    out = ["\\set ON_ERROR_STOP on", *(f"{s};" for s in TEXT_SETTINGS), "SET statement_timeout = 0;"]
    for n, table in enumerate(session.plan.tables):
        cols = ", ".join(ident(c) for c in session.pk(table))
        out.append(f"CREATE TEMPORARY TABLE djtui_keys_{n} AS SELECT {cols} FROM "
                   f"{POSTGRES.table(*split_name(table))} LIMIT 0;")
    out.append("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;")
    for n, table in enumerate(session.plan.tables):
        keys = _keys_text(session, table)
        for s in range(0, len(keys), max(1, chunk_keys)):
            values = ",\n  ".join("(" + ", ".join(lit(v) for v in key) + ")" for key in keys[s:s + chunk_keys])
            out.append(f"INSERT INTO pg_temp.djtui_keys_{n} VALUES\n  {values};")
        out.append(f"SELECT {lit(copy_header(session, table).decode().rstrip())};")  # psql adds the newline
        cols = ", ".join(f"t.{ident(c)}" for c in session.columns(table))
        on = " AND ".join(f"t.{ident(c)} = k.{ident(c)}" for c in session.pk(table))
        out.append(f"COPY (SELECT {cols} FROM pg_temp.djtui_keys_{n} AS k JOIN "
                   f"{POSTGRES.table(*split_name(table))} AS t ON {on}) TO STDOUT;")
        out.append("SELECT E'\\\\.';")
    for schema, name in session.rows(_SEQUENCES, _names(session.plan.tables)):
        seq = POSTGRES.table(schema, name)
        out.append(f"SELECT format('SELECT pg_catalog.setval(%L, %s, %s);', {lit(seq)}, last_value, is_called::text) "
                   f"FROM {seq};")
    out.append("COMMIT;")
    return "\n".join(out) + "\n"


def script_text(session: PgExportSession) -> str:
    s = session.db.settings
    dump = ("pg_dump --schema-only --no-owner --no-privileges --no-tablespaces "
            + " ".join(f"--table={shlex.quote(POSTGRES.table(*split_name(t)))}" for t in session.plan.tables))
    return "\n".join([
        "#!/usr/bin/env bash",
        "# djtui export (PostgreSQL): run as  ./export.sh /path/to/pgpass   (a libpq password file, mode 0600:",
        "# host:port:database:user:password). The connection comes from PGHOST, PGPORT, PGDATABASE and PGUSER,",
        "# which default to the server the export was planned on. It writes export.sql next to this script;",
        "# load that with  psql -v ON_ERROR_STOP=1 --single-transaction -f export.sql  into an empty database.",
        "set -euo pipefail",
        'pass="${1:-${PGPASSFILE:-}}"',
        'if [ -z "$pass" ] || [ ! -f "$pass" ]; then echo "usage: $0 PGPASSFILE (mode 0600)" >&2; exit 2; fi',
        'case "$(stat -c %a "$pass")" in 600|400) ;; *) echo "$pass must be mode 0600" >&2; exit 2;; esac',
        'export PGPASSFILE="$pass"',
        f'export PGHOST="${{PGHOST:-{s.socket or s.host}}}" PGPORT="${{PGPORT:-{int(s.port)}}}"',
        f'export PGDATABASE="${{PGDATABASE:-{s.dbname or "postgres"}}}" PGUSER="${{PGUSER:-{s.user or ""}}}"',
        'here="$(cd "$(dirname "$0")" && pwd)"',
        'out="$here/export.sql.part"',
        f'cat "$here/{SCHEMA_FILE}" > "$out"',
        f'{dump} --section=pre-data >> "$out"',
        f'psql -X -q -A -t -v ON_ERROR_STOP=1 -f "$here/{ROWS_FILE}" >> "$out"',
        f'{dump} --section=post-data >> "$out"',
        'mv "$out" "$here/export.sql"',
        'echo "wrote $here/export.sql"',
    ]) + "\n"


def write_pg_script(session: PgExportSession, out_dir: Path, *, chunk_keys: int = 1000,
                    progress: Callable[[str, int], None] | None = None, stores: Sequence[Any] = ()) -> dict[str, Any]:
    """``export.sh``, ``schema.sql`` and ``rows.psql``; the manifest's checksums are of the rows now."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SCHEMA_FILE).write_text(HEADER + schema_ddl(session))
    (out_dir / ROWS_FILE).write_text(rows_script(session, chunk_keys))
    tables_meta = []
    for table in session.plan.tables:
        acc = TableSum()
        session.copy_rows(table, acc.add)
        tables_meta.append({"table": table, "rows": acc.rows, "checksum": f"{acc.checksum:016x}"})
        if progress:
            progress(table, acc.rows)
    path = out_dir / SCRIPT_FILE
    path.write_text(script_text(session))
    path.chmod(0o755)
    manifest = {
        "format": "script",
        "backend": session.family,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "leaves": [{"table": lf.table, "restriction": lf.restriction} for lf in session.leaves],
        "files": [SCRIPT_FILE, SCHEMA_FILE, ROWS_FILE, FILES_LIST],
        "tables": tables_meta,
        "stored_files": write_files_list(session, out_dir, stores),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
