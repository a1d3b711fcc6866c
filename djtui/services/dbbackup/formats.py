"""How each server family writes and reads a backup: one ``DumpFormat`` per backend.

The workflow (dump in parallel, manifest, restore-verify, restore plan and load) is the same on every
server; what differs is the dump tool and its file format, the whole-server file, the scratch server a
verification loads into, and how a dump is loaded. ``format_for`` picks the format by the backend's name
(the one ``choose.py`` picks the backend by), so no step asks which server it talks to.

* MySQL / MariaDB (this module): ``mariadb-dump --databases S`` piped through zstd, loaded with the
  ``mariadb`` client; the whole-server file holds every definition plus the accounts.
* PostgreSQL (``pgformat.py``): ``pg_dump --format=custom`` per schema from one exported snapshot,
  ``pg_dumpall --globals-only`` for the roles, ``pg_restore`` to read a dump back.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from djtui.domain.dbbackup import MYSQL_NAMES, NameRules
from djtui.errors import OperationFailed, UserError
from djtui.services.backends import Backend
from djtui.services.dbbackup.dumpfile import foreign_refs, load_dump, renamer
from djtui.services.dbbackup.manifest import SERVER_FILE
from djtui.services.dbbackup.pgformat import PgFormat
from djtui.services.dbbackup.tools import (
    Progress,
    decompressor_for,
    pipe_to_file,
    table_counts,
    tool_version,
    tools_for,
)

if TYPE_CHECKING:
    from djtui.domain.dbbackup import RestoreItem, RestorePlan
    from djtui.services.database import Database


class DumpSession(Protocol):
    """One backup's dumps: exact row counts of a schema, taken as its dump sees it."""

    def counts(self, schema: str) -> dict[str, int]: ...


class DumpFormat(Protocol):
    """What a backup's files are on one server family, and how they are written and read."""

    suffix: str  # a schema dump's file name ends with it
    server_file: str  # the whole-server file's name
    server_label: str  # what that file holds, as progress and results say it
    counts_note: str  # the manifest says when its row counts were taken
    name_rules: NameRules  # what a restore may name a schema

    def session(self, db: Database) -> contextlib.AbstractContextManager[DumpSession]:
        """Held open while the schemas are dumped (PostgreSQL: the snapshot every dump reads)."""
    def dump_schema(self, cred: Path, schema: str, target: Path, session: DumpSession) -> None: ...
    def dump_server(self, db: Database, cred: Path, target: Path) -> None: ...
    def describe(self) -> dict[str, Any]:
        """The manifest's fields naming the tools (with versions), options and compression."""
    def foreign_refs(self, dump: Path) -> set[str]:
        """Schemas the dump's foreign keys point at."""
    def scratch_server(self, base_dir: Path | None) -> Any:
        """A private server of this family to verify into (a context manager with ``.settings``)."""
    def prepare_scratch(self, settings: Any, cred: Path, backup: Path, manifest: dict[str, Any]) -> None:
        """Before the schemas: load what they need from the whole-server file (PostgreSQL: the roles)."""
    def load_scratch(self, cred: Path, dumps: Mapping[str, Path], progress: Progress) -> dict[Path, OperationFailed]:
        """Load the schema dumps (schema -> file) into the (empty) scratch server ``cred`` names, in an order
        where keys between them load whichever sorts first; the answer names each dump that failed, with why."""
    def plan_lines(self, db: Database, items: Sequence[RestoreItem]) -> list[str]:
        """What a restore plan shows beside its files (how the load runs, what it keeps)."""
    def load_live(self, db: Database, cred: Path, plan: RestorePlan, progress: Progress) -> None:
        """Load the plan's dumps into the live server, renamed where the plan says."""


class _Counts:
    def __init__(self, db: Database):
        self.db = db

    def counts(self, schema: str) -> dict[str, int]:
        return table_counts(self.db, schema)


def dump_options(tool: str) -> list[str]:
    return ["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
            "--max-allowed-packet=512M", "--quick"]


def server_file_options(dump_tool: str) -> list[str]:
    """What the whole-server file holds beside the per-schema files.

    With mariadb-dump it is every definition (no rows: those are in the schema files, which are
    dumped in parallel) plus the accounts and grants as CREATE USER / GRANT statements, so the
    backup costs one pass over the data instead of two. mysqldump has no ``--system=users``, so
    there it stays a full ``--all-databases`` dump, which also carries the ``mysql`` schema.
    """
    if Path(dump_tool).name.startswith("mariadb"):
        return ["--all-databases", "--no-data", "--system=users"]
    return ["--all-databases"]


class MySQLFormat:
    """SQL text from mariadb-dump/mysqldump, compressed with zstd (else gzip), loaded with the client."""

    counts_note = "row counts are exact COUNT(*) taken just before each schema's dump"
    name_rules = MYSQL_NAMES
    server_label = "the whole server"

    def __init__(self, backend: Backend):
        self.backend = backend
        self._tools = None

    @property
    def tools(self) -> Any:
        if self._tools is None:
            self._tools = tools_for(self.backend)
        return self._tools

    @property
    def suffix(self) -> str:
        return self.tools.suffix

    @property
    def server_file(self) -> str:
        return SERVER_FILE + self.tools.suffix

    @contextlib.contextmanager
    def session(self, db: Database) -> Iterator[DumpSession]:
        yield _Counts(db)

    def _base(self, cred: Path) -> list[str]:
        return [*self.backend.tool_argv(self.tools.dump, cred), *dump_options(self.tools.dump)]

    def dump_schema(self, cred: Path, schema: str, target: Path, session: DumpSession) -> None:
        pipe_to_file([*self._base(cred), "--databases", schema], self.tools.compressor, target)

    def dump_server(self, db: Database, cred: Path, target: Path) -> None:
        pipe_to_file([*self._base(cred), *server_file_options(self.tools.dump)], self.tools.compressor, target)

    def describe(self) -> dict[str, Any]:
        t = self.tools
        return {"tool": Path(t.dump).name, "options": dump_options(t.dump),
                "compression": t.suffix.rsplit(".", 1)[-1], "file_format": "sql",
                "tool_versions": {Path(p).name: tool_version(p) for p in (t.dump, t.compressor[0])}}

    def foreign_refs(self, dump: Path) -> set[str]:
        return foreign_refs(dump)

    @staticmethod
    def scratch_server(base_dir: Path | None) -> Any:
        from djtui.services.servers.mariadb import PrivateServer

        return PrivateServer(base_dir)

    def prepare_scratch(self, settings: Any, cred: Path, backup: Path, manifest: dict[str, Any]) -> None:
        """Nothing: each schema file carries its definitions; the accounts are not loaded into a scratch."""

    def load_scratch(self, cred: Path, dumps: Mapping[str, Path], progress: Progress) -> dict[Path, OperationFailed]:
        """One file after the other: mariadb-dump's files turn FOREIGN_KEY_CHECKS off while they load."""
        tools = tools_for(self.backend, prefer_zstd=False)
        client = [*self.backend.tool_argv(tools.client, cred), "--max-allowed-packet=512M"]
        failed: dict[Path, OperationFailed] = {}
        for n, dump in enumerate(dumps.values(), 1):
            progress(f"[{n}/{len(dumps)}] restoring {dump.name}")
            try:
                pipe_to_file(decompressor_for(dump), client, Path(os.devnull), stdin_path=dump)
            except OperationFailed as exc:
                failed[dump] = exc
        return failed

    def plan_lines(self, db: Database, items: Sequence[RestoreItem]) -> list[str]:
        return []

    def load_live(self, db: Database, cred: Path, plan: RestorePlan, progress: Progress) -> None:
        tools = tools_for(self.backend, prefer_zstd=False)
        rewrite = renamer(plan.renames, db.dialect)
        client = [*self.backend.tool_argv(tools.client, cred), "--max-allowed-packet=512M", "--batch"]
        for n, i in enumerate(plan.items, 1):
            progress(f"[{n}/{len(plan.items)}] loading {i.file} into {i.target}")
            load_dump(client, plan.backup / i.file, rewrite)


def format_class(backend_name: str) -> Any:
    """The dump format class of a server family, by the backend's name."""
    formats: dict[str, type] = {"mysql": MySQLFormat, "postgresql": PgFormat}
    return formats[backend_name]


def format_for(backend: Backend) -> DumpFormat:
    """The dump format of ``backend``'s server family."""
    return format_class(backend.name)(backend)


def manifest_backend(manifest: dict[str, Any]) -> str:
    """The backend a backup was made on (manifests before PostgreSQL are MySQL/MariaDB)."""
    return str(manifest.get("backend") or "mysql")


def check_same_backend(manifest: dict[str, Any], backend: Backend, path: Path) -> None:
    made = manifest_backend(manifest)
    if made != backend.name:
        flavor = (manifest.get("server") or {}).get("flavor", made)
        raise UserError(f"{path} is a {flavor} backup and the server is {backend.name}: its dumps do not load here",
                        where=str(path), hint="restore it into a server of the family it was made on")
