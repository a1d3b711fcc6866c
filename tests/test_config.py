"""Config: the backup manager's format read as documented, our sections, and every kind of bad file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from djtui.config import find_config, load_config, parse_config
from djtui.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

SEED_FORMAT = """
backup:
  destinations:
    - name: "CottonLab Network"
      mount_point: "/mnt/CottonLab"
      base_path: "/mnt/CottonLab/mobile_system_data"
      path_structure: "{session_date}/{participant_id}"
      enabled: true
      verify_mount: true

  source:
    base_path: "/data"
    path_structure: "{participant_id}/{session_date}"

  filters:
    participant_prefixes: ["m", "p", "b", "s", "TR", "TF"]
    exclude_patterns: ["*.tmp", "*.lock"]

  rsync:
    flags: "-avzh"

  verification:
    verify_after_sync: true
    verify_method: "size"  # File size + count verification
"""


def test_reads_the_backup_managers_file_as_documented():
    cfg = parse_config(SEED_FORMAT)
    b = cfg.backup
    assert b is not None
    assert b.source.base_path == Path("/data")
    assert b.source.path_structure == "{participant_id}/{session_date}"
    (dest,) = b.destinations
    assert dest.name == "CottonLab Network"
    assert dest.mount_point == Path("/mnt/CottonLab")
    assert dest.base_path == Path("/mnt/CottonLab/mobile_system_data")
    assert dest.path_structure == "{session_date}/{participant_id}"
    assert dest.enabled and dest.verify_mount
    assert b.filters.participant_prefixes == ("m", "p", "b", "s", "TR", "TF")
    assert b.filters.exclude_patterns == ("*.tmp", "*.lock")
    assert b.rsync.flags == "-avzh"
    assert b.verification.verify_after_sync is True
    assert b.verification.verify_method == "size"


def test_example_file_is_valid_and_documents_every_section():
    cfg = load_config(ROOT / "backup_config.example.yaml", warn=lambda _: None)
    assert cfg.backup and cfg.backup.destinations[0].name == "CottonLab Network"
    assert cfg.sessions.sqlite_path == Path("/data/recordings.db")
    assert {s.name for s in cfg.stores} == {"raw", "analysis"}
    assert cfg.orphans.directories[0].table == "common_nwbfile.analysis_nwbfile"
    assert cfg.accounts.password_expiry_days == 180
    assert cfg.database.password is None and cfg.database.password_env == "DJTUI_DB_PASSWORD"


def test_defaults_without_a_file():
    cfg = parse_config("")
    assert cfg.backup is None
    assert cfg.sessions.imported_rule == "multicamera"
    assert "common" in cfg.accounts.shared_prefixes
    assert cfg.orphans.grace_hours == 1.0 and cfg.orphans.max_share == 0.2


@pytest.mark.parametrize(
    ("text", "key", "line", "words"),
    [
        ("backup:\n  source:\n    base_path: data\n", "backup.source.base_path", 3, "relative"),
        ("backup:\n  source:\n    base_path: /d\n    path_structure: '{participant}/{session_date}'\n",
         "backup.source.path_structure", 4, "unknown placeholder"),
        ("backup:\n  source:\n    base_path: /d\n  destinations:\n    - name: x\n", "backup.destinations.0.base_path",
         5, "missing required key"),
        ("database:\n  port: 'abc'\n", "database.port", 2, "whole number"),
        ("database:\n  port: 99999\n", "database.port", 2, "above the maximum"),
        ("database:\n  hots: x\n", "database.hots", 2, "did you mean `host`"),
        ("backup:\n  source:\n    base_path: /d\n  verification:\n    verify_method: md5\n",
         "backup.verification.verify_method", 5, "not one of"),
        ("backup:\n  source:\n    base_path: /d\n  filters:\n    participant_prefixes: p\n",
         "backup.filters.participant_prefixes", 5, "list of strings"),
        ("backup:\n  source:\n    base_path: /d\n  destinations:\n    - {name: a, base_path: /x}\n"
         "    - {name: a, base_path: /y}\n", "backup.destinations.1.name", 6, "used twice"),
        ("backup:\n  source:\n    base_path: /d\n  rsync:\n    flags: '-a; rm -rf /'\n", "backup.rsync.flags", 5,
         "not a list of options"),
        ("readonly: yes please\n", "readonly", 1, "true or false"),
        ("orphans:\n  tables: [interval_list]\n", "orphans.tables.0", 2, "database.table"),
        ("stores:\n  s:\n    protocol: s3\n    location: x\n", "stores.s.endpoint", 2, "needs `endpoint`"),
    ],
)
def test_bad_values_name_the_key_and_line(text, key, line, words):
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="lab.yaml")
    msg = info.value.render()
    assert f"`{key}`" in msg
    assert f"line {line}" in msg
    assert words in msg
    assert msg.startswith("lab.yaml")


def test_malformed_yaml_names_line():
    with pytest.raises(ConfigError) as info:
        parse_config("backup:\n  source: [\n    base_path: /x\n", source="lab.yaml")
    assert "malformed YAML (line" in info.value.render()


def test_unknown_destination_name_is_a_clear_error():
    cfg = parse_config(SEED_FORMAT)
    with pytest.raises(ConfigError, match="unknown destination 'nas'") as info:
        cfg.backup.destination("nas")
    assert "CottonLab Network" in info.value.render()


def test_search_order(tmp_path, monkeypatch):
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("readonly: true\n")
    env = tmp_path / "env.yaml"
    env.write_text("")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "backup_config.yaml").write_text("")
    home = tmp_path / "xdg"
    (home / "djtui").mkdir(parents=True)
    (home / "djtui" / "config.yaml").write_text("")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("DJTUI_CONFIG", str(env))
    assert find_config(explicit) == explicit
    assert find_config() == env
    monkeypatch.delenv("DJTUI_CONFIG")
    assert find_config() == cwd / "backup_config.yaml"
    (cwd / "backup_config.yaml").unlink()
    assert find_config() == home / "djtui" / "config.yaml"
    with pytest.raises(ConfigError, match="does not exist"):
        find_config(tmp_path / "nope.yaml")


def test_password_in_world_readable_file_warns(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("database:\n  password: hunter2hunter2\n")
    path.chmod(0o644)
    warnings: list[str] = []
    cfg = load_config(path, warn=warnings.append)
    assert warnings and "chmod 600" in warnings[0]
    assert "hunter2" not in repr(cfg.database)
    path.chmod(0o600)
    warnings.clear()
    load_config(path, warn=warnings.append)
    assert warnings == []


@pytest.mark.parametrize("text", ["backup: [\n", "database:\n  port: x\n", "backup:\n  source: {}\n"])
def test_cli_exits_2_without_traceback(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = subprocess.run([sys.executable, "-m", "djtui", "--config", str(path), "doctor"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert str(path) in out.stderr
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    assert "hint:" in out.stderr or "line" in out.stderr
