"""Execute a restore plan once: locked, re-checked at the moment of action, hashes first, an
optional safety dump of what is overwritten, then the loads, then counts compared and audited."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djtui.domain.dbbackup import RestoreItem, RestorePlan
from djtui.errors import OperationFailed, UserError
from djtui.services.database import Database
from djtui.services.dbbackup.dump import run_backup
from djtui.services.dbbackup.formats import format_for
from djtui.services.dbbackup.plan import plan_restore
from djtui.services.dbbackup.store import lock_name
from djtui.services.dbbackup.tools import Progress, quiet, sha256_file, table_counts
from djtui.services.locks import exclusive


@dataclass
class RestoreResult:
    plan: RestorePlan
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    tables_checked: int = 0
    seconds: float = 0.0
    safety_backup: Path | None = None  # the overwritten schemas as they were, when a safety dump was made


_executed: set[str] = set()  # ids of the plans that started loading (in this process)
_executed_lock = threading.Lock()


def _claim(plan: RestorePlan) -> None:
    """A confirmed plan runs once: a second call with it is refused (make and confirm a new plan)."""
    with _executed_lock:
        if plan.plan_id in _executed:
            raise UserError(f"this restore plan of {plan.backup.name} was executed already; nothing was loaded",
                            hint="look at the plan again (`djtui dbbackup restore --dry-run`) and confirm a new one")
        _executed.add(plan.plan_id)


def restore_lock_name(db: Database) -> str:
    return f"dbbackup-restore:{db.settings.address}"


def _recheck(db: Database, plan: RestorePlan) -> None:
    """The plan made again must overwrite the same schemas, and every file must match its hash."""
    now = plan_restore(db, plan.backup, schemas=[i.source for i in plan.items],
                       renames={i.source: i.target for i in plan.items})
    if [i.target for i in now.overwritten] != [i.target for i in plan.overwritten]:
        raise OperationFailed("the schemas this restore would overwrite changed since the plan was shown "
                              f"(now: {', '.join(i.target for i in now.overwritten) or 'none'}); "
                              "nothing was loaded, look at the plan again")
    for i in plan.items:
        f = plan.backup / i.file
        if not f.is_file():
            raise OperationFailed(f"{f}: missing; nothing was loaded")
        if sha256_file(f) != i.sha256:
            raise OperationFailed(f"{f}: sha256 differs from the manifest; nothing was loaded")


def _load(db: Database, plan: RestorePlan, progress: Progress) -> None:
    backend = db.backend
    with backend.credentials_file(db.settings) as cred:
        format_for(backend).load_live(db, cred, plan, progress)


def restore_backup(db: Database, plan: RestorePlan, state_dir: Path, audit: Any, *,
                   progress: Progress = quiet, db_user: str | None = None,
                   safety_dir: Path | None = None) -> RestoreResult:
    """Load the plan's dumps into the server: locked, re-checked, hashes first, counts after, audited.

    At the moment of action the plan is made again and must overwrite exactly the schemas the
    confirmed plan named (else OperationFailed, nothing loaded). Every file's sha256 must match the
    manifest before the first one is loaded. After loading, each table's COUNT(*) (and CHECKSUM TABLE
    when the manifest has one) is compared with the manifest.

    With ``safety_dir``, the schemas about to be overwritten are first dumped there (a normal djtui
    backup, ``safety_dir/<stamp>``, restorable the same way): a restore that loads the wrong backup,
    or fails half-way, loses nothing.
    """
    t0 = time.monotonic()
    result = RestoreResult(plan)
    with exclusive(state_dir, restore_lock_name(db), purpose="dbbackup restore"), \
            exclusive(state_dir, lock_name(plan.backup.parent), purpose="dbbackup restore"):
        _recheck(db, plan)
        _claim(plan)
        progress(f"hashes: {len(plan.items)}/{len(plan.items)} match the manifest")
        if safety_dir is not None and plan.overwritten:
            progress(f"dumping the {len(plan.overwritten)} schema(s) about to be overwritten to {safety_dir}")
            result.safety_backup = run_backup(db, Path(safety_dir), schemas=[i.target for i in plan.overwritten],
                                              full_server=False).path
        with audit.action("dbbackup-restore", target=", ".join(i.target for i in plan.items), db_user=db_user,
                          backup=str(plan.backup), schemas={i.source: i.target for i in plan.items},
                          overwrites={i.target: sum((i.current or {}).values()) for i in plan.overwritten},
                          safety_backup=str(result.safety_backup) if result.safety_backup else None) as rec:
            _load(db, plan, progress)
            for i in plan.items:
                result.problems.extend(_compare(db, i, result))
            result.ok = not result.problems
            rec.outcome("ok" if result.ok else "mismatch", tables=result.tables_checked,
                        problems=result.problems[:20])
    result.seconds = time.monotonic() - t0
    return result


def _compare(db: Database, item: RestoreItem, result: RestoreResult) -> list[str]:
    problems = []
    got = table_counts(db, item.target)
    for table, expected in item.tables.items():
        if table not in got:
            problems.append(f"{item.target}.{table}: missing after restore")
            continue
        result.tables_checked += 1
        if got[table] != int(expected):
            problems.append(f"{item.target}.{table}: {got[table]} rows after restore, manifest says {expected}")
        if item.checksums and table in item.checksums:
            row = db.query(f"CHECKSUM TABLE {db.dialect.table(item.target, table)} EXTENDED")
            if row and row[0][1] is not None and int(row[0][1]) != int(item.checksums[table]):
                problems.append(f"{item.target}.{table}: CHECKSUM TABLE differs from the manifest")
    return problems
