"""The demo lab on PostgreSQL (issue 15): DataJoint 2.3 declares and fills it, and the README's commands work
against its config. The lab is built once per session on the suite's private PostgreSQL; what the builder says
is compared with what psql and DataJoint's catalogs hold, and the CLI runs as a user would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from djtui.config import load_config
from djtui.demo import Schemas, db_participant
from djtui.demo.pg import LEFT_OUT, build_lab_pg
from djtui.services.backends.postgres import find_client_tool
from djtui.services.servers.postgres import PrivatePostgres

PREFIX = f"pgd{os.getpid()}_"


DBNAME = f"pgdemo{os.getpid()}"  # a database of its own: roles init installs its schema guard there


@pytest.fixture(scope="session")
def pg_lab(pg_server: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory):
    import dataclasses

    pg_server.create_database(DBNAME)
    base = tmp_path_factory.mktemp("pglab")
    settings = dataclasses.replace(pg_server.settings, dbname=DBNAME)
    try:
        yield build_lab_pg(base, lambda: pg_server.connect(DBNAME), settings, prefix=PREFIX)
    finally:
        conn = pg_server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{DBNAME}" WITH (FORCE)')
                cur.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (PREFIX,))
                for (name,) in cur.fetchall():  # the lab's database is gone: nothing of theirs is left
                    cur.execute(f'DROP ROLE "{name}"')
        finally:
            conn.close()


def psql(server: PrivatePostgres, sql: str, *, user: str = "djadmin", password: str | None = None) -> tuple[int, str]:
    """Ask PostgreSQL's own client (password through the child's environment only)."""
    exe = find_client_tool("psql")
    assert exe, "psql is needed"
    env = {**os.environ, "PGPASSWORD": password or server.password.reveal()}
    out = subprocess.run([exe, "-h", "127.0.0.1", "-p", str(server.port), "-U", user, "-d", DBNAME,
                          "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, env=env, timeout=60)
    return out.returncode, (out.stdout + out.stderr).strip()


def cli(cfg: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), *args], capture_output=True,
                          text=True, input=stdin, timeout=300)


def test_config_names_postgresql_and_leaves_out_the_014_parts(pg_lab):
    path = pg_lab.config_path
    assert path.stat().st_mode & 0o777 == 0o600
    cfg = load_config(path)
    assert cfg.database.backend == "postgresql"
    assert cfg.database.name == DBNAME  # the database DataJoint declared the lab in
    assert [s.name for s in cfg.stores] == ["dj2"]  # no legacy 0.14 store
    assert not cfg.orphans.tables and not cfg.orphans.directories  # no Spyglass interval list / analysis dir
    assert LEFT_OUT in pg_lab.notes
    assert pg_lab.dj2_backend == "datajoint"


def test_datajoint_declared_the_tables_and_psql_counts_the_rows(pg_lab, pg_server):
    sch = Schemas(PREFIX)
    rc, out = psql(pg_server, "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                              f"WHERE c.relname = '~lineage' AND starts_with(n.nspname, '{PREFIX}') ORDER BY 1")
    assert rc == 0, out
    assert out.split() == sorted([sch.demo_dj2, sch.mocap_sessions, sch.multicamera_tracking, sch.pose_pipeline])
    rc, out = psql(pg_server, "SELECT data_type FROM information_schema.columns WHERE table_schema = "
                              f"'{sch.multicamera_tracking}' AND table_name = 'single_camera_video' "
                              "AND column_name IN ('frame_timestamps', 'recording_timestamps') ORDER BY column_name")
    assert out.split("\n") == ["bytea", "timestamp without time zone"]  # <blob> and datetime, as 2.x declares them
    in_db = [s for s in pg_lab.sessions if s.db_state != "absent"]
    rc, out = psql(pg_server, f'SELECT count(*) FROM "{sch.mocap_sessions}"."session"')
    assert int(out) == len(in_db)
    rc, out = psql(pg_server, f'SELECT count(*) FROM "{sch.mocap_sessions}"."recording"')
    assert int(out) == sum(1 for s in in_db if s.db_state != "no_recording")


def test_import_check_on_postgresql_matches_what_was_built(pg_lab):
    from djtui.domain.sessions import SessionKey
    from djtui.services.database import Database
    from djtui.services.sessions import SessionService

    cfg = load_config(pg_lab.config_path)
    db = Database.from_config(cfg)
    try:
        service = SessionService(cfg, db)
        keys = {SessionKey(s.participant, s.date): s for s in pg_lab.sessions}
        status = service.dj_status(list(keys))
    finally:
        db.close()
    for key, s in keys.items():
        st = status[key]
        assert st.error is None, st.error
        assert st.in_database == (s.db_state != "absent"), key
        assert st.imported == (s.db_state == "full" and s.sqlite_imported), (key, st.missing)
        if s.db_state == "no_videos":
            assert "SingleCameraVideo" in st.missing
        if s.db_state == "no_recording":
            assert "Recording" in st.missing


def test_status_range_doctor_and_orphans_through_the_cli(pg_lab, pg_server):
    cfg = pg_lab.config_path
    out = cli(cfg, "status-range", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    sch = Schemas(PREFIX)
    _rc, text = psql(pg_server, f'SELECT participant_id || \' \' || to_char(session_date, \'YYYYMMDD\') '
                                f'FROM "{sch.mocap_sessions}"."session"')
    in_session_table = set(text.split("\n"))
    assert len(rows) == len(pg_lab.sessions)
    for r in rows:
        has_row = f"{db_participant(r['participant_id'])} {r['session_date']}" in in_session_table
        assert not r["dj"] or has_row, r  # imported means psql sees its Session row

    out = cli(cfg, "doctor", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    checks = {(c["area"], c["name"]): c for c in json.loads(out.stdout)["checks"]}
    _rc, version = psql(pg_server, "SHOW server_version")
    assert checks[("database", "server")]["detail"].startswith(f"PostgreSQL {version.split()[0]} at ")
    assert checks[("database", "datajoint")]["detail"].startswith("2.x:")
    assert "pg_dump" in checks[("tools", "dump tool")]["detail"]
    assert "psql" in checks[("tools", "client")]["detail"]
    for tool in ("pg_dumpall", "pg_restore"):  # a backup's roles file and its restore need them too
        assert checks[("tools", tool)]["ok"] and tool in checks[("tools", tool)]["detail"], checks[("tools", tool)]

    out = cli(cfg, "orphans", "scan", "--json")
    assert out.returncode == 0, out.stderr
    found = {s["name"]: s["orphans"] for s in json.loads(out.stdout)["sources"]}
    assert found["store:dj2"] == pg_lab.dj2_orphans
    assert found[f"dir:{pg_lab.base_dir / 'tmp'}"] == pg_lab.temp_stale


def test_export_and_dbbackup_through_the_cli(pg_lab, tmp_path):
    cfg = pg_lab.config_path
    leaf = f"{PREFIX}mocap_sessions.session:participant_id='{db_participant(pg_lab.sessions[-1].participant)}'"
    out = cli(cfg, "export", "plan", "--leaf", leaf)
    assert out.returncode == 0, out.stderr
    assert f"{PREFIX}mocap_sessions.subject" in out.stdout
    out = cli(cfg, "export", "write", "--leaf", leaf, "--out", str(tmp_path / "ex"))
    assert out.returncode == 0, out.stdout + out.stderr
    out = cli(cfg, "export", "verify", str(tmp_path / "ex"))
    assert out.returncode == 0, out.stdout + out.stderr
    out = cli(cfg, "dbbackup", "run")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{PREFIX}mocap_sessions" in out.stderr and Path(out.stdout.strip(), "manifest.json").is_file()
    # the lab's keys cross schemas both ways alphabetically (mocap_sessions -> multicamera_tracking and back)
    manifest = json.loads(Path(out.stdout.strip(), "manifest.json").read_text())
    out = cli(cfg, "dbbackup", "verify", "--latest", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    got = json.loads(out.stdout)
    assert got["ok"] and got["problems"] == [], got
    assert got["tables"] == sum(len(s["tables"]) for s in manifest["schemas"])


def test_a_guest_reads_the_lab_and_is_refused_a_write_with_psql(pg_lab, pg_server):
    cfg = pg_lab.config_path
    name = f"{PREFIX}guest"
    out = cli(cfg, "roles", "init")
    assert out.returncode == 0, out.stdout + out.stderr
    out = cli(cfg, "users", "add", name, "--role", "guest", "--password-stdin", stdin="guest-pw-2026\n")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "guest-pw-2026" not in out.stdout + out.stderr
    table = f'"{PREFIX}mocap_sessions"."subject"'
    rc, text = psql(pg_server, f"SELECT count(*) FROM {table}", user=name, password="guest-pw-2026")
    assert rc == 0 and int(text) > 0, text
    rc, text = psql(pg_server, f"INSERT INTO {table} VALUES ('zz')", user=name, password="guest-pw-2026")
    assert rc != 0 and "permission denied" in text


def test_command_log_masks_postgresql_credentials(pg_lab, pg_server, tmp_path):
    """users reset-password's path (plan, apply) on PostgreSQL: the statement is logged, its password is not."""
    from djtui.services import commandlog
    from djtui.services.accounts import AccountsService
    from djtui.services.database import Database

    name, pw = f"{PREFIX}logged", "Log-Secret-7731"
    conn = pg_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE ROLE "{name}" LOGIN')
        commandlog.clear()
        cfg = load_config(pg_lab.config_path)
        db = Database.from_config(cfg)
        try:
            service = AccountsService(db, cfg.accounts)
            plan, _ = service.plan_reset_password(name, password=pw)
            assert service.apply(plan, state_dir=tmp_path) >= 1
            db.query("SELECT current_user, %s::text", (pg_server.password.reveal(),))
        finally:
            db.close()
        texts = [e.text for e in commandlog.entries()]
        assert any(f'ALTER ROLE "{name}" PASSWORD' in t and "****" in t for t in texts), texts
        assert not any(pw in t or pg_server.password.reveal() in t for t in texts)
        rc, out = psql(pg_server, "SELECT current_user", user=name, password=pw)  # the statement really ran
        assert rc == 0 and out == name, out
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP ROLE IF EXISTS "{name}"')
        conn.close()


def test_pg_dump_older_than_the_server_is_refused_by_doctor_rule(pg_server):
    """The rule doctor applies, on the real tool's --version line: pg_dump refuses a newer major server."""
    from djtui.services.backends import ServerInfo
    from djtui.services.backends.postgres import PostgresBackend

    exe = find_client_tool("pg_dump")
    line = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    major = int(line.split(")")[1].split(".")[0])
    backend = PostgresBackend(None)  # type: ignore[arg-type]
    newer = ServerInfo("PostgreSQL", f"{major + 1}.0", "", "djadmin", 1)
    same = ServerInfo("PostgreSQL", pg_server.version, "", "djadmin", 1)
    fatal, why = backend.tool_mismatch(exe, line, newer)
    assert fatal and f"refuses a PostgreSQL {major + 1} server" in why
    assert backend.tool_mismatch(exe, line, same) is None
    psql_exe = find_client_tool("psql")
    psql_line = subprocess.run([psql_exe, "--version"], capture_output=True, text=True).stdout.strip()
    assert backend.tool_mismatch(psql_exe, psql_line, newer)[0] is False  # a warning only


def test_setup_only_stop_and_start_on_postgresql(tmp_path):
    from djtui.services.servers.process import read_state, stop_detached

    lab = tmp_path / "lab"
    out = subprocess.run([sys.executable, "-m", "djtui", "demo", "--backend", "postgresql", "--setup-only",
                          "--dir", str(lab)], capture_output=True, text=True, timeout=600)
    run_dir = (read_state(lab / "server") or {}).get("run_dir")
    try:
        assert out.returncode == 0, out.stderr
        assert "PostgreSQL" in out.stdout and "left out on PostgreSQL" in out.stdout
        cfg = lab / "djtui.yaml"
        assert "backend: postgresql" in cfg.read_text()
        before = cli(cfg, "status-range", "--json")
        assert before.returncode == 0, before.stderr
        stop = subprocess.run([sys.executable, "-m", "djtui", "demo", "--stop", "--dir", str(lab)],
                              capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stdout + stop.stderr
        start = subprocess.run([sys.executable, "-m", "djtui", "demo", "--start", "--dir", str(lab)],
                               capture_output=True, text=True, timeout=120)
        assert start.returncode == 0, start.stderr
        assert "PostgreSQL" in start.stdout
        after = cli(cfg, "status-range", "--json")
        assert after.returncode == 0, after.stderr
        assert [r["dj"] for r in json.loads(after.stdout)] == [r["dj"] for r in json.loads(before.stdout)]
    finally:
        stop_detached(lab / "server", remove_data=True)
        if run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
