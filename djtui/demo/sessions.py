"""MultiCameraTracking sessions in every import and backup state: database rows, the acquisition GUI's
SQLite file (disagreeing here and there), the source tree and the backup tree."""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import time
from pathlib import Path

from djtui import labschema
from djtui.demo.model import (
    PARTICIPANTS,
    DemoSession,
    Noise,
    Schemas,
    db_participant,
    video_sizes,
    write_file,
)
from djtui.labschema import ImportPlan


def plan_sessions(rng: random.Random, today: dt.date) -> list[DemoSession]:
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


def build_sessions(cur, base: Path, sessions: list[DemoSession], sch: Schemas, noise: Noise) -> None:
    labschema.create_tables(cur, sch.mocap_sessions, sch.multicamera_tracking, sch.pose_pipeline)
    plans = import_plans(sessions)
    labschema.insert_sessions_bulk(cur, plans, sessions_schema=sch.mocap_sessions,
                                   multicamera=sch.multicamera_tracking, pose=sch.pose_pipeline)
    write_session_files(base, sessions, noise)


def import_plans(sessions: list[DemoSession]) -> list[tuple[str, dt.date, ImportPlan]]:
    """What the acquisition GUI pushed to DataJoint for each session (none for a session never imported)."""
    plans = []
    for s in sessions:
        if s.db_state == "absent":
            continue
        plan = {
            "full": ImportPlan(cameras=s.videos),
            "no_videos": ImportPlan(cameras=s.videos, videos=False),
            "no_recording": ImportPlan(recordings=0),
        }[s.db_state]
        plans.append((db_participant(s.participant), s.date, plan))
    return plans


def write_session_files(base: Path, sessions: list[DemoSession], noise: Noise) -> None:
    """The acquisition GUI's SQLite file, the source tree and the backup tree of every session."""
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
            for c, size in enumerate(video_sizes(rng, s.videos)):
                files.append((f"{s.participant}_{ymd}_cam{c}.mp4", noise.take(size)))
            meta = {"participant_id": s.participant, "session_date": ymd, "cameras": s.videos,
                    "operator": rng.choice(["ana", "ben", "chen"]), "software": "acquisition-gui 2.4"}
            files.append(("session.json", json.dumps(meta, indent=2).encode()))
            if s.on_source:
                for name, blob in files:
                    write_file(src / name, blob, mtime)
            if s.backup_state == "absent":
                continue
            dst = backup / ymd / s.participant  # the inverted layout of the seed's example
            victim = rng.randrange(s.videos)
            for i, (name, blob) in enumerate(files):
                if i == victim and s.backup_state == "missing_file":
                    continue
                if i == victim and s.backup_state == "truncated_file":
                    blob = blob[: len(blob) // 2]
                write_file(dst / name, blob, mtime)
        db.commit()
    finally:
        db.close()
