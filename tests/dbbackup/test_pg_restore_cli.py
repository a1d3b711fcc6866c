"""`djtui dbbackup run` then `restore` on PostgreSQL as a user runs them: the plan, the typed confirmation, the
safety dump of what is overwritten, the rows back, the audit log; and `--as PREFIX` into new schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _djtui(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("db_server", ["postgresql"], indirect=True)
def test_restore_cli_overwrite_then_prefix(lab, lab_config, tmp_path):
    cfg = lab_config
    s = lab.schema
    odd = lab.db.dialect.table(s, lab.odd)
    r = _djtui(cfg, "dbbackup", "run")
    assert r.returncode == 0, r.stderr
    backup = Path(r.stdout.strip().splitlines()[-1])
    before = lab.rows(s, lab.odd)
    lab.sql(f"DELETE FROM {odd} WHERE id >= 1")

    r = _djtui(cfg, "dbbackup", "restore", str(backup), "--schema", s, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["confirm"] == "OVERWRITE 1 SCHEMA"
    assert plan["schemas"][0]["current"][lab.odd] == 1 and plan["schemas"][0]["tables"][lab.odd] == 5
    r = _djtui(cfg, "dbbackup", "restore", str(backup), "--schema", s, "--confirm", "RESTORE")
    assert r.returncode == 2 and "OVERWRITE 1 SCHEMA" in r.stderr
    assert len(lab.rows(s, lab.odd)) == 1

    r = _djtui(cfg, "dbbackup", "restore", str(backup), "--schema", s, "--confirm", "OVERWRITE 1 SCHEMA")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "restored: 1 schema(s), 3 table(s) checked" in r.stdout
    assert lab.server.password.reveal() not in r.stdout + r.stderr
    assert lab.rows(s, lab.odd) == before
    (safety,) = (tmp_path / "backups" / "pre-restore").iterdir()
    assert json.loads((safety / "manifest.json").read_text())["schemas"][0]["tables"][lab.odd] == 1
    log = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    ev = [e for e in log if e["action"] == "dbbackup-restore"]
    assert [e["event"] for e in ev] == ["intent", "outcome"] and ev[1]["status"] == "ok"

    r = _djtui(cfg, "dbbackup", "restore", str(backup), "--schema", s, "--as", "old_", "--confirm", "RESTORE")
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        assert lab.rows(f"old_{s}", lab.odd) == before
        assert lab.rows(f"old_{s}", "subject") == lab.rows(s, "subject")
    finally:
        lab.sql(f"DROP SCHEMA {lab.db.dialect.ident('old_' + s)} CASCADE")
