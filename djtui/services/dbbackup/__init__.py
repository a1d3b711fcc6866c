"""Database backups: dump (parallel per schema + whole server), restore-verify, list/prune, copy, restore.

Modules, each building on those before it: ``manifest`` (folder layout), ``tools`` (programs from
the database's backend, compressor, pipes, exact counts), ``dumpfile`` (reading a SQL dump),
``pgformat`` (PostgreSQL: pg_dump's custom format per schema from one snapshot, pg_dumpall's roles,
pg_restore), ``formats`` (what a backup's files are on each server family, picked by the backend's
name: ``MySQLFormat``, ``PgFormat``), ``store`` (list, retention, prune), ``dump``, ``copy``
(``run_backup_and_copy``: the one workflow of the CLI and the Backups screen),
``verify`` (into a private server of the backup's family), ``plan`` and
``restore`` (a plan executed once). The plans themselves (PrunePlan, RestorePlan) and BackupInfo are
frozen, pure objects in ``djtui/domain/dbbackup.py``. May import domain/, djtui.errors/config and the
services below it (database, backends, locks, commandlog, servers); never tui/ or cli/.
"""

from djtui.domain.dbbackup import SAFETY_FOLDER, BackupInfo, PrunePlan, RestoreItem, RestorePlan
from djtui.errors import OperationFailed
from djtui.services.dbbackup.copy import CopyFailed, rsync_copy, run_backup_and_copy, run_backup_locked
from djtui.services.dbbackup.dump import BackupResult, SchemaDump, dump_options, run_backup, server_file_options
from djtui.services.dbbackup.manifest import (
    MANIFEST,
    PARTIAL_PREFIX,
    SERVER_FILE,
    STAMP_FORMAT,
    VERIFIED,
    read_manifest,
)
from djtui.services.dbbackup.plan import plan_restore
from djtui.services.dbbackup.restore import RestoreResult, restore_backup, restore_lock_name
from djtui.services.dbbackup.store import (
    execute_prune,
    list_backups,
    lock_name,
    plan_prune,
    prune_backups,
    remove_backup,
)
from djtui.services.dbbackup.tools import Tools, decompressor_for, sha256_file, table_counts, tools_for
from djtui.services.dbbackup.verify import VerifyResult, verify_backup, verify_backup_locked

__all__ = [
    "MANIFEST",
    "PARTIAL_PREFIX",
    "SAFETY_FOLDER",
    "SERVER_FILE",
    "STAMP_FORMAT",
    "VERIFIED",
    "BackupInfo",
    "BackupResult",
    "CopyFailed",
    "OperationFailed",
    "PrunePlan",
    "RestoreItem",
    "RestorePlan",
    "RestoreResult",
    "SchemaDump",
    "Tools",
    "VerifyResult",
    "decompressor_for",
    "dump_options",
    "execute_prune",
    "list_backups",
    "lock_name",
    "plan_prune",
    "plan_restore",
    "prune_backups",
    "read_manifest",
    "remove_backup",
    "restore_backup",
    "restore_lock_name",
    "rsync_copy",
    "run_backup",
    "run_backup_and_copy",
    "run_backup_locked",
    "server_file_options",
    "sha256_file",
    "table_counts",
    "tools_for",
    "verify_backup",
    "verify_backup_locked",
]
