"""`djtui dbbackup ...` as a user runs it: a real subprocess, real dump, exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _djtui(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_run_list_verify(lab_config, lab, tmp_path):
    """On each backend: run, list, verify --latest, as cron runs them."""
    cli_config, server = lab_config, lab.server
    r = _djtui(cli_config, "dbbackup", "run", "--schemas-only")
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.parent == tmp_path / "backups" and (path / "manifest.json").is_file()
    assert server.password.reveal() not in r.stdout + r.stderr
    mf = json.loads((path / "manifest.json").read_text())
    assert lab.schema in {s["name"] for s in mf["schemas"]} and mf["backend"] == lab.backend

    r = _djtui(cli_config, "dbbackup", "list", "--json")
    assert r.returncode == 0, r.stderr
    (item,) = json.loads(r.stdout)
    assert item["path"] == str(path) and item["verified"] is None and item["bytes"] > 0

    r = _djtui(cli_config, "dbbackup", "verify", "--latest")
    assert r.returncode == 0, r.stdout + r.stderr
    assert str(path) in r.stdout
    assert "verified" in r.stdout
    r = _djtui(cli_config, "dbbackup", "list", "--json")
    assert json.loads(r.stdout)[0]["verified"]
    r = _djtui(cli_config, "dbbackup", "list")
    (row,) = [ln for ln in r.stdout.splitlines() if ln.startswith(path.name)]
    assert not row.endswith(" no")


def test_verify_bad_dir_is_user_error(cli_config, tmp_path):
    r = _djtui(cli_config, "dbbackup", "verify", str(tmp_path))
    assert r.returncode == 2
    assert "manifest.json" in r.stderr
    r = _djtui(cli_config, "dbbackup", "verify")
    assert r.returncode == 2 and "--latest" in r.stderr
    r = _djtui(cli_config, "dbbackup", "verify", "--latest")
    assert r.returncode == 2 and "no backups" in r.stderr


def test_readonly_refuses_run(cli_config, tmp_path):
    r = _djtui(cli_config, "--readonly", "dbbackup", "run")
    assert r.returncode == 2
    assert not (tmp_path / "backups").exists()


def _fake(out: Path, name: str) -> Path:
    d = out / name
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps({"schemas": []}))
    return d


def test_prune_dry_run_then_confirmed(cli_config, tmp_path):
    out = tmp_path / "backups"
    names = ["2026-01-05_020000", "2026-02-10_020000", "2026-03-01_020000", "2026-03-02_020000",
             "2026-03-03_020000"]
    dirs = [_fake(out, n) for n in names]
    partial = out / ".partial-2026-03-04_020000-x"
    partial.mkdir()
    # keep_daily 2 -> 03-03, 03-02; weekly 1 -> 03-03; monthly 1 -> 03-03: the other three go
    r = _djtui(cli_config, "dbbackup", "prune", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(Path(p).name for p in json.loads(r.stdout)["remove"]) == names[:3]
    assert all(d.exists() for d in dirs)

    r = _djtui(cli_config, "dbbackup", "prune")
    assert r.returncode == 2 and all(d.exists() for d in dirs)  # no terminal, no --confirm
    r = _djtui(cli_config, "dbbackup", "prune", "--confirm", "PRUNE")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == names[3:]
    assert partial.exists()  # never touches what is not a finished backup
    log = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log if e["action"] == "dbbackup-prune"] == ["intent", "outcome"]
    assert os.path.basename(str(dirs[0])) in log[0]["details"]["backups"]


def test_prune_also_prunes_pre_restore_safety_dumps_as_their_own_series(cli_config, tmp_path):
    """Issue 16: the safety dumps a restore leaves in pre-restore/ were never pruned."""
    out = tmp_path / "backups"
    main = [_fake(out, n) for n in ["2026-03-02_020000", "2026-03-03_020000"]]
    names = ["2026-01-05_020000", "2026-02-10_020000", "2026-03-01_020000", "2026-03-02_030000",
             "2026-03-03_030000"]
    safety = [_fake(out / "pre-restore", n) for n in names]
    # same policy, own series: keep_daily 2 -> 03-03, 03-02 of the safety dumps; the main two stay
    r = _djtui(cli_config, "dbbackup", "prune", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert sorted(plan["remove"]) == sorted(str(d) for d in safety[:3])
    assert sorted(plan["keep"]) == sorted(str(d) for d in [*main, *safety[3:]])
    r = _djtui(cli_config, "dbbackup", "prune", "--dry-run")
    assert "REMOVES 3:" in r.stdout and "pre-restore/2026-01-05_020000" in r.stdout
    assert all(d.exists() for d in [*main, *safety])

    r = _djtui(cli_config, "dbbackup", "prune", "--confirm", "PRUNE")
    assert r.returncode == 0, r.stderr
    assert all(d.exists() for d in [*main, *safety[3:]]) and not any(d.exists() for d in safety[:3])
    assert sorted(p.name for p in (out / "pre-restore").iterdir()) == names[3:]
    log = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    (intent,) = [e for e in log if e["action"] == "dbbackup-prune" and e["event"] == "intent"]
    assert sorted(intent["details"]["backups"]) == [f"pre-restore/{n}" for n in names[:3]]


def test_run_copies_to_remote_with_rsync(cli_config, lab_schema, tmp_path):
    remote = tmp_path / "offsite"
    remote.mkdir()
    text = cli_config.read_text().replace("  parallel: 2\n", f'  parallel: 2\n  remote: "{remote}"\n')
    cli_config.write_text(text)
    r = _djtui(cli_config, "dbbackup", "run", "--schemas-only")
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.strip().splitlines()[-1])
    copy = remote / path.name
    assert (copy / "manifest.json").read_bytes() == (path / "manifest.json").read_bytes()
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in path.iterdir())


def test_verify_tampered_exits_1(cli_config, lab_schema, server, tmp_path):
    from djtui.services import dbbackup
    from djtui.services.database import Database

    db = Database(server.settings)
    try:
        res = dbbackup.run_backup(db, tmp_path / "backups", schemas=[lab_schema], full_server=False)
    finally:
        db.close()
    f = next(res.path.glob("*.sql.*"))
    f.write_bytes(f.read_bytes()[:-3] + b"xyz")
    r = _djtui(cli_config, "dbbackup", "verify", str(res.path))
    assert r.returncode == 1
    assert "MISMATCH" in r.stdout and "sha256" in r.stdout and "NOT verified" in r.stdout
    assert not (res.path / "verified.json").exists()
