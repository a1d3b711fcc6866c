"""A small sessions lab for the R2 path tests: the MultiCameraTracking tables, a source, one destination."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from djtui import labschema


@dataclass
class PathLab:
    root: Path
    source: Path
    dest: Path
    outside: Path
    config_path: Path
    schemas: dict[str, str]
    server: object

    def import_session(self, pid: str, date: str) -> None:
        db_pid = pid[1:] if pid[:1] in "pt" and pid[1:].isdigit() else pid
        conn = self.server.connect()
        try:
            with conn.cursor() as cur:
                labschema.insert_session(cur, db_pid, dt.datetime.strptime(date, "%Y%m%d").date(),
                                         sessions=self.schemas["sessions"], multicamera=self.schemas["multicamera"],
                                         pose=self.schemas["pose"])
        finally:
            conn.close()

    def src_dir(self, pid: str, date: str) -> Path:
        return self.source / pid / date

    def dest_dir(self, pid: str, date: str) -> Path:
        return self.dest / date / pid


def build_path_lab(server, schema_name: str, tmp_path: Path) -> Iterator[PathLab]:
    """The body of a fixture (yield-style): schemas created before, dropped after."""
    schemas = {"sessions": f"{schema_name}_sess", "multicamera": f"{schema_name}_mc", "pose": f"{schema_name}_pose"}
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            labschema.create_tables(cur, **schemas)
    finally:
        conn.close()
    for sub in ("source", "mnt/backup", "outside", "state"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(f"""
backup:
  source:
    base_path: {tmp_path}/source
  destinations:
    - name: net
      mount_point: {tmp_path}/mnt
      base_path: {tmp_path}/mnt/backup
      path_structure: "{{session_date}}/{{participant_id}}"
      verify_mount: false  # {tmp_path}/mnt is a plain directory standing in for the share
  rsync:
    flags: "-a"
database:
  host: 127.0.0.1
  port: {server.port}
  user: djadmin
  password: {server.password.reveal()}
  use_datajoint_config: false
sessions:
  sessions_schema: {schemas['sessions']}
  multicamera_schema: {schemas['multicamera']}
  mount_timeout: 5
state_dir: {tmp_path}/state
audit_log: {tmp_path}/audit.jsonl
""")
    cfg.chmod(0o600)
    yield PathLab(tmp_path, tmp_path / "source", tmp_path / "mnt" / "backup", tmp_path / "outside", cfg, schemas,
                  server)
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            labschema.drop_tables(cur, [schemas["sessions"], schemas["multicamera"], schemas["pose"]])
    finally:
        conn.close()
