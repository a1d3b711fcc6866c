"""Loading an export into a server with its own client, and the per-table result ``verify`` reports
(shared by ``verify`` and ``pgverify``)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from djtui.errors import OperationFailed
from djtui.services.database import Database


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


# how each server family's client loads a SQL file: stop at the first error (psql goes on by default)
LOAD_FLAGS = {"mysql": ("--batch", "--binary-mode"),
              "postgresql": ("-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction")}


def load_sql(settings: Any, sql_file: Path) -> None:
    """Load a SQL file with the server's command-line client (the backend's), the credentials in the
    backend's 0600 options file (never in argv)."""
    db = Database(settings)
    try:
        be = db.backend
        client = be.dump_tools().client
        with be.credentials_file(settings) as cnf, open(sql_file, "rb") as src:
            proc = subprocess.run([*be.tool_argv(client, cnf), *LOAD_FLAGS[be.name]],
                                  stdin=src, capture_output=True, timeout=3600)
    finally:
        db.close()
    if proc.returncode != 0:
        raise OperationFailed(f"loading {sql_file.name} failed: {proc.stderr.decode(errors='replace').strip()}")


