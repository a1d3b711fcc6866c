"""Build the demo lab (the entry point), pre-verify its backups, and recognise a demo lab's directory."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from pathlib import Path

from djtui.demo.configfile import write_config
from djtui.demo.dj2 import build_dj2
from djtui.demo.legacy import build_legacy_store
from djtui.demo.model import MARKER, DemoSummary, Noise, Progress, Schemas
from djtui.demo.sessions import build_sessions, plan_sessions
from djtui.demo.spyglass import EXPORT_TABLES, build_analysis_dir, build_spyglass


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
    noise = Noise(seed)
    notes: list[str] = []

    conn = conn_factory()
    try:
        with conn.cursor() as cur:  # type: ignore[attr-defined]
            say("sessions: database rows, SQLite file, source and backup trees")
            sessions = plan_sessions(rng, today)
            build_sessions(cur, base_dir, sessions, sch, noise)
            say("spyglass-shaped schemas: interval list, analysis pipeline, export log")
            interval_orphans = build_spyglass(cur, sch, rng)
            say("legacy 0.14 store (demo_analysis, demo_analysis_v2)")
            legacy = build_legacy_store(cur, base_dir, sch, rng, noise)
            say("managed analysis directory and temp directory")
            untracked, zero, stale = build_analysis_dir(cur, base_dir, sch, rng)
    finally:
        conn.close()  # type: ignore[attr-defined]

    say("DataJoint 2.x store")
    dj2_orphans, backend = build_dj2(base_dir, sch, settings, conn_factory, use_datajoint, notes)
    for sub in ("state", "exports", "dbbackups", "quarantine"):
        (base_dir / sub).mkdir(exist_ok=True)
    config_path = write_config(base_dir, settings, sch)
    return DemoSummary(
        base_dir=base_dir, config_path=config_path, schema_prefix=prefix, sessions=tuple(sessions),
        interval_orphans=interval_orphans, legacy_orphans=legacy, dj2_orphans=dj2_orphans, dj2_backend=backend,
        analysis_untracked=untracked, analysis_zero_byte=zero, temp_stale=stale,
        export_tables=tuple(EXPORT_TABLES), seconds=time.monotonic() - start, notes=tuple(notes),
    )


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
        from djtui.services.transfers import verify_session

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
