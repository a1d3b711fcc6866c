"""The demo lab holds what the builder says, checked against the rows and files themselves."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from djtui.config import load_config
from djtui.demo import (
    EXPORT_TABLES,
    LEGACY_STORE,
    Schemas,
    build_lab,
    db_participant,
)
from djtui.demo.sessions import plan_sessions
from djtui.services.servers.mariadb import PrivateServer

HOUR = 3600.0


@pytest.fixture(scope="module")
def lab(server: PrivateServer, tmp_path_factory: pytest.TempPathFactory):
    prefix = f"dm{os.getpid()}_"
    base = tmp_path_factory.mktemp("lab")
    summary = build_lab(base, server.connect, server.settings, prefix=prefix)
    conn = server.connect()
    try:
        yield summary, conn
    finally:
        with conn.cursor() as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")  # the lab's schemas reference each other
            cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                        (prefix.replace("_", "\\_") + "%",))
            for (db,) in cur.fetchall():
                cur.execute(f"DROP DATABASE `{db}`")
        conn.close()


def _rows(conn, sql: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def test_config_is_valid_private_and_points_inside_the_lab(lab, server):
    summary, _ = lab
    path = summary.config_path
    assert path.stat().st_mode & 0o777 == 0o600
    cfg = load_config(path)
    base = summary.base_dir
    assert cfg.database.port == server.port and cfg.database.host == "127.0.0.1"
    assert cfg.database.password.reveal() == server.password.reveal()
    inside = [cfg.backup.source.base_path, *(d.base_path for d in cfg.backup.destinations), cfg.sessions.sqlite_path,
              cfg.export.out_dir, cfg.dbbackup.out_dir, cfg.audit_log, cfg.state_dir, cfg.orphans.quarantine_dir,
              *(d.path for d in cfg.orphans.directories), *cfg.orphans.temp_directories, cfg.maintenance.history_csv,
              *(Path(s.location) for s in cfg.stores)]
    for p in inside:
        assert base in Path(p).parents, p
    assert [d.enabled for d in cfg.backup.destinations] == [True, False]
    assert cfg.sessions.sessions_schema == summary.schema_prefix + "mocap_sessions"
    assert {s.name for s in cfg.stores} == {"analysis", "dj2"}
    # the config reaches the server
    from djtui.services.database import Database
    db = Database.from_config(cfg)
    try:
        assert db.query(f"SELECT COUNT(*) FROM `{cfg.sessions.sessions_schema}`.`session`")[0][0] > 0
    finally:
        db.close()


def _db_state(conn, sch: Schemas) -> dict[tuple[str, str], str]:
    """The import state of every (participant, date) in the database, by FIELD.md's rule."""
    s, m = sch.mocap_sessions, sch.multicamera_tracking
    subjects = {r[0] for r in _rows(conn, f"SELECT participant_id FROM `{s}`.`subject`")}
    sessions = {(p, str(d)) for p, d in _rows(conn, f"SELECT participant_id, session_date FROM `{s}`.`session`")}
    recs: dict[tuple[str, str], list[tuple]] = {}
    for p, d, ts, cfg in _rows(conn, f"SELECT participant_id, session_date, recording_timestamps, camera_config_hash "
                                     f"FROM `{s}`.`recording`"):
        recs.setdefault((p, str(d)), []).append((ts, cfg))
    mcr = set(_rows(conn, f"SELECT recording_timestamps, camera_config_hash FROM `{m}`.`multi_camera_recording`"))
    scv = set(_rows(conn, f"SELECT DISTINCT recording_timestamps, camera_config_hash FROM `{m}`.`single_camera_video`"))
    out = {}
    for key in sessions:
        assert key[0] in subjects
        rs = recs.get(key, [])
        if not rs:
            out[key] = "no_recording"
        elif all(r in mcr and r in scv for r in rs):
            out[key] = "full"
        else:
            out[key] = "no_videos"
    return out


def _backup_state(src_files: dict[str, tuple[int, int]], dst: Path) -> str:
    if not dst.is_dir():
        return "absent"
    dst_files = {f.name: (f.stat().st_size, int(f.stat().st_mtime)) for f in dst.iterdir()}
    if dst_files == src_files:
        return "full"
    if set(dst_files) < set(src_files):
        return "missing_file"
    if set(dst_files) == set(src_files) and any(dst_files[n][0] < src_files[n][0] for n in src_files):
        return "truncated_file"
    return "other"


def test_sessions_states_match_rows_and_files(lab):
    summary, conn = lab
    sch = Schemas(summary.schema_prefix)
    base = summary.base_dir
    db = _db_state(conn, sch)
    sqlite = sqlite3.connect(base / "data" / "recordings.db")
    flagged = {(p, d) for p, d in sqlite.execute(
        "SELECT p.name, s.session_date FROM imported i JOIN sessions s ON s.id = i.session_id "
        "JOIN participants p ON p.id = s.participant_id")}
    sqlite.close()
    states, backups = Counter(), Counter()
    disagree = Counter()
    assert 55 <= len(summary.sessions) <= 70
    dates = sorted(s.date for s in summary.sessions)
    assert (dates[-1] - dates[0]).days >= 60
    for s in summary.sessions:
        key = (db_participant(s.participant), s.date.isoformat())
        state = db.get(key, "absent")
        assert state == s.db_state, (s, state)
        states[state] += 1
        in_sqlite = (s.participant, s.date.isoformat()) in flagged
        assert in_sqlite == s.sqlite_imported
        if in_sqlite != (state == "full"):
            disagree["sqlite only" if in_sqlite else "dj only"] += 1
        ymd = f"{s.date:%Y%m%d}"
        src = base / "data" / s.participant / ymd
        assert src.is_dir() == s.on_source
        if not s.on_source:
            continue
        files = {f.name: (f.stat().st_size, int(f.stat().st_mtime)) for f in src.iterdir()}
        videos = [n for n in files if n.endswith(".mp4")]
        assert 4 <= len(videos) <= 8 and "session.json" in files
        assert all(1000 < files[n][0] <= 1 << 20 for n in videos)
        b = _backup_state(files, base / "backup" / ymd / s.participant)  # inverted layout
        assert b == s.backup_state, (s, b)
        backups[b] += 1
    assert all(states[k] >= 3 for k in ("full", "no_recording", "no_videos", "absent")), states
    assert all(backups[k] >= 3 for k in ("full", "missing_file", "truncated_file", "absent")), backups
    assert disagree["sqlite only"] >= 1 and disagree["dj only"] >= 1
    # normalization: numeric ids lose their p/t, others stay
    subjects = {r[0] for r in _rows(conn, f"SELECT participant_id FROM `{sch.mocap_sessions}`.`subject`")}
    assert "101" in subjects or "102" in subjects
    assert not any(x.startswith(("p", "t")) for x in subjects)
    assert subjects & {"mTR3", "mTF7"}
    safe = [s for s in summary.sessions if s.on_source and db.get((db_participant(s.participant), s.date.isoformat()))
            == "full" and (s.participant, s.date.isoformat()) in flagged and s.backup_state == "full"]
    assert len(safe) >= 5 and len(safe) == summary.count(safe=True)
    assert not any((base / "offsite").iterdir())


def test_interval_orphans_follow_real_foreign_keys(lab):
    summary, conn = lab
    sch = Schemas(summary.schema_prefix)
    parent_db, parent = sch.common_interval, "interval_list"
    fks: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for db, tbl, name, col, ref in _rows(conn, """
            SELECT table_schema, table_name, constraint_name, column_name, referenced_column_name
            FROM information_schema.key_column_usage
            WHERE referenced_table_schema = %s AND referenced_table_name = %s ORDER BY ordinal_position""",
            (parent_db, parent)):
        fks.setdefault((db, tbl, name), []).append((col, ref))
    assert any(c != r for cols in fks.values() for c, r in cols), "a renamed foreign key must exist"
    conds = [f"NOT EXISTS (SELECT 1 FROM `{db}`.`{tbl}` c WHERE "
             + " AND ".join(f"c.`{c}` = p.`{r}`" for c, r in cols) + ")" for (db, tbl, _), cols in fks.items()]
    truth = _rows(conn, f"SELECT COUNT(*) FROM `{parent_db}`.`{parent}` p WHERE " + " AND ".join(conds))[0][0]
    assert truth == summary.interval_orphans > 0
    # matching children by column name (Spyglass's way) gets it wrong in both directions
    named = _rows(conn, """SELECT table_schema, table_name FROM information_schema.columns
        WHERE column_name = 'interval_list_name' AND table_schema LIKE %s AND table_name <> 'interval_list'""",
                  (summary.schema_prefix.replace("_", "\\_") + "%",))
    by_name = " AND ".join(f"NOT EXISTS (SELECT 1 FROM `{db}`.`{t}` c WHERE c.nwb_file_name = p.nwb_file_name "
                           f"AND c.interval_list_name = p.interval_list_name)" for db, t in named)
    naive = {r for r in _rows(conn, f"SELECT nwb_file_name, interval_list_name FROM `{parent_db}`.`{parent}` p "
                                    f"WHERE {by_name}")}
    real = {r for r in _rows(conn, f"SELECT nwb_file_name, interval_list_name FROM `{parent_db}`.`{parent}` p WHERE "
                                   + " AND ".join(conds))}
    assert naive - real and real - naive


def _legacy_truth(conn, location: Path, db: str, grace: float = HOUR) -> dict[str, int]:
    ext = f"~external_{LEGACY_STORE}"
    rows = {h: (size, name) for h, size, name in
            _rows(conn, f"SELECT hash, size, attachment_name FROM `{db}`.`{ext}`")}
    refs = _rows(conn, """SELECT table_name, column_name FROM information_schema.key_column_usage
        WHERE referenced_table_schema = %s AND referenced_table_name = %s""", (db, ext))
    used = set()
    for tbl, col in refs:
        used |= {r[0] for r in _rows(conn, f"SELECT `{col}` FROM `{db}`.`{tbl}` WHERE `{col}` IS NOT NULL")}
    expected = {}
    for h, (_size, name) in rows.items():
        hx = h.hex()
        expected[f"{db}/{hx[:2]}/{hx[2:4]}/{hx}" + (f".{name}" if name else "")] = h
    root = location / db  # the schema's own folder: never a bare prefix (demo_analysis vs demo_analysis_v2)
    present = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            st = p.stat()
            present[str(p.relative_to(location))] = (st.st_size, st.st_mtime)
    now = time.time()
    return {
        "unused-row": sum(1 for h in rows if h not in used),
        "untracked-object": sum(1 for p, (_s, m) in present.items() if p not in expected and now - m > grace),
        "missing-object": sum(1 for p in expected if p not in present),
        "zero-byte": sum(1 for p, (s, _m) in present.items() if s == 0),
    }


def test_legacy_store_orphans_of_each_kind(lab):
    summary, conn = lab
    sch = Schemas(summary.schema_prefix)
    location = summary.base_dir / "stores" / LEGACY_STORE
    for short in ("demo_analysis", "demo_analysis_v2"):
        db = getattr(sch, short)
        truth = _legacy_truth(conn, location, db)
        assert truth == summary.legacy_orphans[db], db
    assert all(v > 0 for v in summary.legacy_orphans[sch.demo_analysis].values())
    # one young object without a row: in flight, not an orphan, yet there
    young = [p for p in (location / sch.demo_analysis).rglob("*") if p.is_file() and time.time() - p.stat().st_mtime
             < HOUR]
    assert len(young) == 1
    # the prefix trap: a listing by bare prefix would take v2's objects for demo_analysis's
    bare = [p for p in location.iterdir() if p.name.startswith(sch.demo_analysis)]
    assert len(bare) == 2


def _dj2_orphans(conn, schema: str, store: Path) -> tuple[set[str], set[str]]:
    """(hash-addressed, schema-addressed) objects of ``schema`` that no JSON column names."""
    cols = _rows(conn, """SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = %s AND column_comment LIKE ':<%%@dj2>:%%'""", (schema,))
    assert {c for _t, c in cols} == {"waveform", "samples"}
    refs = set()
    for t, c in cols:
        refs |= {json.loads(v)["path"] for (v,) in _rows(conn, f"SELECT `{c}` FROM `{schema}`.`{t}`")}
    objects = {str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()}
    assert refs and refs <= objects
    orphans = objects - refs
    hashed = {p for p in orphans if p.startswith(f"_hash/{schema}/")}
    by_schema = {p for p in orphans if p.startswith(f"_schema/{schema}/trace/")}
    assert hashed | by_schema == orphans
    return hashed, by_schema


def test_dj2_store_has_orphans_after_deletes(lab):
    summary, conn = lab
    assert summary.dj2_backend == "datajoint", summary.notes
    hashed, by_schema = _dj2_orphans(conn, Schemas(summary.schema_prefix).demo_dj2, summary.base_dir / "stores" / "dj2")
    assert len(hashed) == 3 and len(by_schema) == 2
    assert len(hashed) + len(by_schema) == summary.dj2_orphans


def test_dj2_store_written_directly_has_the_same_shape(tmp_path, server, admin_conn, schema_name):
    """The fallback for servers where DataJoint 2.x will not run writes the same layout by hand."""
    from djtui.demo.dj2 import build_dj2

    sch = Schemas(schema_name + "_")
    notes: list[str] = []
    count, backend = build_dj2(tmp_path, sch, server.settings, server.connect, False, notes)
    assert backend == "direct"
    hashed, by_schema = _dj2_orphans(admin_conn, sch.demo_dj2, tmp_path / "stores" / "dj2")
    assert (len(hashed), len(by_schema)) == (3, 2) and count == 5


def test_analysis_directory_and_temp(lab):
    summary, conn = lab
    sch = Schemas(summary.schema_prefix)
    tracked = set()
    for table in (f"`{sch.common_nwbfile}`.`analysis_nwbfile`", f"`{sch.demo_results}`.`custom_analysis_file`"):
        tracked |= {r[0] for r in _rows(conn, f"SELECT analysis_file_name FROM {table}")}
    now = time.time()
    files = [p for p in (summary.base_dir / "analysis").iterdir() if p.is_file()]
    assert tracked <= {p.name for p in files}
    old_untracked = [p for p in files if p.name not in tracked and now - p.stat().st_mtime > HOUR]
    assert sum(1 for p in old_untracked if p.stat().st_size > 0) == summary.analysis_untracked > 0
    assert sum(1 for p in files if p.stat().st_size == 0) == summary.analysis_zero_byte > 0
    assert any(p.name not in tracked and now - p.stat().st_mtime < HOUR for p in files)  # too young to touch
    temp = [p for p in (summary.base_dir / "tmp").rglob("*") if p.is_file()]
    assert sum(1 for p in temp if now - p.stat().st_mtime > 7 * 86400) == summary.temp_stale > 0
    assert any(now - p.stat().st_mtime < 86400 for p in temp)


def test_export_pipeline_tables_have_rows_and_renamed_keys(lab):
    summary, conn = lab
    assert len(EXPORT_TABLES) >= 12
    schemas = set()
    for name in summary.export_tables:
        db, tbl = name.split(".", 1)
        schemas.add(db)
        assert _rows(conn, f"SELECT COUNT(*) FROM `{summary.schema_prefix + db}`.`{tbl}`")[0][0] > 0, name
    assert len(schemas) >= 3
    renamed = _rows(conn, """SELECT table_name, column_name, referenced_column_name
        FROM information_schema.key_column_usage
        WHERE table_schema LIKE %s AND referenced_table_name IS NOT NULL AND column_name <> referenced_column_name""",
                    (summary.schema_prefix.replace("_", "\\_") + "%",))
    assert {t for t, _c, _r in renamed} >= {"recording_selection", "place_field_selection", "lfp_selection"}
    papers = _rows(conn, f"SELECT DISTINCT paper_id FROM `{summary.schema_prefix}common_usage`.`export_selection`")
    assert papers == [("demo_paper_2026",)]
    pre = summary.schema_prefix
    files = _rows(conn, f"SELECT f.analysis_file_name FROM `{pre}common_usage`.`export_selection__file` f "
                        f"JOIN `{pre}common_nwbfile`.`analysis_nwbfile` a USING (analysis_file_name)")
    assert len(files) == 4 and all((summary.base_dir / "analysis" / f).is_file() for (f,) in files)


def test_preverify_records_the_fully_copied_sessions(lab):
    from djtui.demo import preverify

    summary, _ = lab
    verified, why = preverify(summary, leave_unverified=3)
    assert why is None
    full = {(s.participant, s.date) for s in summary.sessions if s.backup_state == "full" and s.on_source}
    assert verified < full and len(verified) == len(full) - 3


def test_plan_is_deterministic():
    import datetime as dt
    import random
    day = dt.date(2026, 11, 23)
    assert plan_sessions(random.Random(5), day) == plan_sessions(random.Random(5), day)
    assert plan_sessions(random.Random(5), day) != plan_sessions(random.Random(6), day)


# ---------------------------------------------------------------------------
# the command line, with its own server (once)


def _djtui(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "djtui", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_cli_setup_only_twice_then_stop(tmp_path):
    lab_dir = tmp_path / "lab"
    first = _djtui("demo", "--setup-only", "--dir", str(lab_dir))
    assert first.returncode == 0, first.stderr
    assert f"djtui --config {lab_dir / 'djtui.yaml'}" in first.stdout
    assert f"djtui demo --stop --dir {lab_dir}" in first.stdout
    state = json.loads((lab_dir / "server" / "server.json").read_text())
    pid = state["pid"]
    try:
        assert _alive(pid)
        cfg_before = (lab_dir / "djtui.yaml").read_bytes()
        again = _djtui("demo", "--setup-only", "--dir", str(lab_dir))
        assert again.returncode == 2
        assert "already holds a demo lab" in again.stderr and "Traceback" not in again.stderr
        assert (lab_dir / "djtui.yaml").read_bytes() == cfg_before and _alive(pid)
        doctor = _djtui("--config", str(lab_dir / "djtui.yaml"), "doctor")
        assert doctor.returncode == 0, doctor.stdout
        stop = _djtui("demo", "--stop", "--dir", str(lab_dir))
        assert stop.returncode == 0, stop.stderr
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)
        assert not (lab_dir / "server" / "server.json").exists()
        again = _djtui("demo", "--stop", "--dir", str(lab_dir))
        assert again.returncode == 0 and "no demo server was running" in again.stdout
    finally:
        if _alive(pid):
            os.kill(pid, 15)


def test_cli_stopped_lab_starts_again_with_its_data_and_moves_port_when_taken(tmp_path):
    import socket

    import pymysql

    from djtui.config import load_config

    lab_dir = tmp_path / "lab"
    first = _djtui("demo", "--setup-only", "--dir", str(lab_dir))
    assert first.returncode == 0, first.stderr
    cfg_path = lab_dir / "djtui.yaml"
    pids = [json.loads((lab_dir / "server" / "server.json").read_text())["pid"]]

    def rows() -> int:
        cfg = load_config(cfg_path)
        conn = pymysql.connect(host="127.0.0.1", port=cfg.database.port, user=cfg.database.user,
                               password=cfg.database.password.reveal(), connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT COUNT(*) FROM `{cfg.sessions.sessions_schema}`.`session`")
                return cur.fetchone()[0]
        finally:
            conn.close()

    try:
        before = rows()
        assert before > 0
        port = load_config(cfg_path).database.port
        assert _djtui("demo", "--stop", "--dir", str(lab_dir)).returncode == 0
        again = _djtui("demo", "--start", "--dir", str(lab_dir))
        assert again.returncode == 0, again.stderr
        pids.append(json.loads((lab_dir / "server" / "server.json").read_text())["pid"])
        assert load_config(cfg_path).database.port == port  # the same port, it was free
        assert rows() == before  # the same data
        # a second start while it runs is refused, clearly
        twice = _djtui("demo", "--start", "--dir", str(lab_dir))
        assert twice.returncode == 2 and "already running" in twice.stderr
        assert _djtui("demo", "--stop", "--dir", str(lab_dir)).returncode == 0
        # its port taken meanwhile: it starts on another one and the config follows
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the old server's TIME_WAIT
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            moved = _djtui("demo", "--start", "--dir", str(lab_dir))
            assert moved.returncode == 0, moved.stderr
            pids.append(json.loads((lab_dir / "server" / "server.json").read_text())["pid"])
            new_port = load_config(cfg_path).database.port
            assert new_port != port and f"now says {new_port}" in moved.stdout
            assert rows() == before
        assert _djtui("--config", str(cfg_path), "doctor").returncode == 0
        assert _djtui("demo", "--stop", "--dir", str(lab_dir)).returncode == 0
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, 15)


def test_cli_refuses_foreign_directory_and_missing_dir(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    r = _djtui("demo", "--setup-only", "--dir", str(other))
    assert r.returncode == 2 and "not empty and is not a demo lab" in r.stderr
    assert sorted(p.name for p in other.iterdir()) == ["thesis.tex"]
    r = _djtui("demo", "--stop", "--dir", str(other))
    assert r.returncode == 2 and "is not a demo lab" in r.stderr
    r = _djtui("demo", "--setup-only")
    assert r.returncode == 2 and "--dir" in r.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
@pytest.mark.parametrize("leave", ["quit", "hangup"])
def test_cli_demo_opens_the_app_and_cleans_up(tmp_path, leave):
    lab_dir = tmp_path / "throwaway"
    name = f"djtui-demo-test-{os.getpid()}"
    tmux = ["tmux", "-L", name]  # a private tmux server: nothing else's sessions are touched
    cmd = f"{sys.executable} -m djtui demo --dir {lab_dir}"
    subprocess.run([*tmux, "new-session", "-d", "-s", name, "-x", "100", "-y", "30", cmd], check=True)
    try:
        deadline = time.monotonic() + 60
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", name], capture_output=True,
                                    text=True).stdout
            if "MariaDB" in screen or "MySQL" in screen:
                break
            time.sleep(0.3)
        assert "MariaDB" in screen or "MySQL" in screen, screen
        state = json.loads((lab_dir / "server" / "server.json").read_text())
        if leave == "quit":
            subprocess.run([*tmux, "send-keys", "-t", name, "q"], check=True)
        else:  # the terminal goes away (a dropped ssh session): SIGHUP
            subprocess.run([*tmux, "kill-server"], check=True)
        deadline = time.monotonic() + 30
        while (lab_dir.exists() or _alive(state["pid"])) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not lab_dir.exists() and not _alive(state["pid"])
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


# ---------------------------------------------------------------------------
# the sessions generator of the benchmarks


def test_gen_sessions_makes_the_states_it_reports(tmp_path, server, admin_conn, schema_name):
    from bench import gen_sessions
    from tests.conftest import write_config

    db_cfg = write_config(tmp_path / "db.yaml", f"""database:
  host: 127.0.0.1
  port: {server.port}
  user: djadmin
  password: "{server.password.reveal()}"
  use_datajoint_config: false
""")
    out = tmp_path / "gen"
    prefix = schema_name + "_"
    try:
        _check_generated(out, prefix, server, admin_conn, db_cfg, gen_sessions)
    finally:
        _drop_prefixed(admin_conn, prefix)


def _drop_prefixed(conn, prefix: str) -> None:
    with conn.cursor() as cur:
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")  # the generated schemas reference each other
        cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                    (prefix.replace("_", "\\_") + "%",))
        for (db,) in cur.fetchall():
            cur.execute(f"DROP DATABASE `{db}`")


def _check_generated(out, prefix, server, admin_conn, db_cfg, gen_sessions) -> None:
    rc = gen_sessions.main(["--out", str(out), "--sessions", "40", "--files", "3", "--size", "100",
                            "--size-max", "5000", "--states", "full=0.5,partial=0.25,none=0.25", "--sqlite",
                            "--db-config", str(db_cfg), "--schema-prefix", prefix, "--imported", "0.5"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())["sessions"]
    assert len(manifest) == 40
    assert Counter(m["backup"] for m in manifest) == {"full": 20, "partial": 10, "none": 10}
    for m in manifest:
        src = out / "src" / m["participant_id"] / m["session_date"]
        dst = out / "dst" / m["session_date"] / m["participant_id"]
        sfiles = {f.name: f.read_bytes() for f in src.iterdir()}
        assert len(sfiles) == 3 and sum(len(b) for b in sfiles.values()) == m["bytes"]
        if m["backup"] == "none":
            assert not dst.exists()
            continue
        dfiles = {f.name: f.read_bytes() for f in dst.iterdir()}
        if m["backup"] == "full":
            assert dfiles == sfiles
        elif m["partial"] == "missing":
            assert len(dfiles) == 2 and all(sfiles[n] == b for n, b in dfiles.items())
        else:
            diff = [n for n in sfiles if dfiles[n] != sfiles[n]]
            assert len(diff) == 1 and len(dfiles[diff[0]]) == len(sfiles[diff[0]]) // 2
    assert len({b for m in manifest for b in [m["bytes"]]}) > 1  # sizes vary
    with admin_conn.cursor() as cur:
        cur.execute(f"SELECT participant_id, session_date FROM `{prefix}mocap_sessions`.`session`")
        in_db = {(p, f"{d:%Y%m%d}") for p, d in cur.fetchall()}
    assert in_db == {(m["participant_id"][1:], m["session_date"]) for m in manifest if m["imported"]}
    cfg = load_config(out / "djtui.yaml")
    assert cfg.backup.destinations[0].path_structure == "{session_date}/{participant_id}"
    assert cfg.sessions.sessions_schema == prefix + "mocap_sessions" and cfg.database.port == server.port
    sq = sqlite3.connect(cfg.sessions.sqlite_path)
    assert sq.execute("SELECT COUNT(*) FROM imported").fetchone()[0] == sum(m["imported"] for m in manifest)
    sq.close()
