"""A live restore on PostgreSQL drops and makes again the tables of the backup; a view in another schema
that uses one of them makes the DROP fail (the restore rolls back and changes nothing). The plan names
every such view, and what the admin must do, before the typed confirmation."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from djtui.cli import main
from djtui.errors import OperationFailed
from djtui.services import dbbackup
from djtui.services.audit import AuditLog
from tests.dbbackup.conftest import serving_pg


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture
def view_lab(pg_server):
    """``<base>_a.session`` (backed up and restored); ``<base>_v`` holds a view and a materialized view on
    it; ``<base>_a`` itself holds a view on it too (in the dump: no warning)."""
    base = f"w{os.getpid()}_{time.monotonic_ns() % 10**9}"
    a, v = _q(f"{base}_a"), _q(f"{base}_v")
    conn = pg_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {a}")
            cur.execute(f"CREATE SCHEMA {v}")
            cur.execute(f"CREATE TABLE {a}.session (id int PRIMARY KEY, note text)")
            cur.execute(f"CREATE TABLE {a}.other (id int PRIMARY KEY)")
            cur.execute(f"INSERT INTO {a}.session SELECT g, 'n' FROM generate_series(1, 10) g")
            cur.execute(f"CREATE VIEW {a}.own_view AS SELECT id FROM {a}.session")
            cur.execute(f"CREATE VIEW {v}.recent AS SELECT id, note FROM {a}.session WHERE id > 5")
            cur.execute(f"CREATE MATERIALIZED VIEW {v}.counts AS SELECT count(*) AS n FROM {a}.session")
    finally:
        conn.close()
    with serving_pg(pg_server, base) as lab:
        yield lab


def test_the_plan_warns_of_each_dependent_view_and_the_restore_would_fail(view_lab, tmp_path: Path) -> None:
    a, v = f"{view_lab.schema}_a", f"{view_lab.schema}_v"
    res = dbbackup.run_backup(view_lab.db, tmp_path / "b", schemas=[a], full_server=False)
    plan = dbbackup.plan_restore(view_lab.db, res.path)
    warnings = [line for line in plan.lines() if line.startswith("WARNING:")]
    assert len(warnings) == 2, plan.lines()
    (recent,) = [w for w in warnings if f"view {v}.recent " in w]
    (counts,) = [w for w in warnings if f"materialized view {v}.counts " in w]
    for w in (recent, counts):
        assert f"{a}.session" in w and "other" not in w and "DROP" in w and "pg_get_viewdef" in w
    assert "DROP MATERIALIZED VIEW" in counts
    assert not any("own_view" in line for line in plan.lines())  # in the dump: dropped and made with it
    assert "WARNING" in " ".join(plan.to_json()["notes"])
    # the premise: as warned, the restore fails and changes nothing
    view_lab.sql(f"DELETE FROM {_q(a)}.session WHERE id > 8")
    with pytest.raises(OperationFailed, match="nothing was changed"):
        dbbackup.restore_backup(view_lab.db, plan, tmp_path / "state", AuditLog(tmp_path / "a.jsonl"))
    assert len(view_lab.rows(a, "session")) == 8
    # doing what the warning says: drop the views, restore, and the plan warns no more
    view_lab.sql(f"DROP VIEW {_q(v)}.recent", f"DROP MATERIALIZED VIEW {_q(v)}.counts")
    plan = dbbackup.plan_restore(view_lab.db, res.path)
    assert not any(line.startswith("WARNING:") for line in plan.lines())
    r = dbbackup.restore_backup(view_lab.db, plan, tmp_path / "state", AuditLog(tmp_path / "a.jsonl"))
    assert r.ok, r.problems
    assert len(view_lab.rows(a, "session")) == 10


def test_the_cli_shows_the_warning_before_asking(view_lab, tmp_path: Path, capsys) -> None:
    a, v = f"{view_lab.schema}_a", f"{view_lab.schema}_v"
    res = dbbackup.run_backup(view_lab.db, tmp_path / "b", schemas=[a], full_server=False)
    s = view_lab.server
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(f"database:\n  backend: postgresql\n  host: 127.0.0.1\n  port: {s.port}\n  user: djadmin\n"
                   f"  password: {s.password.reveal()}\n  use_datajoint_config: false\n"
                   f"state_dir: {tmp_path}/state\naudit_log: {tmp_path}/audit.jsonl\n")
    cfg.chmod(0o600)
    capsys.readouterr()
    rc = main(["--config", str(cfg), "dbbackup", "restore", str(res.path), "--confirm", "wrong"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert rc != 0
    assert f"view {v}.recent" in text and f"materialized view {v}.counts" in text, text
    assert text.index(f"view {v}.recent") < max(text.find("confirm"), text.find("RESTORE"))
    assert len(view_lab.rows(a, "session")) == 10
