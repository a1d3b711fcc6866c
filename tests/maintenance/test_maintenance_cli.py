"""`djtui maintenance ...` as cron runs it: a subprocess, real files, local SMTP and webhook servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _djtui(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def _old_file(p: Path, days: float = 10) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("x" * 10)
    t = time.time() - days * 86400
    os.utime(p, (t, t))
    return p


def _config(tmp_path: Path, config_writer, *, server=None, min_free_gb: float = 0, smtp=None, hook=None) -> Path:
    db = ""
    if server is not None:
        db = f"""database:
  host: 127.0.0.1
  port: {server.port}
  user: djadmin
  password: "{server.password.reveal()}"
dbbackup:
  out_dir: "{tmp_path / 'backups'}"
"""
    notify = ""
    if smtp or hook:
        notify = "  notify:\n"
        if smtp:
            notify += f'    smtp_host: "127.0.0.1"\n    smtp_port: {smtp.port}\n    smtp_to: ["ops@lab.org"]\n'
        if hook:
            notify += f'    slack_webhook: "http://127.0.0.1:{hook.port}/hook"\n'
    text = f"""{db}maintenance:
  drives:
    - path: "{tmp_path}"
      min_free_gb: {min_free_gb}
  temp_dirs: ["{tmp_path / 'scratch'}"]
  history_csv: "{tmp_path / 'disk.csv'}"
{notify}audit_log: "{tmp_path / 'audit.jsonl'}"
state_dir: "{tmp_path / 'state'}"
"""
    return config_writer(tmp_path / "djtui.yaml", text)


def test_disk_json_and_history(tmp_path, config_writer):
    cfg = _config(tmp_path, config_writer)
    r = _djtui(cfg, "maintenance", "disk", "--json")
    assert r.returncode == 0, r.stderr
    (d,) = json.loads(r.stdout)
    assert d["path"] == str(tmp_path) and d["free_bytes"] > 0 and not d["low"]
    assert (tmp_path / "disk.csv").read_text().count("\n") == 2  # header + one row
    r = _djtui(cfg, "--readonly", "maintenance", "disk")
    assert r.returncode == 0 and "not recorded" in r.stdout
    assert (tmp_path / "disk.csv").read_text().count("\n") == 2


def test_tmp_clean_dry_run_then_real_with_audit(tmp_path, config_writer, server):
    cfg = _config(tmp_path, config_writer, server=server)
    old = _old_file(tmp_path / "scratch" / "job1" / "part.tmp")
    new = tmp_path / "scratch" / "new.tmp"
    new.write_text("fresh")
    r = _djtui(cfg, "maintenance", "tmp-clean", "--dry-run")
    assert r.returncode == 0 and f"would remove {old}" in r.stdout and old.exists()
    r = _djtui(cfg, "--readonly", "maintenance", "tmp-clean")
    assert r.returncode == 2 and old.exists()
    r = _djtui(cfg, "maintenance", "tmp-clean", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["files"] == [str(old)]
    assert not old.exists() and new.exists()
    # one cleaner: the file went into the orphans quarantine (its own audited action inside tmp-clean's)
    moved = [p for p in (tmp_path / "state" / "quarantine").rglob("part.tmp") if p.is_file()]
    assert len(moved) == 1 and moved[0].read_text() == "x" * 10
    log = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["action"], e["event"]) for e in log] == [("tmp-clean", "intent"), ("orphans-quarantine", "intent"),
                                                        ("orphans-quarantine", "outcome"), ("tmp-clean", "outcome")]
    assert log[3]["details"]["files"] == 1


def test_tmp_clean_without_dirs_is_user_error(tmp_path, config_writer):
    cfg = config_writer(tmp_path / "c.yaml", f'state_dir: "{tmp_path}"\n')
    r = _djtui(cfg, "maintenance", "tmp-clean")
    assert r.returncode == 2 and "maintenance.temp_dirs" in r.stderr


def test_run_low_space_notifies_and_still_backs_up(tmp_path, config_writer, server, smtp_inbox, hook_inbox):
    cfg = _config(tmp_path, config_writer, server=server, min_free_gb=10**9, smtp=smtp_inbox, hook=hook_inbox)
    old = _old_file(tmp_path / "scratch" / "x.tmp")
    r = _djtui(cfg, "maintenance", "run", "--no-orphans")
    assert r.returncode == 1, r.stderr
    assert "is low" in r.stderr and "notified: email, slack" in r.stderr
    assert not old.exists()
    backups = [p for p in (tmp_path / "backups").iterdir() if not p.name.startswith(".")]
    assert len(backups) == 1 and (backups[0] / "manifest.json").is_file()
    assert f"backup: {backups[0]}" in r.stdout
    (mail,) = smtp_inbox.messages
    assert "is low" in mail["data"]
    (hook,) = hook_inbox.messages
    assert "is low" in hook["json"]["text"]
    assert server.password.reveal() not in r.stdout + r.stderr + mail["data"]


def test_run_healthy_sends_nothing(tmp_path, config_writer, smtp_inbox):
    cfg = _config(tmp_path, config_writer, smtp=smtp_inbox)
    r = _djtui(cfg, "maintenance", "run", "--no-orphans", "--no-backup")
    assert r.returncode == 0, r.stderr
    assert smtp_inbox.messages == []
    assert "disk " in r.stdout and "temp clean" in r.stdout
