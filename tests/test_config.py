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
    assert dict(cfg.keys) == {"app.help": "question_mark,f1"}


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
        ("keys: x\n", "keys", 1, "mapping of binding ids"),
        ("keys:\n  sessions.delete: 3\n", "keys.sessions.delete", 2, "key or a list of keys"),
        ("keys:\n  sessions.delete: ''\n", "keys.sessions.delete", 2, "empty key"),
        ("keys:\n  sessions.delete: 'ctrl x'\n", "keys.sessions.delete", 2, "space inside"),
        ("keys:\n  sessions.delete: [x, [y]]\n", "keys.sessions.delete.1", 2, "got a list"),
        ("keys:\n  sessions.delete: ['a,b']\n", "keys.sessions.delete.0", 2, "comma"),
        ("keys:\n  'bad id': x\n", "keys.bad id", 2, "not a binding id"),
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


# -- the backup manager's real file (issue 12, defect 5) -------------------------------------------
# tests/conformance/data/mct_backup_config.example.yaml is backup_config.example.yaml exactly as
# IntelligentSensingAndRehabilitation/MultiCameraTracking ships it.
MCT_SHIPPED = ROOT / "tests" / "conformance" / "data" / "mct_backup_config.example.yaml"


def mct_uncommented() -> str:
    """The shipped file with every commented option uncommented, as its comments invite."""
    text = MCT_SHIPPED.read_text()
    for option in ("bandwidth_limit: 10000", "timeout: 300"):
        assert f"    # {option}" in text
        text = text.replace(f"    # {option}", f"    {option}")
    return text


def test_the_backup_managers_shipped_file_loads_unchanged():
    cfg = parse_config(MCT_SHIPPED.read_text(), source="backup_config.yaml")
    assert cfg.warnings == ()
    assert cfg.backup.rsync.flags == "-avzh" and cfg.backup.rsync.bandwidth_limit is None
    assert cfg.backup.destinations[0].rsync.options() == []


def test_its_commented_rsync_options_uncommented_are_read_and_honoured():
    cfg = parse_config(mct_uncommented(), source="backup_config.yaml")
    assert cfg.warnings == ()
    rs = cfg.backup.rsync
    assert (rs.flags, rs.bandwidth_limit, rs.timeout) == ("-avzh", 10000, 300)
    (dest,) = cfg.backup.destinations
    assert dest.rsync == rs  # a destination without its own rsync: inherits backup.rsync
    from djtui.services.transfers import rsync_args
    args = rsync_args(dest.rsync, Path("/data/p1/20250101"), Path("/mnt/x/20250101/p1"))
    # rsync reads --bwlimit in units of 1024 bytes/s, as the file's "KB/s" means; ours follow the user's flags
    assert args[:4] == ["rsync", "-avzh", "--bwlimit=10000", "--timeout=300"]
    assert args.index("--no-h") > args.index("-avzh")


def test_a_destination_overrides_the_rsync_limits_key_by_key():
    text = mct_uncommented().replace('      verify_mount: true\n', '      verify_mount: true\n'
                                     '      rsync:\n        bandwidth_limit: 0\n'
                                     '    - name: slow\n      base_path: /mnt/slow\n'
                                     '      rsync: {bandwidth_limit: 500.5, timeout: 0}\n')
    cfg = parse_config(text)
    fast, slow = cfg.backup.destinations
    assert (fast.rsync.bandwidth_limit, fast.rsync.timeout) == (0, 300)
    assert fast.rsync.options() == ["--bwlimit=0", "--timeout=300"]  # 0: rsync's "no limit", over the global one
    assert slow.rsync.options() == ["--bwlimit=500.5", "--timeout=0"]
    assert slow.rsync.flags == "-avzh"


def test_unknown_keys_in_the_backup_section_warn_naming_file_key_and_line(tmp_path):
    path = tmp_path / "backup_config.yaml"
    path.write_text(mct_uncommented().replace("    timeout: 300  # seconds\n",
                                              "    timeout: 300  # seconds\n    compress_level: 3\n")
                    .replace("      enabled: true\n", "      enabled: true\n      owner: cotton\n"))
    warned: list[str] = []
    cfg = load_config(path, warn=warned.append)
    assert cfg.backup.rsync.timeout == 300
    assert len(warned) == 2, warned
    text = "\n".join(warned)
    assert f"{path}, key `backup.rsync.compress_level` (line 36): unknown key `compress_level`" in text
    assert f"{path}, key `backup.destinations.0.owner` (line 15): unknown key `owner`" in text
    assert all("ignored" in w for w in warned)
    # through the CLI: a warning on stderr, exit 0, never 2
    out = subprocess.run([sys.executable, "-m", "djtui", "--config", str(path), "doctor", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_djtuis_own_sections_stay_strict():
    with pytest.raises(ConfigError, match="unknown key `bandwidth_limt`") as info:
        parse_config("database:\n  bandwidth_limt: 3\n", source="lab.yaml")
    assert "line 2" in info.value.render()
    with pytest.raises(ConfigError, match="unknown key `backups`"):  # nor does the top level turn lenient
        parse_config("backups:\n  source: {base_path: /d}\n")


@pytest.mark.parametrize(("value", "words"), [("fast", "expected a number"), ("-5", "below the minimum"),
                                              ("0.2", "below rsync's minimum"), ("true", "expected a number")])
def test_a_bad_bandwidth_limit_is_exit_2_naming_the_key(value, words):
    text = mct_uncommented().replace("bandwidth_limit: 10000", f"bandwidth_limit: {value}")
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="lab.yaml")
    msg = info.value.render()
    assert "`backup.rsync.bandwidth_limit` (line 33)" in msg and words in msg, msg


def test_keys_section_maps_binding_ids_to_textual_key_strings():
    cfg = parse_config("keys:\n  sessions.delete: x\n  app.help: [question_mark, f1]\n  app.quit: 'q, ctrl+q'\n")
    assert dict(cfg.keys) == {"sessions.delete": "x", "app.help": "question_mark,f1", "app.quit": "q,ctrl+q"}
    assert dict(parse_config("").keys) == {}
    with pytest.raises(TypeError):
        cfg.keys["app.quit"] = "z"  # type: ignore[index]  # the frozen Config's mapping is read-only too
