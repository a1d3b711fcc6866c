"""The nightly job (``djtui maintenance run`` from cron): disk check, temp clean, orphan summary,
database backup; every step runs even when an earlier one failed, and the problems are sent by
e-mail/Slack at the end. The CLI only parses its options and prints the report.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djtui.config import Config
from djtui.errors import OperationFailed, UserError
from djtui.services import notify
from djtui.services.audit import AuditLog
from djtui.services.dbbackup import run_backup_and_copy
from djtui.services.locks import exclusive
from djtui.services.maintenance.disk import DriveStatus, check_disks
from djtui.services.maintenance.temp import CleanResult, clean_temp, temp_config
from djtui.services.orphans import OrphanService

TEMP_MAX_AGE_DAYS = 7.0


@dataclass
class NightlyReport:
    report: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)
    notify_errors: list[str] = field(default_factory=list)


def disk_row(s: DriveStatus) -> list[str]:
    """drive, free GiB, total GiB, limit GiB, runway, state: one table row (also the report's words)."""
    if s.error:
        return [str(s.path), "-", "-", f"{s.min_free_gb:g}", "-", f"ERROR {s.error}"]
    runway = "-" if s.runway_days is None else f"{s.runway_days:.0f} d"
    return [str(s.path), f"{s.free_bytes / 1024**3:.1f}", f"{s.total_bytes / 1024**3:.1f}", f"{s.min_free_gb:g}",
            runway, "LOW" if s.low else "ok"]


def temp_dirs(config: Config) -> list[Path]:
    """The temp directories of both sections, each once: ``maintenance.temp_dirs`` first."""
    out: list[Path] = []
    for d in (*config.maintenance.temp_dirs, *config.orphans.temp_directories):
        if Path(d) not in out:
            out.append(Path(d))
    return out


def clean_temp_audited(config: Config, db: Any, dirs: Sequence[Path], *, max_age_days: float,
                       dry_run: bool = False) -> CleanResult:
    """The temp clean of the CLI and the nightly job: a dry run as is; else locked and audited."""
    if dry_run:
        return clean_temp(config, db, dirs, max_age_days=max_age_days, dry_run=True, now=time.time())
    with exclusive(config.state_dir, "maintenance:tmp-clean", purpose="tmp-clean"), \
            AuditLog(config.audit_log).action("tmp-clean", target=", ".join(map(str, dirs)),
                                              dirs=[str(d) for d in dirs], days=max_age_days) as rec:
        res = clean_temp(config, db, dirs, max_age_days=max_age_days, now=time.time())
        rec.outcome("ok" if not res.errors else "partial", files=len(res.files), dirs=len(res.dirs),
                    bytes=res.bytes, batches=res.batches, errors=res.errors[:20])
    return res


def orphan_summary(config: Config, db: Any) -> str:
    """One line per orphan source (the temp directories of both sections included): orphans and bytes."""
    svc = OrphanService(temp_config(config, temp_dirs(config), config.orphans.temp_max_age_days), db)
    lines = []
    for src in svc.sources():
        try:
            r = svc.scan(src)
        except Exception as exc:  # one broken source must not hide the others in a cron mail
            lines.append(f"{src.name}: scan failed: {exc}")
            continue
        lines.append(f"{src.name}: {r.orphans} orphans, {r.bytes} bytes")
    return "\n".join(lines) if lines else "no orphan sources configured"


def _disks(config: Config, out: NightlyReport) -> None:
    m = config.maintenance
    if not m.drives:
        return
    for s in check_disks(m.drives, m.history_csv):
        row = disk_row(s)
        out.report.append(f"disk {row[0]}: {row[1]} GiB free of {row[2]}, limit {row[3]}, runway {row[4]}, {row[5]}")
        if s.error:
            out.problems.append(f"disk {s.path}: {s.error}")
        elif s.low:
            out.problems.append(f"disk {s.path} is low: {s.free_gb:.1f} GiB free, limit {s.min_free_gb:g} GiB")


def _temp(config: Config, db: Any, out: NightlyReport) -> None:
    dirs = temp_dirs(config)
    if not dirs:
        return
    try:
        res = clean_temp_audited(config, db, dirs, max_age_days=TEMP_MAX_AGE_DAYS)
        out.report.append(f"temp clean: quarantined {len(res.files)} files ({res.bytes} bytes), removed "
                          f"{len(res.dirs)} empty dirs" + (f"; batches {', '.join(res.batches)}" if res.batches
                                                           else ""))
        out.problems.extend(f"temp clean: {e}" for e in res.errors)
    except (OperationFailed, UserError, OSError) as exc:
        out.problems.append(f"temp clean failed: {exc}")


def _backup(config: Config, db: Any, out_dir: Path | None, out: NightlyReport) -> None:
    out_dir = out_dir or config.dbbackup.out_dir
    if out_dir is None:
        out.report.append("backup: skipped (dbbackup.out_dir not set)")
        return
    try:
        res = run_backup_and_copy(db, Path(out_dir), config.state_dir, remote=config.dbbackup.remote,
                                  parallel=config.dbbackup.parallel)
        out.report.append(f"backup: {res.path}")
    except (OperationFailed, UserError, OSError) as exc:
        out.problems.append(f"backup failed: {exc}")


def run_nightly(config: Config, db: Any, *, backup: bool = True, orphans: bool = True,
                out_dir: Path | None = None) -> NightlyReport:
    """Every step, then one notification (e-mail/Slack) listing the problems, when there are any."""
    out = NightlyReport()
    _disks(config, out)
    _temp(config, db, out)
    if orphans:
        try:
            out.report.append("orphans:\n" + orphan_summary(config, db))
        except Exception as exc:  # a summary is informative; its failure is reported, not fatal
            out.problems.append(f"orphan scan failed: {exc}")
    if backup:
        _backup(config, db, out_dir, out)
    if out.problems:
        body = "\n".join(["Problems:", *(f"- {p}" for p in out.problems), "", "Report:", *out.report])
        res = notify.notify(config.maintenance.notify, f"djtui maintenance: {len(out.problems)} problem(s)", body)
        out.notified, out.notify_errors = list(res.sent), list(res.errors)
    return out
