"""The dump script: ``export.sh`` runs the server's own dump tool per chunk of exported keys
(for sites that want mysqldump's output); ``verify`` checks what it wrote."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from djtui.domain.cascade import split_name
from djtui.domain.leaves import sql_literal
from djtui.services.export.session import ExportSession
from djtui.services.export.writers.sql import (
    FILES_LIST,
    MANIFEST,
    TableSum,
    write_files_list,
)

# the dump script (for sites that want mysqldump)

SCRIPT_FILE = "export.sh"


def _key_chunks(session: ExportSession, table: str, size: int) -> list[str]:
    """WHERE conditions naming the exported keys, ``size`` keys each (never one giant string)."""
    pk = session.pk(table)
    ident = session.db.dialect.ident
    keys = sorted(session.keys(table), key=repr)
    cols = ", ".join(ident(c) for c in pk)
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
            create = f"CREATE DATABASE IF NOT EXISTS {session.db.dialect.ident(db)};"
            lines.append(f"printf '%s\\n' {shlex.quote(create)} >> \"$out\"")
            created.add(db)
        lines.append(f"printf '%s\\n' {shlex.quote(f'USE {session.db.dialect.ident(db)};')} >> \"$out\"")
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
