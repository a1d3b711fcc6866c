"""The export writers: ``sql`` (one SQL file djtui writes), ``script`` (export.sh running the dump tool
per key chunk), ``docker`` (a compose bundle that loads the SQL once), and the graph as text.
On PostgreSQL the same three formats come from ``pgsql`` (COPY text and pg_dump's DDL), ``pgscript``
(pg_dump for the DDL, psql's COPY for the rows) and ``pgdocker`` (image postgres:15).

Holds ``export_sql`` (cascade, then the writer of the format) and ``save_graph_text``. May import
``djtui.domain`` and the export package's own modules; never the TUI or the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from djtui.domain.cascade import to_dot, to_mermaid
from djtui.errors import UserError
from djtui.services.export.driver import STATEMENT_TIMEOUT_S
from djtui.services.export.family import open_session
from djtui.services.export.writers.docker import mariadb_only_types, mysql8_warning, write_docker
from djtui.services.export.writers.script import write_script
from djtui.services.export.writers.sql import (
    FILES_LIST,
    MANIFEST,
    SQL_FILE,
    TableSum,
    strip_charset,
    write_files_list,
    write_sql,
)


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
    with open_session(db, graph, leaves, statement_timeout=statement_timeout) as session:
        session.want_ddl = fmt != "script"  # the script runs pg_dump itself, later
        session.run()
        if session.family == "postgresql":  # the session the backend chose (``session_class``)
            return _write_pg(session, out_dir, fmt, chunk_keys=batch_rows, progress=progress, stores=stores)
        if fmt == "script":
            return write_script(session, out_dir, chunk_keys=batch_rows, progress=progress, stores=stores)
        if fmt == "docker":
            return write_docker(session, out_dir, batch_rows=batch_rows, progress=progress, stores=stores,
                                strip=True if strip is None else strip)
        return write_sql(session, out_dir, strip=bool(strip), batch_rows=batch_rows, progress=progress,
                         stores=stores)


def _write_pg(session: Any, out_dir: Path, fmt: str, *, chunk_keys: int,
              progress: Callable[[str, int], None] | None, stores: Sequence[Any]) -> dict[str, Any]:
    """The PostgreSQL writers: COPY text and pg_dump's DDL (``pgsql``), ``pgscript``, ``pgdocker``."""
    if fmt == "script":
        from djtui.services.export.writers.pgscript import write_pg_script

        return write_pg_script(session, out_dir, chunk_keys=chunk_keys, progress=progress, stores=stores)
    if fmt == "docker":
        from djtui.services.export.writers.pgdocker import write_pg_docker

        return write_pg_docker(session, out_dir, progress=progress, stores=stores)
    from djtui.services.export.writers.pgsql import write_pg_sql

    return write_pg_sql(session, out_dir, progress=progress, stores=stores)


def save_graph_text(out_dir: Path, graph: Any, tables: Iterable[str], fmt: str = "mermaid") -> Path:
    """The export's graph as Mermaid (``.mmd``) or DOT (``.dot``) text in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ("export-graph.mmd" if fmt == "mermaid" else "export-graph.dot")
    path.write_text(to_mermaid(graph, tables) if fmt == "mermaid" else to_dot(graph, tables))
    return path


# ---------------------------------------------------------------------------


__all__ = ["FILES_LIST", "MANIFEST", "SQL_FILE", "TableSum", "export_sql", "mariadb_only_types", "mysql8_warning",
           "save_graph_text", "strip_charset", "write_docker", "write_files_list", "write_script",
           "write_sql"]
