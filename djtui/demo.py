"""The demo lab: a small but realistic lab on a private server, for trying every screen.

It holds what the screens are about, including the traps real labs fall into
(``FIELD.md``): MultiCameraTracking sessions in every import and backup state
(with the acquisition GUI's SQLite file disagreeing here and there), an
IntervalList-like table whose children reference it through renamed foreign
keys, a legacy ``~external_<store>`` store in ``demo_analysis`` and
``demo_analysis_v2`` (the prefix trap) with orphans of every kind, a DataJoint
2.x store with orphaned objects, an analysis pipeline for export, and a managed
analysis directory with untracked files. Everything is seeded, so two builds
are alike; :class:`DemoSummary` says what was built so tests can compare it
with what they find.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from djtui import labschema
from djtui.labschema import ImportPlan

MARKER = ".djtui-demo"
CONFIG_NAME = "djtui.yaml"
SERVER_DIR = "server"
LEGACY_STORE = "analysis"
DJ2_STORE = "dj2"
DAY = 86400.0

Progress = Callable[[str], None]

# disk ids; the GUI strips p/t from numeric ids, so p101 is 101 in Subject, mTR3 stays mTR3
PARTICIPANTS = (*(f"p{n}" for n in range(101, 113)), "t201", "t202", "t203", "mTR3", "mTF7")

DB_STATES = ("full", "no_recording", "no_videos", "absent")
BACKUP_STATES = ("full", "missing_file", "truncated_file", "absent")


def db_participant(disk_id: str) -> str:
    """The id the acquisition GUI writes to DataJoint for a participant folder name."""
    if disk_id[:1] in ("p", "t") and disk_id[1:].isdigit():
        return disk_id[1:]
    return disk_id


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class DemoSession:
    participant: str  # as on disk
    date: dt.date
    db_state: str  # one of DB_STATES
    sqlite_imported: bool
    backup_state: str  # one of BACKUP_STATES
    on_source: bool  # False: already deleted locally after a verified backup
    videos: int

    @property
    def safe(self) -> bool:
        return (self.db_state == "full" and self.sqlite_imported and self.backup_state == "full"
                and self.on_source)


@dataclass(frozen=True)
class DemoSummary:
    """What the builder made, for the CLI's message and for tests to check against the truth."""

    base_dir: Path
    config_path: Path
    schema_prefix: str
    sessions: tuple[DemoSession, ...]
    interval_orphans: int
    legacy_orphans: dict[str, dict[str, int]]  # schema -> reason -> count
    dj2_orphans: int
    dj2_backend: str  # "datajoint" or "direct"
    analysis_untracked: int
    analysis_zero_byte: int
    temp_stale: int
    export_tables: tuple[str, ...]
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def count(self, **where: object) -> int:
        return sum(1 for s in self.sessions if all(getattr(s, k) == v for k, v in where.items()))


@dataclass(frozen=True)
class Schemas:
    """Every schema name of the lab, with an optional prefix so tests can share one server."""

    prefix: str = ""

    def __getattr__(self, name: str) -> str:  # e.g. .common_interval -> "<prefix>common_interval"
        if name.startswith("_"):
            raise AttributeError(name)
        return self.prefix + name


# ---------------------------------------------------------------------------
# entry point


def build_lab(base_dir: Path, conn_factory: Callable[[], object], settings: object, *, prefix: str = "",
              seed: int = 20261123, today: dt.date | None = None, progress: Progress | None = None,
              use_datajoint: bool = True) -> DemoSummary:
    """Build the lab into ``base_dir`` on the server that ``conn_factory()`` connects to.

    ``settings`` is the server's :class:`~djtui.services.database.ConnectionSettings` (written to
    the config, and used by DataJoint 2.x). ``prefix`` is put before every schema name.
    """
    start = time.monotonic()
    say = progress or (lambda _msg: None)
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    (base_dir / MARKER).write_text("djtui demo lab\n")
    rng = random.Random(seed)
    today = today or dt.date.today()
    sch = Schemas(prefix)
    noise = _Noise(seed)
    notes: list[str] = []

    conn = conn_factory()
    try:
        with conn.cursor() as cur:  # type: ignore[attr-defined]
            say("sessions: database rows, SQLite file, source and backup trees")
            sessions = _plan_sessions(rng, today)
            _build_sessions(cur, base_dir, sessions, sch, noise)
            say("spyglass-shaped schemas: interval list, analysis pipeline, export log")
            interval_orphans = _build_spyglass(cur, sch, rng)
            say("legacy 0.14 store (demo_analysis, demo_analysis_v2)")
            legacy = _build_legacy_store(cur, base_dir, sch, rng, noise)
            say("managed analysis directory and temp directory")
            untracked, zero, stale = _build_analysis_dir(cur, base_dir, sch, rng)
    finally:
        conn.close()  # type: ignore[attr-defined]

    say("DataJoint 2.x store")
    dj2_orphans, backend = _build_dj2(base_dir, sch, settings, conn_factory, use_datajoint, notes)
    for sub in ("state", "exports", "dbbackups", "quarantine"):
        (base_dir / sub).mkdir(exist_ok=True)
    config_path = write_config(base_dir, settings, sch)
    return DemoSummary(
        base_dir=base_dir, config_path=config_path, schema_prefix=prefix, sessions=tuple(sessions),
        interval_orphans=interval_orphans, legacy_orphans=legacy, dj2_orphans=dj2_orphans, dj2_backend=backend,
        analysis_untracked=untracked, analysis_zero_byte=zero, temp_stale=stale,
        export_tables=tuple(EXPORT_TABLES), seconds=time.monotonic() - start, notes=tuple(notes),
    )


# ---------------------------------------------------------------------------
# MultiCameraTracking sessions


def _plan_sessions(rng: random.Random, today: dt.date) -> list[DemoSession]:
    """~60 sessions over three months; older ones are more often imported and backed up, as in a real lab."""
    days = [today - dt.timedelta(days=d) for d in range(1, 92)]
    keys: set[tuple[str, dt.date]] = set()
    while len(keys) < 64:
        keys.add((rng.choice(PARTICIPANTS), rng.choice(days)))
    ordered = sorted(keys, key=lambda k: (k[1], k[0]))
    # age order with a little noise, so states correlate with age without being a clean cut
    by_age = sorted(ordered, key=lambda k: (today - k[1]).days * -1 + rng.uniform(-12, 12))
    db_quota = ["full"] * 42 + ["no_videos"] * 5 + ["no_recording"] * 5 + ["absent"] * 12
    by_age_b = sorted(ordered, key=lambda k: (today - k[1]).days * -1 + rng.uniform(-12, 12))
    backup_quota = ["full"] * 38 + ["truncated_file"] * 5 + ["missing_file"] * 5 + ["absent"] * 16
    db_state = dict(zip(by_age, db_quota, strict=True))
    backup_state = dict(zip(by_age_b, backup_quota, strict=True))
    # the four oldest sessions that are imported and backed up were already deleted locally
    gone = [k for k in ordered if db_state[k] == "full" and backup_state[k] == "full"][:4]
    full = [k for k in ordered if db_state[k] == "full" and k not in gone]
    not_full = [k for k in ordered if db_state[k] != "full"]
    sqlite_no = set(rng.sample(full, 3))  # imported in DataJoint, flag never set in SQLite
    sqlite_yes = set(rng.sample(not_full, 3))  # flag set, but DataJoint lacks rows
    out = []
    for k in ordered:
        imported = (db_state[k] == "full" and k not in sqlite_no) or k in sqlite_yes
        out.append(DemoSession(participant=k[0], date=k[1], db_state=db_state[k], sqlite_imported=imported,
                               backup_state=backup_state[k], on_source=k not in gone,
                               videos=rng.randint(4, 8)))
    return out


class _Noise:
    """Deterministic pseudo-random bytes: one seeded buffer, sliced at seeded offsets (fast)."""

    SIZE = 1 << 21

    def __init__(self, seed: int):
        self.rng = random.Random(seed ^ 0x5EED)
        self.buf = self.rng.randbytes(self.SIZE)

    def take(self, n: int) -> bytes:
        if n <= 0:
            return b""
        n = min(n, self.SIZE // 2)
        off = self.rng.randrange(0, self.SIZE - n)
        return self.buf[off:off + n]


def _video_sizes(rng: random.Random, n: int) -> list[int]:
    return [int(4096 * (256 ** rng.random())) for _ in range(n)]  # log-uniform, 4 KiB .. 1 MiB


def _write(path: Path, data: bytes, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    os.utime(path, (mtime, mtime))


def _build_sessions(cur, base: Path, sessions: list[DemoSession], sch: Schemas, noise: _Noise) -> None:
    labschema.create_tables(cur, sch.mocap_sessions, sch.multicamera_tracking, sch.pose_pipeline)
    plans = []
    for s in sessions:
        pid = db_participant(s.participant)
        if s.db_state == "absent":
            continue
        plan = {
            "full": ImportPlan(cameras=s.videos),
            "no_videos": ImportPlan(cameras=s.videos, videos=False),
            "no_recording": ImportPlan(recordings=0),
        }[s.db_state]
        plans.append((pid, s.date, plan))
    labschema.insert_sessions_bulk(cur, plans, sessions_schema=sch.mocap_sessions,
                                   multicamera=sch.multicamera_tracking, pose=sch.pose_pipeline)

    data, backup = base / "data", base / "backup"
    data.mkdir(exist_ok=True)
    backup.mkdir(exist_ok=True)
    (base / "offsite").mkdir(exist_ok=True)  # the disabled destination: configured, never written
    rng = random.Random(len(sessions))
    db = sqlite3.connect(data / "recordings.db")
    try:
        for s in sessions:
            ymd = f"{s.date:%Y%m%d}"
            src = data / s.participant / ymd
            labschema.sqlite_add_session(db, s.participant, s.date, str(src), imported=s.sqlite_imported)
            mtime = time.mktime(dt.datetime.combine(s.date, dt.time(15, 30)).timetuple())
            files: list[tuple[str, bytes]] = []
            for c, size in enumerate(_video_sizes(rng, s.videos)):
                files.append((f"{s.participant}_{ymd}_cam{c}.mp4", noise.take(size)))
            meta = {"participant_id": s.participant, "session_date": ymd, "cameras": s.videos,
                    "operator": rng.choice(["ana", "ben", "chen"]), "software": "acquisition-gui 2.4"}
            files.append(("session.json", json.dumps(meta, indent=2).encode()))
            if s.on_source:
                for name, blob in files:
                    _write(src / name, blob, mtime)
            if s.backup_state == "absent":
                continue
            dst = backup / ymd / s.participant  # the inverted layout of the seed's example
            victim = rng.randrange(s.videos)
            for i, (name, blob) in enumerate(files):
                if i == victim and s.backup_state == "missing_file":
                    continue
                if i == victim and s.backup_state == "truncated_file":
                    blob = blob[: len(blob) // 2]
                _write(dst / name, blob, mtime)
        db.commit()
    finally:
        db.close()


# ---------------------------------------------------------------------------
# Spyglass-shaped schemas: interval list with renamed-FK children, the analysis pipeline, the export log

EXPORT_TABLES = (
    "common_nwbfile.nwbfile", "common_nwbfile.analysis_nwbfile", "common_session.session",
    "common_interval.interval_list", "demo_ephys.#sorting_params", "demo_ephys.recording_selection",
    "demo_ephys.__recording", "demo_ephys.sorting_selection", "demo_ephys.__sorting", "demo_ephys.curated_units",
    "demo_ephys.curated_units__unit", "demo_results.__unit_metrics", "demo_results.place_field_selection",
    "demo_results.__place_field", "demo_results.custom_analysis_file",
)


def _spyglass_ddl(s: Schemas) -> list[str]:
    nwb, ses, itv = _q(s.common_nwbfile), _q(s.common_session), _q(s.common_interval)
    eph, res, use = _q(s.demo_ephys), _q(s.demo_results), _q(s.common_usage)
    lfp, pos, dec = _q(s.lfp_v1), _q(s.position_v1), _q(s.decoding_v1)
    unit_pk = "nwb_file_name, sort_interval_name, recording_id, params_name, curation_id, unit_id"
    unit_cols = """nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL,
        recording_id INT NOT NULL, params_name VARCHAR(32) NOT NULL, curation_id INT NOT NULL,
        unit_id INT NOT NULL"""
    fk = "ON UPDATE CASCADE ON DELETE RESTRICT"
    return [
        *(f"CREATE DATABASE IF NOT EXISTS {d}" for d in (nwb, ses, itv, eph, res, use, lfp, pos, dec)),
        f"""CREATE TABLE {nwb}.`nwbfile` (
            nwb_file_name VARCHAR(64) NOT NULL, nwb_file_abs_path VARCHAR(255) NOT NULL,
            PRIMARY KEY (nwb_file_name)) ENGINE=InnoDB COMMENT 'Table for NWB files'""",
        f"""CREATE TABLE {nwb}.`analysis_nwbfile` (
            analysis_file_name VARCHAR(64) NOT NULL, nwb_file_name VARCHAR(64) NOT NULL,
            analysis_file_abs_path VARCHAR(255) NOT NULL, PRIMARY KEY (analysis_file_name),
            FOREIGN KEY (nwb_file_name) REFERENCES {nwb}.`nwbfile` (nwb_file_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {ses}.`session` (
            nwb_file_name VARCHAR(64) NOT NULL, subject_id VARCHAR(80) NOT NULL,
            session_description VARCHAR(255) NOT NULL DEFAULT '', PRIMARY KEY (nwb_file_name),
            FOREIGN KEY (nwb_file_name) REFERENCES {nwb}.`nwbfile` (nwb_file_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {itv}.`interval_list` (
            nwb_file_name VARCHAR(64) NOT NULL, interval_list_name VARCHAR(170) NOT NULL,
            valid_times LONGBLOB NOT NULL, pipeline VARCHAR(64) NOT NULL DEFAULT '',
            PRIMARY KEY (nwb_file_name, interval_list_name),
            FOREIGN KEY (nwb_file_name) REFERENCES {ses}.`session` (nwb_file_name) {fk}) ENGINE=InnoDB""",
        # children of interval_list: one plain FK, two renamed ones, and a same-named column with no FK
        f"""CREATE TABLE {pos}.`raw_position` (
            nwb_file_name VARCHAR(64) NOT NULL, interval_list_name VARCHAR(170) NOT NULL,
            n_samples INT NOT NULL, PRIMARY KEY (nwb_file_name, interval_list_name),
            FOREIGN KEY (nwb_file_name, interval_list_name)
                REFERENCES {itv}.`interval_list` (nwb_file_name, interval_list_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {lfp}.`lfp_selection` (
            nwb_file_name VARCHAR(64) NOT NULL, target_interval_list_name VARCHAR(170) NOT NULL,
            filter_name VARCHAR(80) NOT NULL, PRIMARY KEY (nwb_file_name, target_interval_list_name, filter_name),
            FOREIGN KEY (nwb_file_name, target_interval_list_name)
                REFERENCES {itv}.`interval_list` (nwb_file_name, interval_list_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {dec}.`decoding_notes` (
            nwb_file_name VARCHAR(64) NOT NULL, interval_list_name VARCHAR(170) NOT NULL,
            note VARCHAR(255) NOT NULL, PRIMARY KEY (nwb_file_name, interval_list_name)) ENGINE=InnoDB
            COMMENT 'same column names as interval_list, but no foreign key: not a reference'""",
        f"""CREATE TABLE {eph}.`#sorting_params` (
            params_name VARCHAR(32) NOT NULL, params LONGBLOB NOT NULL, PRIMARY KEY (params_name)) ENGINE=InnoDB""",
        f"""CREATE TABLE {eph}.`recording_selection` (
            nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL, recording_id INT NOT NULL,
            PRIMARY KEY (nwb_file_name, sort_interval_name, recording_id),
            FOREIGN KEY (nwb_file_name, sort_interval_name)
                REFERENCES {itv}.`interval_list` (nwb_file_name, interval_list_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {eph}.`__recording` (
            nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL, recording_id INT NOT NULL,
            n_channels INT NOT NULL, duration_s DOUBLE NOT NULL,
            PRIMARY KEY (nwb_file_name, sort_interval_name, recording_id),
            FOREIGN KEY (nwb_file_name, sort_interval_name, recording_id)
                REFERENCES {eph}.`recording_selection` (nwb_file_name, sort_interval_name, recording_id) {fk}
            ) ENGINE=InnoDB""",
        f"""CREATE TABLE {eph}.`sorting_selection` (
            nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL, recording_id INT NOT NULL,
            params_name VARCHAR(32) NOT NULL,
            PRIMARY KEY (nwb_file_name, sort_interval_name, recording_id, params_name),
            FOREIGN KEY (nwb_file_name, sort_interval_name, recording_id)
                REFERENCES {eph}.`__recording` (nwb_file_name, sort_interval_name, recording_id) {fk},
            FOREIGN KEY (params_name) REFERENCES {eph}.`#sorting_params` (params_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {eph}.`__sorting` (
            nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL, recording_id INT NOT NULL,
            params_name VARCHAR(32) NOT NULL, sorted_at DATETIME NOT NULL,
            PRIMARY KEY (nwb_file_name, sort_interval_name, recording_id, params_name),
            FOREIGN KEY (nwb_file_name, sort_interval_name, recording_id, params_name)
                REFERENCES {eph}.`sorting_selection` (nwb_file_name, sort_interval_name, recording_id, params_name)
                {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {eph}.`curated_units` (
            nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL, recording_id INT NOT NULL,
            params_name VARCHAR(32) NOT NULL, curation_id INT NOT NULL, curated_by VARCHAR(32) NOT NULL,
            PRIMARY KEY (nwb_file_name, sort_interval_name, recording_id, params_name, curation_id),
            FOREIGN KEY (nwb_file_name, sort_interval_name, recording_id, params_name)
                REFERENCES {eph}.`__sorting` (nwb_file_name, sort_interval_name, recording_id, params_name) {fk}
            ) ENGINE=InnoDB COMMENT 'master'""",
        f"""CREATE TABLE {eph}.`curated_units__unit` (
            {unit_cols}, label VARCHAR(16) NOT NULL, PRIMARY KEY ({unit_pk}),
            FOREIGN KEY (nwb_file_name, sort_interval_name, recording_id, params_name, curation_id)
                REFERENCES {eph}.`curated_units`
                (nwb_file_name, sort_interval_name, recording_id, params_name, curation_id) {fk}
            ) ENGINE=InnoDB COMMENT 'part of curated_units'""",
        f"""CREATE TABLE {res}.`__unit_metrics` (
            {unit_cols}, firing_rate DOUBLE NOT NULL, isi_violation DOUBLE NOT NULL, PRIMARY KEY ({unit_pk}),
            FOREIGN KEY ({unit_pk}) REFERENCES {eph}.`curated_units__unit` ({unit_pk}) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {res}.`place_field_selection` (
            {unit_cols}, epoch_interval_name VARCHAR(170) NOT NULL, PRIMARY KEY ({unit_pk}, epoch_interval_name),
            FOREIGN KEY ({unit_pk}) REFERENCES {res}.`__unit_metrics` ({unit_pk}) {fk},
            FOREIGN KEY (nwb_file_name, epoch_interval_name)
                REFERENCES {itv}.`interval_list` (nwb_file_name, interval_list_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {res}.`__place_field` (
            {unit_cols}, epoch_interval_name VARCHAR(170) NOT NULL, peak_rate DOUBLE NOT NULL,
            field_map LONGBLOB NOT NULL, PRIMARY KEY ({unit_pk}, epoch_interval_name),
            FOREIGN KEY ({unit_pk}, epoch_interval_name)
                REFERENCES {res}.`place_field_selection` ({unit_pk}, epoch_interval_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {res}.`custom_analysis_file` (
            analysis_file_name VARCHAR(64) NOT NULL, nwb_file_name VARCHAR(64) NOT NULL,
            description VARCHAR(255) NOT NULL DEFAULT '', PRIMARY KEY (analysis_file_name),
            FOREIGN KEY (nwb_file_name) REFERENCES {nwb}.`nwbfile` (nwb_file_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {use}.`export_selection` (
            export_id INT NOT NULL, paper_id VARCHAR(32) NOT NULL, analysis_id VARCHAR(32) NOT NULL,
            spyglass_version VARCHAR(16) NOT NULL, time TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
            PRIMARY KEY (export_id), UNIQUE KEY (paper_id, analysis_id)) ENGINE=InnoDB""",
        f"""CREATE TABLE {use}.`export_selection__table` (
            export_id INT NOT NULL, table_id INT NOT NULL, table_name VARCHAR(128) NOT NULL,
            restriction MEDIUMBLOB NOT NULL, PRIMARY KEY (export_id, table_id),
            FOREIGN KEY (export_id) REFERENCES {use}.`export_selection` (export_id) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {use}.`export_selection__file` (
            export_id INT NOT NULL, analysis_file_name VARCHAR(64) NOT NULL,
            PRIMARY KEY (export_id, analysis_file_name),
            FOREIGN KEY (export_id) REFERENCES {use}.`export_selection` (export_id) {fk},
            FOREIGN KEY (analysis_file_name) REFERENCES {nwb}.`analysis_nwbfile` (analysis_file_name) {fk}
            ) ENGINE=InnoDB""",
    ]


NWB_FILES = tuple(f"{name}20260{m}0{d}_.nwb" for name, m, d in
                  (("frodo", 7, 1), ("frodo", 7, 2), ("samwise", 8, 3), ("samwise", 8, 4), ("merry", 9, 5)))


def _build_spyglass(cur, sch: Schemas, rng: random.Random) -> int:
    """Returns how many interval_list rows no child references through a foreign key."""
    for stmt in _spyglass_ddl(sch):
        cur.execute(stmt)
    nwb, ses, itv = _q(sch.common_nwbfile), _q(sch.common_session), _q(sch.common_interval)
    eph, res, use = _q(sch.demo_ephys), _q(sch.demo_results), _q(sch.common_usage)
    cur.executemany(f"INSERT INTO {nwb}.`nwbfile` VALUES (%s, %s)",
                    [(f, f"/stores/raw/{f}") for f in NWB_FILES])
    cur.executemany(f"INSERT INTO {ses}.`session` VALUES (%s, %s, %s)",
                    [(f, f.split("2026")[0], "open field + linear track") for f in NWB_FILES])

    intervals: list[tuple[str, str]] = []
    for f in NWB_FILES:
        for n in range(1, 5):
            intervals.append((f, f"{n:02d}_r{n}"))
        intervals += [(f, "raw data valid times"), (f, f"pos {rng.randint(0, 3)} valid times"),
                      (f, "sort group 0 interval"), (f, "lfp band 100Hz"), (f, "artifact removed 2")]
    intervals = sorted(set(intervals))
    cur.executemany(f"INSERT INTO {itv}.`interval_list` VALUES (%s, %s, %s, %s)",
                    [(f, name, rng.randbytes(64), "") for f, name in intervals])

    referenced: set[tuple[str, str]] = set()
    by_file = {f: [i for i in intervals if i[0] == f] for f in NWB_FILES}
    pos_rows = [i for i in intervals if "valid times" in i[1] or i[1].endswith("_r1")]
    cur.executemany(f"INSERT INTO {_q(sch.position_v1)}.`raw_position` VALUES (%s, %s, %s)",
                    [(f, n, rng.randint(10_000, 90_000)) for f, n in pos_rows])
    referenced.update(pos_rows)
    lfp_rows = [i for i in intervals if i[1].startswith("lfp") or i[1].endswith("_r2")]
    cur.executemany(f"INSERT INTO {_q(sch.lfp_v1)}.`lfp_selection` VALUES (%s, %s, %s)",
                    [(f, n, "LFP 0-400 Hz") for f, n in lfp_rows])
    referenced.update(lfp_rows)

    # the analysis pipeline: recording_selection renames interval_list_name -> sort_interval_name
    rec_sel = [(f, "sort group 0 interval", r) for f in NWB_FILES[:4] for r in (1, 2)]
    cur.executemany(f"INSERT INTO {eph}.`recording_selection` VALUES (%s, %s, %s)", rec_sel)
    referenced.update((f, n) for f, n, _ in rec_sel)
    cur.executemany(f"INSERT INTO {eph}.`__recording` VALUES (%s, %s, %s, %s, %s)",
                    [(*k, 32 * k[2], round(rng.uniform(600, 3600), 1)) for k in rec_sel])
    cur.executemany(f"INSERT INTO {eph}.`#sorting_params` VALUES (%s, %s)",
                    [("ms4_default", b"\x00" * 32), ("kilosort_franklab", b"\x01" * 32)])
    sort_sel = [(*k, p) for k in rec_sel for p in ("ms4_default", "kilosort_franklab") if k[2] == 1 or p[0] == "m"]
    cur.executemany(f"INSERT INTO {eph}.`sorting_selection` VALUES (%s, %s, %s, %s)", sort_sel)
    cur.executemany(f"INSERT INTO {eph}.`__sorting` VALUES (%s, %s, %s, %s, %s)",
                    [(*k, dt.datetime(2026, 9, 1, 12) + dt.timedelta(hours=i)) for i, k in enumerate(sort_sel)])
    curated = [(*k, 1) for k in sort_sel]
    cur.executemany(f"INSERT INTO {eph}.`curated_units` VALUES (%s, %s, %s, %s, %s, %s)",
                    [(*k, rng.choice(["ana", "ben"])) for k in curated])
    units = [(*k, u) for k in curated for u in range(rng.randint(3, 9))]
    cur.executemany(f"INSERT INTO {eph}.`curated_units__unit` VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(*u, rng.choice(["accept", "accept", "mua", "noise"])) for u in units])
    cur.executemany(f"INSERT INTO {res}.`__unit_metrics` VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    [(*u, round(rng.uniform(0.1, 40), 3), round(rng.uniform(0, 0.05), 4)) for u in units])
    pf_sel = []
    for u in units[::2]:
        # epoch_interval_name renames interval_list_name: the second path up to interval_list
        epoch = rng.choice([n for f, n in by_file[u[0]] if n.endswith(("_r3", "_r4"))])
        pf_sel.append((*u, epoch))
        referenced.add((u[0], epoch))
    cur.executemany(f"INSERT INTO {res}.`place_field_selection` VALUES ({', '.join(['%s'] * 7)})", pf_sel)
    cur.executemany(f"INSERT INTO {res}.`__place_field` VALUES ({', '.join(['%s'] * 9)})",
                    [(*k, round(rng.uniform(1, 30), 2), rng.randbytes(128)) for k in pf_sel[::2]])

    # rows whose column names match interval_list but that hold no foreign key (name-matching trap)
    unreferenced = [i for i in intervals if i not in referenced]
    notes = rng.sample(unreferenced, 4) + rng.sample(sorted(referenced), 2)
    cur.executemany(f"INSERT INTO {_q(sch.decoding_v1)}.`decoding_notes` VALUES (%s, %s, %s)",
                    [(f, n, "looked at this epoch") for f, n in notes])

    # Spyglass's export log: one paper, two analyses, leaves on two tables
    cur.executemany(f"INSERT INTO {use}.`export_selection` (export_id, paper_id, analysis_id, spyglass_version) "
                    "VALUES (%s, %s, %s, %s)", [(1, "demo_paper_2026", "fig2_place_fields", "0.5.4"),
                                                (2, "demo_paper_2026", "fig3_unit_quality", "0.5.4")])
    f0, f1 = NWB_FILES[0], NWB_FILES[2]
    cur.executemany(f"INSERT INTO {use}.`export_selection__table` VALUES (%s, %s, %s, %s)", [
        (1, 1, f"`{sch.demo_results}`.`__place_field`", f"nwb_file_name = '{f0}'".encode()),
        (1, 2, f"`{sch.demo_results}`.`__place_field`", f"nwb_file_name = '{f1}' AND unit_id < 2".encode()),
        (2, 1, f"`{sch.demo_ephys}`.`curated_units__unit`", f"nwb_file_name = '{f1}' AND label = 'accept'".encode()),
    ])
    return len(unreferenced)


# ---------------------------------------------------------------------------
# the legacy (DataJoint 0.14) store, in demo_analysis and in demo_analysis_v2


def _legacy_ddl(db: str) -> list[str]:
    d, ext = _q(db), f"`~external_{LEGACY_STORE}`"
    return [
        f"CREATE DATABASE IF NOT EXISTS {d}",
        f"""CREATE TABLE {d}.{ext} (
            hash BINARY(16) NOT NULL COMMENT ':uuid:hash of contents (blob), of filename + contents (attach), or relative filepath',
            size BIGINT UNSIGNED NOT NULL COMMENT 'size of object in bytes',
            attachment_name VARCHAR(255) NULL COMMENT 'the filename of an attachment',
            filepath VARCHAR(1000) NULL COMMENT 'relative filepath or attachment filename',
            contents_hash BINARY(16) NULL COMMENT ':uuid:used for the filepath datatype',
            timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP COMMENT 'automatic timestamp',
            PRIMARY KEY (hash)) ENGINE=InnoDB COMMENT 'external storage tracking'""",  # noqa: E501
        f"""CREATE TABLE {d}.`analysis_result` (
            result_id INT NOT NULL, result_blob BINARY(16) NOT NULL COMMENT ':blob@{LEGACY_STORE}:',
            PRIMARY KEY (result_id),
            FOREIGN KEY (result_blob) REFERENCES {d}.{ext} (hash) ON UPDATE RESTRICT ON DELETE RESTRICT
            ) ENGINE=InnoDB""",
        f"""CREATE TABLE {d}.`analysis_report` (
            result_id INT NOT NULL, report BINARY(16) NULL COMMENT ':attach@{LEGACY_STORE}:',
            PRIMARY KEY (result_id),
            FOREIGN KEY (result_id) REFERENCES {d}.`analysis_result` (result_id) ON UPDATE CASCADE ON DELETE RESTRICT,
            FOREIGN KEY (report) REFERENCES {d}.{ext} (hash) ON UPDATE RESTRICT ON DELETE RESTRICT
            ) ENGINE=InnoDB""",
    ]


def legacy_object_path(location: Path, schema: str, hash_hex: str, attachment_name: str | None = None) -> Path:
    """Where DataJoint 0.14 keeps a blob (or attachment) of ``schema`` in a file store."""
    h = hash_hex.replace("-", "")
    name = h + (f".{attachment_name}" if attachment_name else "")
    return location / schema / h[0:2] / h[2:4] / name


# per schema: (results, reports, unused blob rows, unused attach rows, untracked objects, missing, zero-byte)
_LEGACY_PLAN = {"demo_analysis": (20, 8, 3, 1, 5, 1, 1), "demo_analysis_v2": (10, 4, 2, 0, 2, 1, 0)}


def _build_legacy_store(cur, base: Path, sch: Schemas, rng: random.Random, noise: _Noise) -> dict[str, dict[str, int]]:
    location = base / "stores" / LEGACY_STORE
    old = time.time() - 3 * DAY
    out: dict[str, dict[str, int]] = {}
    for short, (n_res, n_rep, n_unused_b, n_unused_a, n_untracked, n_missing, n_zero) in _LEGACY_PLAN.items():
        db = getattr(sch, short)
        for stmt in _legacy_ddl(db):
            cur.execute(stmt)
        ext_rows: list[tuple] = []
        objects: list[tuple[Path, bytes]] = []

        def new_object(kind: str, i: int, *, _db: str = db) -> tuple[bytes, int, str | None, Path, bytes]:
            data = noise.take(rng.randint(200, 40_000))
            name = f"report_{i:03d}.pdf" if kind == "attach" else None
            h = uuid.UUID(hashlib.md5((name or "").encode() + data).hexdigest())
            return h.bytes, len(data), name, legacy_object_path(location, _db, h.hex, name), data

        blobs = [new_object("blob", i) for i in range(n_res + n_unused_b)]
        attaches = [new_object("attach", i) for i in range(n_rep + n_unused_a)]
        for h, size, name, path, data in blobs + attaches:
            ext_rows.append((h, size, name, None, None))
            objects.append((path, data))
        cur.executemany(f"INSERT INTO {_q(db)}.`~external_{LEGACY_STORE}` "
                        "(hash, size, attachment_name, filepath, contents_hash) VALUES (%s, %s, %s, %s, %s)",
                        ext_rows)
        # written a day ago, like the objects: rows younger than the grace age are no orphans yet
        cur.execute(f"UPDATE {_q(db)}.`~external_{LEGACY_STORE}` SET `timestamp` = NOW() - INTERVAL 1 DAY")
        cur.executemany(f"INSERT INTO {_q(db)}.`analysis_result` VALUES (%s, %s)",
                        [(i, blobs[i][0]) for i in range(n_res)])
        cur.executemany(f"INSERT INTO {_q(db)}.`analysis_report` VALUES (%s, %s)",
                        [(i, attaches[i][0]) for i in range(n_rep)])
        # referenced rows whose object is missing, or was written empty
        missing = {blobs[i][3] for i in range(n_missing)}
        zero = {blobs[n_missing + i][3] for i in range(n_zero)}
        for path, data in objects:
            if path in missing:
                continue
            _write(path, b"" if path in zero else data, old)
        # objects with no row: an interrupted insert, or rows deleted without their files
        untracked = [new_object("blob" if i % 3 else "attach", 900 + i) for i in range(n_untracked)]
        for _h, _size, _name, path, data in untracked:
            _write(path, data, old - rng.uniform(0, 20) * DAY)
        # and one written a moment ago, its row not yet inserted: inside the grace period, not an orphan
        if short == "demo_analysis":
            _h, _size, _name, path, data = new_object("blob", 999)
            _write(path, data, time.time())
        out[db] = {"unused-row": n_unused_b + n_unused_a, "untracked-object": n_untracked,
                   "missing-object": n_missing, "zero-byte": n_zero}
    return out


# ---------------------------------------------------------------------------
# managed analysis directory (Spyglass's AnalysisNwbfile and a custom table share it) and a temp dir


def _build_analysis_dir(cur, base: Path, sch: Schemas, rng: random.Random) -> tuple[int, int, int]:
    adir, tdir = base / "analysis", base / "tmp"
    adir.mkdir(exist_ok=True)
    tdir.mkdir(exist_ok=True)
    now = time.time()

    def name(f: str) -> str:
        return f"{f.removesuffix('_.nwb')}_{''.join(rng.choices('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', k=10))}.nwb"

    tracked = [(name(f), f) for f in NWB_FILES for _ in range(2)]
    custom = [(name(f), f) for f in NWB_FILES[:3]]
    cur.executemany(f"INSERT INTO {_q(sch.common_nwbfile)}.`analysis_nwbfile` VALUES (%s, %s, %s)",
                    [(a, f, str(adir / a)) for a, f in tracked])
    cur.executemany(f"INSERT INTO {_q(sch.demo_results)}.`custom_analysis_file` VALUES (%s, %s, %s)",
                    [(a, f, "made in a notebook") for a, f in custom])
    cur.executemany(f"INSERT INTO {_q(sch.common_usage)}.`export_selection__file` VALUES (%s, %s)",
                    [(1, a) for a, f in tracked if f in (NWB_FILES[0], NWB_FILES[2])])
    for a, _f in tracked + custom:
        _write(adir / a, rng.randbytes(rng.randint(2_000, 60_000)), now - rng.uniform(2, 60) * DAY)
    untracked = [name(rng.choice(NWB_FILES)) for _ in range(4)]
    for a in untracked:
        _write(adir / a, rng.randbytes(rng.randint(2_000, 60_000)), now - rng.uniform(2, 60) * DAY)
    zero = [name(rng.choice(NWB_FILES)) for _ in range(2)]
    for a in zero:
        _write(adir / a, b"", now - 5 * DAY)
    _write(adir / name(NWB_FILES[0]), rng.randbytes(5000), now - 60)  # being written right now: too young
    stale = 5
    for i in range(stale):
        _write(tdir / f"spikesort_{i:02d}" / "recording.dat", rng.randbytes(4096), now - (8 + 3 * i) * DAY)
    for i in range(3):
        _write(tdir / f"job_{i:02d}.tmp", rng.randbytes(1024), now - i * 3600)
    return len(untracked), len(zero), stale


# ---------------------------------------------------------------------------
# DataJoint 2.x store


def _build_dj2(base: Path, sch: Schemas, settings, conn_factory, use_datajoint: bool,
               notes: list[str]) -> tuple[int, str]:
    """A ``<blob@dj2>`` table declared by DataJoint 2.x itself; deleting rows leaves orphan objects."""
    location = base / "stores" / DJ2_STORE
    location.mkdir(parents=True, exist_ok=True)
    values = [bytes(f"waveform set {i}: ", "ascii") + bytes(range(i, i + 64)) * (i + 1) for i in range(12)]
    drop = (2, 5, 9)  # waveform_set rows deleted: their hash-addressed objects stay behind
    backend = "direct"
    if use_datajoint:
        try:
            _dj2_with_datajoint(sch.demo_dj2, settings, location, values, drop)
            backend = "datajoint"
        except Exception as exc:  # DataJoint on MariaDB is best effort: fall back to the documented layout
            notes.append(f"DataJoint 2.x could not build the store ({type(exc).__name__}: {exc}); "
                         "wrote its JSON columns and objects directly")
    if backend == "direct":
        conn = conn_factory()
        try:
            with conn.cursor() as cur:
                _dj2_direct(cur, sch.demo_dj2, location, values, drop)
        finally:
            conn.close()
    old = time.time() - 2 * DAY
    for root, _dirs, files in os.walk(location):
        for f in files:
            os.utime(os.path.join(root, f), (old, old))
    return len(drop) + len(TRACE_DROP), backend


TRACES = 6
TRACE_DROP = (1, 4)  # trace rows deleted: their schema-addressed objects stay behind


def _dj2_with_datajoint(schema_name: str, settings, location: Path, values: list[bytes],
                        drop: tuple[int, ...]) -> None:
    import logging
    import warnings

    import numpy as np
    import pymysql

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import datajoint as dj
    logger = logging.getLogger("datajoint")
    saved_level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _dj2_declare(dj, np, pymysql, schema_name, settings, location, values, drop)
    finally:
        logger.setLevel(saved_level)


def _dj2_declare(dj, np, pymysql, schema_name: str, settings, location: Path, values: list[bytes],
                 drop: tuple[int, ...]) -> None:

    saved_stores = dict(dj.config["stores"]) if dj.config["stores"] else {}
    dj.config["stores"] = {**saved_stores, DJ2_STORE: {"protocol": "file", "location": str(location)}}
    conn = dj.Connection(settings.host, settings.user, settings.password.reveal(), port=settings.port)
    try:
        # DataJoint 2.3.5 on MariaDB sees a codec's json column as longtext and hands the driver a dict
        conn._conn.encoders[dict] = lambda d, _m=None: "'" + pymysql.converters.escape_string(json.dumps(d)) + "'"
        schema = dj.Schema(schema_name, connection=conn)

        class WaveformSet(dj.Manual):
            definition = f"""
            set_id : int32
            ---
            waveform : <blob@{DJ2_STORE}>
            """

        table = schema(WaveformSet)
        table.insert([{"set_id": i, "waveform": np.frombuffer(v, dtype=np.uint8)} for i, v in enumerate(values)])
        restriction = " OR ".join(f"set_id = {i}" for i in drop)
        (table & restriction).delete(prompt=False)

        class Trace(dj.Manual):
            definition = f"""
            trace_id : int32
            ---
            samples : <npy@{DJ2_STORE}>
            """

        traces = schema(Trace)
        traces.insert([{"trace_id": i, "samples": np.arange(i * 50, dtype=np.float32)} for i in range(TRACES)])
        (traces & " OR ".join(f"trace_id = {i}" for i in TRACE_DROP)).delete(prompt=False)
    finally:
        conn.close()
        dj.config["stores"] = saved_stores


def _dj2_direct(cur, schema_name: str, location: Path, values: list[bytes], drop: tuple[int, ...]) -> None:
    """The same store written by hand, as FIELD.md section 2 lays it out (hash-addressed, ``_hash/``)."""
    import base64

    d = _q(schema_name)
    cur.execute(f"CREATE DATABASE IF NOT EXISTS {d}")
    cur.execute(f"""CREATE TABLE {d}.`waveform_set` (
        set_id INT NOT NULL, waveform JSON NOT NULL COMMENT ':<blob@{DJ2_STORE}>:',
        PRIMARY KEY (set_id)) ENGINE=InnoDB""")
    rows = []
    for i, v in enumerate(values):
        h = base64.b32encode(hashlib.md5(v).digest()).decode().rstrip("=").lower()
        rel = f"_hash/{schema_name}/{h}"
        _write(location / rel, v, time.time())
        if i not in drop:
            rows.append((i, json.dumps({"hash": h, "path": rel, "schema": schema_name, "store": DJ2_STORE,
                                        "size": len(v)})))
    cur.executemany(f"INSERT INTO {d}.`waveform_set` VALUES (%s, %s)", rows)
    _dj2_direct_traces(cur, schema_name, location)


def _dj2_direct_traces(cur, schema_name: str, location: Path) -> None:
    """Schema-addressed ``<npy@>`` objects: ``_schema/{schema}/{table}/{pk}/{field}_{token}.npy``."""
    import io

    import numpy as np

    d = _q(schema_name)
    cur.execute(f"""CREATE TABLE {d}.`trace` (
        trace_id INT NOT NULL, samples JSON NOT NULL COMMENT ':<npy@{DJ2_STORE}>:',
        PRIMARY KEY (trace_id)) ENGINE=InnoDB""")
    rows = []
    for i in range(TRACES):
        arr = np.arange(i * 50, dtype=np.float32)
        buf = io.BytesIO()
        np.save(buf, arr)
        token = hashlib.md5(f"{schema_name}{i}".encode()).hexdigest()[:8]
        rel = f"_schema/{schema_name}/trace/trace_id={i}/samples_{token}.npy"
        _write(location / rel, buf.getvalue(), time.time())
        if i not in TRACE_DROP:
            rows.append((i, json.dumps({"path": rel, "store": DJ2_STORE, "dtype": "float32", "shape": [i * 50]})))
    cur.executemany(f"INSERT INTO {d}.`trace` VALUES (%s, %s)", rows)


# ---------------------------------------------------------------------------
# the config file


def config_text(base: Path, settings, sch: Schemas) -> str:
    """Our config format, pointing every path inside the lab's directory."""
    def s(value: object) -> str:
        return json.dumps(str(value))  # a JSON string is a valid YAML scalar, whatever it holds

    return f"""# djtui demo lab: written by `djtui demo`; everything it points at is inside {base}
backup:
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

database:
  host: "127.0.0.1"
  port: {int(settings.port)}
  user: {s(settings.user)}
  password: {s(settings.password.reveal())}
  use_datajoint_config: false

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
  {LEGACY_STORE}:
    protocol: "file"
    location: {s(base / "stores" / LEGACY_STORE)}
  {DJ2_STORE}:
    protocol: "file"
    location: {s(base / "stores" / DJ2_STORE)}

orphans:
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



def preverify(summary: DemoSummary, leave_unverified: int = 5) -> tuple[set[tuple[str, dt.date]], str | None]:
    """Record a size verification for the fully copied sessions, so the lab opens with Safe ✓ rows.

    The newest few are left unverified, to show a backup that matches but was never checked. This
    goes through the sessions service (the same code as ``djtui verify``); when that service is
    unavailable the lab is still complete, and the reason is returned.
    """
    try:
        from djtui.config import load_config
        from djtui.domain.sessions import SessionKey
        from djtui.services.sessions import SessionService
        from djtui.services.transfer import verify_session

        cfg = load_config(summary.config_path)
        service = SessionService(cfg, None)
        dest = cfg.backup.enabled_destinations[0]  # type: ignore[union-attr]
        done = sorted((s for s in summary.sessions if s.backup_state == "full" and s.on_source),
                      key=lambda s: s.date)
        verified = set()
        for s in done[: max(0, len(done) - leave_unverified)]:
            if verify_session(service, SessionKey(s.participant, s.date), dest).ok:
                verified.add((s.participant, s.date))
        return verified, None
    except Exception as exc:  # the demo stays usable without it
        return set(), f"{type(exc).__name__}: {exc}"

def is_demo_dir(path: Path) -> bool:
    return (Path(path) / MARKER).is_file()
