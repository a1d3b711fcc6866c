"""The MultiCameraTracking tables, declared as DataJoint 0.14 lays them out in MySQL.

Used by the demo lab, the tests and the benchmarks to build a lab database
that looks like a real one (``FIELD.md`` section 1): ``mocap_sessions``
(Subject, Session, Recording), ``multicamera_tracking``
(MultiCameraRecording, SingleCameraVideo) and ``pose_pipeline`` (Video, with
an ``attach@localattach`` column and its ``~external_localattach`` table).
The SQL is MySQL/MariaDB's (the lab DataJoint 0.14 builds), quoted through ``domain.dialects.MYSQL``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from djtui.domain.dialects import MYSQL

DEFAULT_SCHEMAS = {"sessions": "mocap_sessions", "multicamera": "multicamera_tracking", "pose": "pose_pipeline"}


def ddl(sessions: str, multicamera: str, pose: str) -> list[str]:
    s, m, p = MYSQL.ident(sessions), MYSQL.ident(multicamera), MYSQL.ident(pose)
    return [
        f"CREATE DATABASE IF NOT EXISTS {p}",
        f"CREATE DATABASE IF NOT EXISTS {m}",
        f"CREATE DATABASE IF NOT EXISTS {s}",
        f"""CREATE TABLE IF NOT EXISTS {p}.`~external_localattach` (
            hash UUID NOT NULL COMMENT 'hash of contents (blob), of filename + contents (attach), or relative filepath',
            size BIGINT UNSIGNED NOT NULL COMMENT 'size of object in bytes',
            attachment_name VARCHAR(255) NULL COMMENT 'the filename of an attachment',
            filepath VARCHAR(1000) NULL COMMENT 'relative filepath or attachment filename',
            contents_hash UUID NULL COMMENT 'used for the filepath datatype',
            timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP COMMENT 'automatic timestamp',
            PRIMARY KEY (hash)
        ) ENGINE=InnoDB COMMENT 'external storage tracking'""",
        f"""CREATE TABLE IF NOT EXISTS {p}.`video` (
            video_project VARCHAR(50) NOT NULL,
            filename VARCHAR(100) NOT NULL,
            video UUID NOT NULL COMMENT ':attach@localattach:',
            start_time TIMESTAMP(3) NULL,
            PRIMARY KEY (video_project, filename),
            FOREIGN KEY (video) REFERENCES {p}.`~external_localattach` (hash)
                ON UPDATE RESTRICT ON DELETE RESTRICT
        ) ENGINE=InnoDB""",
        f"""CREATE TABLE IF NOT EXISTS {m}.`multi_camera_recording` (
            recording_timestamps TIMESTAMP NOT NULL,
            camera_config_hash VARCHAR(50) NOT NULL,
            video_project VARCHAR(50) NOT NULL,
            video_base_filename VARCHAR(100) NOT NULL,
            PRIMARY KEY (recording_timestamps, camera_config_hash)
        ) ENGINE=InnoDB""",
        f"""CREATE TABLE IF NOT EXISTS {m}.`single_camera_video` (
            recording_timestamps TIMESTAMP NOT NULL,
            camera_config_hash VARCHAR(50) NOT NULL,
            video_project VARCHAR(50) NOT NULL,
            filename VARCHAR(100) NOT NULL,
            camera_name VARCHAR(50) NOT NULL,
            frame_timestamps LONGBLOB NOT NULL,
            PRIMARY KEY (recording_timestamps, camera_config_hash, video_project, filename),
            FOREIGN KEY (recording_timestamps, camera_config_hash)
                REFERENCES {m}.`multi_camera_recording` (recording_timestamps, camera_config_hash)
                ON UPDATE CASCADE ON DELETE RESTRICT,
            FOREIGN KEY (video_project, filename) REFERENCES {p}.`video` (video_project, filename)
                ON UPDATE CASCADE ON DELETE RESTRICT
        ) ENGINE=InnoDB""",
        f"""CREATE TABLE IF NOT EXISTS {s}.`subject` (
            participant_id VARCHAR(50) NOT NULL,
            PRIMARY KEY (participant_id)
        ) ENGINE=InnoDB""",
        f"""CREATE TABLE IF NOT EXISTS {s}.`session` (
            participant_id VARCHAR(50) NOT NULL,
            session_date DATE NOT NULL,
            PRIMARY KEY (participant_id, session_date),
            FOREIGN KEY (participant_id) REFERENCES {s}.`subject` (participant_id)
                ON UPDATE CASCADE ON DELETE RESTRICT
        ) ENGINE=InnoDB""",
        f"""CREATE TABLE IF NOT EXISTS {s}.`recording` (
            participant_id VARCHAR(50) NOT NULL,
            session_date DATE NOT NULL,
            recording_timestamps TIMESTAMP NOT NULL,
            camera_config_hash VARCHAR(50) NOT NULL,
            comment VARCHAR(255) NOT NULL DEFAULT '',
            PRIMARY KEY (participant_id, session_date, recording_timestamps, camera_config_hash),
            FOREIGN KEY (participant_id, session_date) REFERENCES {s}.`session` (participant_id, session_date)
                ON UPDATE CASCADE ON DELETE RESTRICT,
            FOREIGN KEY (recording_timestamps, camera_config_hash)
                REFERENCES {m}.`multi_camera_recording` (recording_timestamps, camera_config_hash)
                ON UPDATE CASCADE ON DELETE RESTRICT
        ) ENGINE=InnoDB""",
    ]


def create_tables(cursor, sessions: str = DEFAULT_SCHEMAS["sessions"],
                  multicamera: str = DEFAULT_SCHEMAS["multicamera"], pose: str = DEFAULT_SCHEMAS["pose"]) -> None:
    """Create the three schemas and six tables (idempotent)."""
    for stmt in ddl(sessions, multicamera, pose):
        cursor.execute(stmt)


@dataclass(frozen=True)
class ImportPlan:
    """How much of a session to import: lets tests and the demo build partial imports."""

    subject: bool = True
    session: bool = True
    recordings: int = 1  # Recording rows (each with its MultiCameraRecording row)
    cameras: int = 4
    videos: bool = True  # SingleCameraVideo rows for each recording


def insert_session(cursor, participant_id: str, session_date: dt.date, plan: ImportPlan = ImportPlan(), *,
                   sessions: str = DEFAULT_SCHEMAS["sessions"], multicamera: str = DEFAULT_SCHEMAS["multicamera"],
                   pose: str = DEFAULT_SCHEMAS["pose"], project: str = "mobile_system") -> None:
    """Insert one session's rows as the acquisition GUI's push to DataJoint would (or a part of them)."""
    s, m, p = MYSQL.ident(sessions), MYSQL.ident(multicamera), MYSQL.ident(pose)
    if plan.subject:
        cursor.execute(f"INSERT IGNORE INTO {s}.`subject` VALUES (%s)", (participant_id,))
    if plan.session:
        cursor.execute(f"INSERT IGNORE INTO {s}.`session` VALUES (%s, %s)", (participant_id, session_date))
    for r in range(plan.recordings):
        ts = dt.datetime.combine(session_date, dt.time(10 + r, 0, 0))
        cfg = hashlib.md5(f"{participant_id}{session_date}{r}".encode()).hexdigest()[:16]
        base = f"{participant_id}_{session_date:%Y%m%d}_{r:02d}"
        cursor.execute(f"INSERT IGNORE INTO {m}.`multi_camera_recording` VALUES (%s, %s, %s, %s)",
                       (ts, cfg, project, base))
        if plan.session and plan.subject:
            cursor.execute(f"INSERT IGNORE INTO {s}.`recording` VALUES (%s, %s, %s, %s, %s)",
                           (participant_id, session_date, ts, cfg, ""))
        if plan.videos:
            for c in range(plan.cameras):
                fname = f"{base}.cam{c}.mp4"
                h = uuid.UUID(hashlib.md5(f"{project}/{fname}".encode()).hexdigest())
                cursor.execute(f"INSERT IGNORE INTO {p}.`~external_localattach` (hash, size, attachment_name) "
                               "VALUES (%s, %s, %s)", (str(h), 1024, fname))
                cursor.execute(f"INSERT IGNORE INTO {p}.`video` VALUES (%s, %s, %s, %s)",
                               (project, fname, str(h), ts))
                cursor.execute(f"INSERT IGNORE INTO {m}.`single_camera_video` VALUES (%s, %s, %s, %s, %s, %s)",
                               (ts, cfg, project, fname, f"cam{c}", b"\x00" * 16))



def insert_sessions_bulk(cursor, sessions: Iterable[tuple[str, dt.date, ImportPlan]], *,
                         sessions_schema: str = DEFAULT_SCHEMAS["sessions"],
                         multicamera: str = DEFAULT_SCHEMAS["multicamera"], pose: str = DEFAULT_SCHEMAS["pose"],
                         project: str = "mobile_system", batch: int = 5000) -> int:
    """The rows of :func:`insert_session` for many sessions, sent with a few ``executemany`` calls.

    One statement per table and batch keeps the demo lab and the benchmarks' generators fast
    (thousands of sessions in seconds); returns the number of rows written.
    """
    s, m, p = MYSQL.ident(sessions_schema), MYSQL.ident(multicamera), MYSQL.ident(pose)
    rows = session_rows(sessions, project)
    statements = [
        ("subject", f"INSERT IGNORE INTO {s}.`subject` VALUES (%s)"),
        ("session", f"INSERT IGNORE INTO {s}.`session` VALUES (%s, %s)"),
        ("mcr", f"INSERT IGNORE INTO {m}.`multi_camera_recording` VALUES (%s, %s, %s, %s)"),
        ("rec", f"INSERT IGNORE INTO {s}.`recording` VALUES (%s, %s, %s, %s, %s)"),
        ("ext", f"INSERT IGNORE INTO {p}.`~external_localattach` (hash, size, attachment_name) VALUES (%s, %s, %s)"),
        ("video", f"INSERT IGNORE INTO {p}.`video` VALUES (%s, %s, %s, %s)"),
        ("scv", f"INSERT IGNORE INTO {m}.`single_camera_video` VALUES (%s, %s, %s, %s, %s, %s)"),
    ]
    total = 0
    for key, sql in statements:
        data = rows[key]
        for i in range(0, len(data), batch):
            cursor.executemany(sql, data[i:i + batch])
        total += len(data)
    return total

def session_rows(sessions: Iterable[tuple[str, dt.date, ImportPlan]],
                 project: str = "mobile_system") -> dict[str, list[tuple]]:
    """The rows of :func:`insert_session` for many sessions, by table (subject, session, mcr = MultiCamera-
    Recording, rec = Recording, ext = the attachment, video, scv = SingleCameraVideo)."""
    rows: dict[str, list[tuple]] = {k: [] for k in ("subject", "session", "mcr", "rec", "ext", "video", "scv")}
    for participant_id, session_date, plan in sessions:
        if plan.subject:
            rows["subject"].append((participant_id,))
        if plan.session:
            rows["session"].append((participant_id, session_date))
        for r in range(plan.recordings):
            ts = dt.datetime.combine(session_date, dt.time(10 + r, 0, 0))
            cfg = hashlib.md5(f"{participant_id}{session_date}{r}".encode()).hexdigest()[:16]
            base = f"{participant_id}_{session_date:%Y%m%d}_{r:02d}"
            rows["mcr"].append((ts, cfg, project, base))
            if plan.session and plan.subject:
                rows["rec"].append((participant_id, session_date, ts, cfg, ""))
            if plan.videos:
                for c in range(plan.cameras):
                    fname = f"{base}.cam{c}.mp4"
                    h = str(uuid.UUID(hashlib.md5(f"{project}/{fname}".encode()).hexdigest()))
                    rows["ext"].append((h, 1024, fname))
                    rows["video"].append((project, fname, h, ts))
                    rows["scv"].append((ts, cfg, project, fname, f"cam{c}", b"\x00" * 16))
    return rows


def drop_tables(cursor, schemas: Iterable[str] = DEFAULT_SCHEMAS.values()) -> None:
    for name in schemas:
        cursor.execute(f"DROP DATABASE IF EXISTS {MYSQL.ident(name)}")


SQLITE_DDL = [
    "CREATE TABLE IF NOT EXISTS participants (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, session_date TEXT NOT NULL, "
    "session_path TEXT, participant_id INTEGER REFERENCES participants(id))",
    "CREATE TABLE IF NOT EXISTS recordings (id INTEGER PRIMARY KEY, session_id INTEGER REFERENCES sessions(id), "
    "filename TEXT, camera_config_hash TEXT)",
    "CREATE TABLE IF NOT EXISTS imported (id INTEGER PRIMARY KEY, session_id INTEGER REFERENCES sessions(id))",
]


def sqlite_add_session(conn, participant: str, session_date: dt.date, session_path: str, *,
                       imported: bool) -> None:
    """Record a session in the acquisition GUI's SQLite file; ``imported`` adds its ``imported`` row."""
    for stmt in SQLITE_DDL:
        conn.execute(stmt)
    conn.execute("INSERT OR IGNORE INTO participants (name) VALUES (?)", (participant,))
    pid = conn.execute("SELECT id FROM participants WHERE name = ?", (participant,)).fetchone()[0]
    cur = conn.execute("INSERT INTO sessions (session_date, session_path, participant_id) VALUES (?, ?, ?)",
                       (session_date.isoformat(), session_path, pid))
    if imported:
        conn.execute("INSERT INTO imported (session_id) VALUES (?)", (cur.lastrowid,))


# -- DataJoint 2.x ---------------------------------------------------------------------------------
# The same six tables as DataJoint 2.x declares them (its core type names: datetime for TIMESTAMP,
# <blob> for LONGBLOB, <attach> for the 0.14 attach@store: DataJoint 2.x has no ~external_* tables).
# Used where the lab's server is one DataJoint 0.14 never ran on (PostgreSQL).

DJ2_DEFINITIONS = {
    "Video": """
    video_project : varchar(50)
    filename : varchar(100)
    ---
    video : <attach>
    start_time = null : datetime(3)
    """,
    "MultiCameraRecording": """
    recording_timestamps : datetime
    camera_config_hash : varchar(50)
    ---
    video_project : varchar(50)
    video_base_filename : varchar(100)
    """,
    "SingleCameraVideo": """
    -> MultiCameraRecording
    -> Video
    ---
    camera_name : varchar(50)
    frame_timestamps : <blob>
    """,
    "Subject": """
    participant_id : varchar(50)
    """,
    "Session": """
    -> Subject
    session_date : date
    """,
    "Recording": """
    -> Session
    -> MultiCameraRecording
    ---
    comment = '' : varchar(255)
    """,
}


def declare_dj2(dj, connection, sessions: str = DEFAULT_SCHEMAS["sessions"],
                multicamera: str = DEFAULT_SCHEMAS["multicamera"], pose: str = DEFAULT_SCHEMAS["pose"]) -> dict:
    """Declare the six tables with DataJoint 2.x (``dj`` the module, ``connection`` a ``dj.Connection``);
    returns the table classes by name. Parents come first, in the schema DataJoint 0.14 labs use."""
    context: dict = {}
    where = {"Video": pose, "MultiCameraRecording": multicamera, "SingleCameraVideo": multicamera,
             "Subject": sessions, "Session": sessions, "Recording": sessions}
    made: dict[str, dj.Schema] = {}
    for name, definition in DJ2_DEFINITIONS.items():
        schema_name = where[name]
        if schema_name not in made:
            made[schema_name] = dj.Schema(schema_name, context=context, connection=connection)
        cls = type(name, (dj.Manual,), {"definition": definition, "__module__": __name__})
        context[name] = made[schema_name](cls)
    return context


def insert_sessions_dj2(tables: dict, sessions: Iterable[tuple[str, dt.date, ImportPlan]], attach_dir,
                        project: str = "mobile_system") -> int:
    """The rows of :func:`insert_sessions_bulk`, inserted through DataJoint 2.x into ``declare_dj2``'s
    tables; each video's attachment is a small file written under ``attach_dir``. Returns rows written."""
    import os

    import numpy as np

    rows = session_rows(sessions, project)
    os.makedirs(attach_dir, exist_ok=True)
    videos = []
    for video_project, fname, _h, ts in rows["video"]:
        path = os.path.join(attach_dir, fname)
        with open(path, "wb") as fh:
            fh.write(f"{video_project}/{fname}".encode())
        videos.append((video_project, fname, path, ts))
    stamps = np.zeros(2, dtype=np.float64)
    plan = [("Subject", rows["subject"]), ("Session", rows["session"]), ("MultiCameraRecording", rows["mcr"]),
            ("Recording", rows["rec"]), ("Video", videos),
            ("SingleCameraVideo", [(*r[:5], stamps) for r in rows["scv"]])]
    for name, data in plan:
        names = tables[name].heading.names  # declaration order: the order of the tuples above
        tables[name].insert([dict(zip(names, row, strict=True)) for row in data], skip_duplicates=True)
    return sum(len(data) for _name, data in plan)
