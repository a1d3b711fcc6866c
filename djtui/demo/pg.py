"""The demo lab on PostgreSQL: DataJoint 2.x declares and fills the MultiCameraTracking tables itself
(``labschema.declare_dj2``) and its store; sessions on disk and the config as on MySQL.

DataJoint 0.14 never ran on PostgreSQL, so the parts of the MySQL lab that are 0.14's (the legacy
``~external_*`` store, the Spyglass-shaped schemas with their interval list and analysis directory) have
no PostgreSQL form: they are left out, and the summary's notes say so.
"""

from __future__ import annotations

import datetime as dt
import random
import tempfile
import time
from pathlib import Path

from djtui import labschema
from djtui.demo.configfile import write_config
from djtui.demo.dj2 import build_dj2, dj2_connection, quiet_datajoint
from djtui.demo.model import MARKER, DemoSummary, Noise, Progress, Schemas
from djtui.demo.sessions import import_plans, plan_sessions, write_session_files
from djtui.demo.spyglass import build_temp_dir

LEFT_OUT = ("left out on PostgreSQL (DataJoint 0.14 only, which never ran there): the legacy ~external_* store "
            "(demo_analysis) and the Spyglass-shaped schemas (interval list, export pipeline, managed analysis "
            "directory)")


def build_lab_pg(base_dir: Path, conn_factory, settings, *, prefix: str = "", seed: int = 20261123,
                 today: dt.date | None = None, progress: Progress | None = None) -> DemoSummary:
    """Build the PostgreSQL lab into ``base_dir`` on the server ``settings`` names (``backend="postgresql"``)."""
    start = time.monotonic()
    say = progress or (lambda _msg: None)
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    (base_dir / MARKER).write_text("djtui demo lab\n")
    rng = random.Random(seed)
    today = today or dt.date.today()
    sch = Schemas(prefix)
    noise = Noise(seed)
    say("sessions: MultiCameraTracking tables declared and filled by DataJoint 2.x, SQLite file, source and "
        "backup trees")
    sessions = plan_sessions(rng, today)
    _sessions_with_datajoint(settings, sch, import_plans(sessions))
    write_session_files(base_dir, sessions, noise)
    say("temp directory")
    stale = build_temp_dir(base_dir / "tmp", rng, time.time())
    say("DataJoint 2.x store")
    notes: list[str] = []
    dj2_orphans, backend = build_dj2(base_dir, sch, settings, conn_factory, True, notes)
    for sub in ("state", "exports", "dbbackups", "quarantine"):
        (base_dir / sub).mkdir(exist_ok=True)
    config_path = write_config(base_dir, settings, sch)
    return DemoSummary(
        base_dir=base_dir, config_path=config_path, schema_prefix=prefix, sessions=tuple(sessions),
        interval_orphans=0, legacy_orphans={}, dj2_orphans=dj2_orphans, dj2_backend=backend,
        analysis_untracked=0, analysis_zero_byte=0, temp_stale=stale, export_tables=(),
        seconds=time.monotonic() - start, notes=(*notes, LEFT_OUT),
    )


def _sessions_with_datajoint(settings, sch: Schemas, plans: list) -> None:
    dj = quiet_datajoint()
    conn = dj2_connection(dj, settings)
    try:
        tables = labschema.declare_dj2(dj, conn, sch.mocap_sessions, sch.multicamera_tracking, sch.pose_pipeline)
        with tempfile.TemporaryDirectory(prefix="djtui-attach-") as attach:
            labschema.insert_sessions_dj2(tables, plans, attach)
    finally:
        conn.close()
