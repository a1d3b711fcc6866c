"""The demo lab's djtui config: our format, every path inside the lab's directory, readable by its owner only."""

from __future__ import annotations

import json
import os
from pathlib import Path

from djtui.demo.model import CONFIG_NAME, DJ2_STORE, LEGACY_STORE, Schemas


def _s(value: object) -> str:
    return json.dumps(str(value))  # a JSON string is a valid YAML scalar, whatever it holds


def _backup_yaml(base: Path) -> str:
    """The backup manager's section: an enabled destination inside the lab and a disabled one."""
    s = _s
    return f"""backup:
  destinations:
    - name: "Lab NAS"
      base_path: {s(base / "backup")}
      path_structure: "{{session_date}}/{{participant_id}}"
      enabled: true
      verify_mount: false
    - name: "Offsite"
      base_path: {s(base / "offsite")}
      path_structure: "{{participant_id}}/{{session_date}}"
      enabled: false
      verify_mount: false
  source:
    base_path: {s(base / "data")}
    path_structure: "{{participant_id}}/{{session_date}}"
  filters:
    participant_prefixes: ["p", "t", "m"]
    exclude_patterns: ["*.tmp", "*.lock"]
  rsync:
    flags: "-a"
  verification:
    verify_after_sync: true
    verify_method: "size"

"""


def _database_yaml(settings) -> str:
    s = _s
    pg = f"  backend: postgresql\n  name: {s(settings.dbname)}\n" if settings.backend == "postgresql" else ""
    return f"""database:
{pg}  host: "127.0.0.1"
  port: {int(settings.port)}
  user: {s(settings.user)}
  password: {s(settings.password.reveal())}
  use_datajoint_config: false
"""


def _orphans_yaml(base: Path, sch: Schemas, spyglass: bool) -> str:
    s = _s
    if not spyglass:  # the PostgreSQL lab: no Spyglass (0.14-only) schemas, so no interval list or analysis dir
        return f"""orphans:
  temp_directories: [{s(base / "tmp")}]
  quarantine_dir: {s(base / "quarantine")}
"""
    return f"""orphans:
  tables: [{s(sch.common_interval + ".interval_list")}]
  directories:
    - path: {s(base / "analysis")}
      table: {s(sch.common_nwbfile + ".analysis_nwbfile")}
      column: "analysis_file_name"
    - path: {s(base / "analysis")}
      table: {s(sch.demo_results + ".custom_analysis_file")}
      column: "analysis_file_name"
  temp_directories: [{s(base / "tmp")}]
  quarantine_dir: {s(base / "quarantine")}
"""


def config_text(base: Path, settings, sch: Schemas) -> str:
    """Our config format, pointing every path inside the lab's directory (on PostgreSQL: no legacy
    0.14 store and no Spyglass tables, which that lab does not have)."""
    s = _s
    mysql = settings.backend != "postgresql"
    legacy = f"""  {LEGACY_STORE}:
    protocol: "file"
    location: {s(base / "stores" / LEGACY_STORE)}
""" if mysql else ""

    return f"""# djtui demo lab: written by `djtui demo`; everything it points at is inside {base}
{_backup_yaml(base)}{_database_yaml(settings)}
sessions:
  imported_rule: "multicamera"
  sessions_schema: {s(sch.mocap_sessions)}
  multicamera_schema: {s(sch.multicamera_tracking)}
  participant_id:
    strip_prefixes: ["p", "t"]
    numeric_only: true
  sqlite:
    path: {s(base / "data" / "recordings.db")}
  video_extensions: [".mp4"]

stores:
{legacy}  {DJ2_STORE}:
    protocol: "file"
    location: {s(base / "stores" / DJ2_STORE)}

{_orphans_yaml(base, sch, mysql)}
export:
  out_dir: {s(base / "exports")}

dbbackup:
  out_dir: {s(base / "dbbackups")}

maintenance:
  drives:
    - path: {s(base)}
      min_free_gb: 0.1
  temp_dirs: [{s(base / "tmp")}]
  history_csv: {s(base / "state" / "disk_history.csv")}

audit_log: {s(base / "state" / "audit.jsonl")}
state_dir: {s(base / "state")}
"""


def write_config(base: Path, settings, sch: Schemas) -> Path:
    path = base / CONFIG_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(config_text(base, settings, sch))
    os.chmod(path, 0o600)
    return path
