"""The DDL of a PostgreSQL export, by the server's own tools, in the background.

``pg_dump --schema-only --format=custom`` of the export's tables from the export's snapshot, then
``pg_restore`` writes the archive's ``pre-data`` and ``post-data`` sections as SQL (which object
belongs to which section is pg_dump's own rule). It all runs in a thread while the server computes
the key sets, so a writer only copies two small files; the credentials file and the folder live
until ``stop``.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from djtui.domain.cascade import split_name
from djtui.domain.dialects import POSTGRES
from djtui.errors import OperationFailed
from djtui.services import commandlog


class DdlDump:
    """The exported tables' DDL as ``pre-data`` and ``post-data`` SQL files (``sections()`` waits)."""

    def __init__(self, db: Any, snapshot: str, tables: Sequence[str]):
        be = db.backend
        dump = be.dump_tools().dump  # a UserError naming what to install, before anything is made
        self._stack = contextlib.ExitStack()
        folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="djtui-ddl-")))
        cred = self._stack.enter_context(be.credentials_file(db.settings))
        archive = folder / "ddl.dump"
        self.files = {"pre-data": folder / "pre.sql", "post-data": folder / "post.sql"}
        self._dump = [*be.tool_argv(dump, cred), f"--snapshot={snapshot}", "--schema-only", "--format=custom",
                      f"--file={archive}", *(f"--table={POSTGRES.table(*split_name(t))}" for t in tables)]
        restore = str(Path(dump).with_name("pg_restore"))
        self._restores = [[restore, f"--section={section}", "--no-owner", "--no-privileges", "--no-tablespaces",
                           f"--file={path}", str(archive)] for section, path in self.files.items()]
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen] = []
        self._stopped = False
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="djtui-export-ddl", daemon=True)
        self._thread.start()

    def _start(self, argv: list[str]) -> subprocess.Popen | None:
        with self._lock:
            if self._stopped:
                return None
            commandlog.record("exec", argv)
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self._procs.append(proc)
            return proc

    def _wait(self, proc: subprocess.Popen | None, what: str) -> bool:
        if proc is None:
            return False
        _out, err = proc.communicate()
        if proc.returncode != 0 and self.error is None:
            self.error = f"{what} failed: {err.decode(errors='replace').strip()}"
        return proc.returncode == 0

    def _run(self) -> None:
        try:
            if self._wait(self._start(self._dump), "pg_dump --schema-only of the exported tables"):
                procs = [self._start(argv) for argv in self._restores]  # both sections at once
                for proc, section in zip(procs, self.files, strict=True):
                    self._wait(proc, f"pg_restore --section={section}")
        except Exception as exc:  # handed to the writer by sections()
            self.error = f"dumping the tables' DDL failed: {exc}"

    def sections(self) -> tuple[Path, Path]:
        """The pre-data and post-data SQL files, once written."""
        self._thread.join()
        if self.error is not None or self._stopped:
            raise OperationFailed(self.error or "the DDL dump was stopped")
        return self.files["pre-data"], self.files["post-data"]

    def stop(self) -> None:
        """Stop any tool still running and remove the folder and the credentials file."""
        with self._lock:
            self._stopped = True
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        self._thread.join(timeout=30)
        self._stack.close()
