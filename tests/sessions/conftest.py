"""A small lab for the sessions tests: the MultiCameraTracking tables, a source tree, two destinations."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from djtui import labschema
from djtui.config import Config, parse_config


@dataclass
class Lab:
    root: Path
    source: Path
    dest: Path
    dest2: Path
    config_path: Path
    schemas: dict[str, str]
    server: object
    sqlite: Path

    @property
    def config(self) -> Config:
        return parse_config(self.config_path.read_text(), path=self.config_path)

    def make_session(self, pid: str, date: str, files: int = 4, size: int = 1000, *, extra: dict | None = None) -> Path:
        d = self.source / pid / date
        d.mkdir(parents=True, exist_ok=True)
        for i in range(files):
            (d / f"cam{i}.mp4").write_bytes(os.urandom(size))
        (d / "meta").mkdir(exist_ok=True)
        (d / "meta" / "info.json").write_text(f'{{"n": {files}}}')
        for name, data in (extra or {}).items():
            (d / name).write_bytes(data)
        return d

    def import_session(self, pid: str, date: str, plan: labschema.ImportPlan | None = None,
                       sqlite: bool = True) -> None:
        plan = plan or labschema.ImportPlan()
        db_pid = pid[1:] if pid[:1] in "pt" and pid[1:].isdigit() else pid
        day = dt.datetime.strptime(date, "%Y%m%d").date()
        conn = self.server.connect()
        try:
            with conn.cursor() as cur:
                labschema.insert_session(cur, db_pid, day, plan, sessions=self.schemas["sessions"],
                                         multicamera=self.schemas["multicamera"], pose=self.schemas["pose"])
        finally:
            conn.close()
        with sqlite3.connect(self.sqlite) as sc:
            labschema.sqlite_add_session(sc, pid, day, str(self.source / pid / date), imported=sqlite)

    def dest_dir(self, pid: str, date: str, dest: Path | None = None) -> Path:
        return (dest or self.dest) / date / pid


def lab_config(server, root: Path, schemas: dict[str, str], *, dest2: bool = False, extra: str = "") -> str:
    d2 = (f"""
    - name: second
      base_path: {root}/dest2
      path_structure: "{{participant_id}}/{{session_date}}"
""" if dest2 else "")
    return f"""
backup:
  source:
    base_path: {root}/source
    path_structure: "{{participant_id}}/{{session_date}}"
  destinations:
    - name: net
      mount_point: {root}/mnt
      base_path: {root}/mnt/backup
      path_structure: "{{session_date}}/{{participant_id}}"
      verify_mount: false  # {root}/mnt is a plain directory standing in for the share
{d2}
  filters:
    participant_prefixes: ["p", "t"]
    exclude_patterns: ["*.tmp"]
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
  sqlite:
    path: {root}/source/recordings.db
  mount_timeout: 2
state_dir: {root}/state
audit_log: {root}/audit.jsonl
{extra}
"""


@pytest.fixture
def make_lab_config():
    """``lab_config`` for test modules: importing a conftest by name picks whichever one loaded first."""
    return lab_config


@pytest.fixture
def lab(server, schema_name, tmp_path) -> Iterator[Lab]:
    schemas = {"sessions": f"{schema_name}_sess", "multicamera": f"{schema_name}_mc", "pose": f"{schema_name}_pose"}
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            labschema.create_tables(cur, **schemas)
    finally:
        conn.close()
    for sub in ("source", "mnt/backup", "dest2", "state"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(lab_config(server, tmp_path, schemas))
    cfg.chmod(0o600)
    yield Lab(tmp_path, tmp_path / "source", tmp_path / "mnt" / "backup", tmp_path / "dest2", cfg, schemas, server,
              tmp_path / "source" / "recordings.db")
    conn = server.connect()
    try:
        with conn.cursor() as cur:  # children first: the schemas reference each other
            labschema.drop_tables(cur, [schemas["sessions"], schemas["multicamera"], schemas["pose"]])
    finally:
        conn.close()
