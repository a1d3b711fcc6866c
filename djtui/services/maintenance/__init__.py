"""Keeping a lab server alive from cron: disk space and runway (``disk``), temp cleaning through the
orphans service's stale-temp quarantine (``temp``), and the nightly job (``nightly``: disk, temp,
orphan summary, database backup, notification). May import config, errors, domain and the services
it drives (orphans, dbbackup, notify, audit, locks); never tui/ or cli/.
"""

from djtui.services.maintenance.disk import GB, DriveStatus, append_history, check_disks, read_history, runway_days
from djtui.services.maintenance.nightly import (
    TEMP_MAX_AGE_DAYS,
    NightlyReport,
    clean_temp_audited,
    disk_row,
    orphan_summary,
    run_nightly,
    temp_dirs,
)
from djtui.services.maintenance.temp import CleanResult, clean_temp, temp_config

__all__ = [
    "GB", "TEMP_MAX_AGE_DAYS", "CleanResult", "DriveStatus", "NightlyReport", "append_history", "check_disks",
    "clean_temp", "clean_temp_audited", "disk_row", "orphan_summary", "read_history", "run_nightly",
    "runway_days", "temp_config", "temp_dirs",
]
