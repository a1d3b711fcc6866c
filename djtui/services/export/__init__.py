"""Export: the rows that leaves need, with all their ancestors, written so they load elsewhere.

Holds, one topic per module:
- ``catalog``: every ``information_schema`` read (graph, columns, row estimates, the export log);
- ``driver``: the export's connection (mysqlclient or pymysql), time limits, coerced values;
- ``session``: ``ExportSession``, the cascade run on the server into key sets, rows read back;
  ``pgsession`` the same on PostgreSQL (COPY, one snapshot); ``family.open_session`` picks one;
- ``rows``: streaming the server-formatted row literals; ``counts``: one leaf counted as typed;
- ``files``: the stored objects rows reference, checked through the ``Store`` protocol;
- ``paper``: Spyglass's export log as leaves; ``recording``: ``djtui.record_export`` (DataJoint 2.x);
- ``plan``: plan -> confirmation text -> execute, what the CLI and the screen both call;
- ``pgcount``, ``pgverify``, ``writers/pg*``: PostgreSQL's leaf count, verify and writers; ``loading``: a
  SQL file loaded with the server's client;
- ``writers``: sql, script, docker; ``verify``: load into a private server and compare.
Pure parts live in ``djtui.domain`` (``cascade``, ``leaves``, ``rowsql``). May import ``djtui.domain``,
``djtui.errors``, ``djtui.config`` and other services (database, stores, servers, filesystem,
commandlog); never the TUI or the CLI.
"""

from __future__ import annotations

from djtui.domain.leaves import (
    check_restriction,
    keys_restriction,
    parse_leaf,
    parse_restriction,
    resolve_leaf_tables,
    sql_literal,
)
from djtui.services.export.catalog import load_graph, table_columns
from djtui.services.export.counts import CountCancelled, LeafCount, count_leaf
from djtui.services.export.driver import (
    DRIVER_ENV,
    STATEMENT_TIMEOUT_S,
    connect_export,
    db_errors,
    driver_name,
)
from djtui.services.export.family import open_session
from djtui.services.export.files import NeededFile, check_files, needed_files, problem_notes
from djtui.services.export.paper import paper_leaves
from djtui.services.export.plan import (
    ExportPlan,
    count_plan,
    plan_export,
    plan_with_files,
    prepare_export,
    write_plan,
)
from djtui.services.export.session import ExportResult, ExportSession, TableCount
from djtui.services.export.verify import TableCheck, find_client, load_sql, read_manifest, verify_export
from djtui.services.export.writers import (
    export_sql,
    save_graph_text,
    strip_charset,
    write_docker,
    write_script,
    write_sql,
)

__all__ = [
    "DRIVER_ENV", "STATEMENT_TIMEOUT_S", "CountCancelled", "ExportPlan", "ExportResult",
    "ExportSession", "LeafCount", "NeededFile", "TableCheck", "TableCount", "check_files", "check_restriction",
    "connect_export", "count_leaf", "count_plan", "db_errors", "driver_name", "export_sql", "find_client",
    "keys_restriction", "load_graph", "load_sql", "needed_files", "open_session", "paper_leaves", "parse_leaf",
    "parse_restriction",
    "plan_export", "plan_with_files", "prepare_export", "problem_notes", "read_manifest", "resolve_leaf_tables",
    "save_graph_text", "sql_literal", "strip_charset", "table_columns", "verify_export", "write_docker",
    "write_plan", "write_script", "write_sql",
]
