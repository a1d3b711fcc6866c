"""Bad configuration, end to end: the real ``djtui`` process exits 2, names file/key/line, changes nothing.

The unit cases (every reader, every key) live in tests/test_config.py; here each kind of bad
file goes through the installed entry point as an operator or cron would run it, so an
exception that escapes the error path (a traceback, exit 1) or a half-created state dir shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reliability._r2_tree import snapshot

GOOD = """\
backup:
  source:
    base_path: {root}/src
    path_structure: "{{participant_id}}/{{session_date}}"
  destinations:
    - name: net
      base_path: {root}/dst
      path_structure: "{{session_date}}/{{participant_id}}"
database:
  host: 127.0.0.1
  port: 1
  user: nobody
  use_datajoint_config: false
  connect_timeout: 1
state_dir: {root}/state
audit_log: {root}/state/audit.jsonl
"""

# (id, config text or None for GOOD, argv after --config, words that must appear, key, line)
CASES = [
    ("malformed-yaml", "backup:\n  source: [\n    base_path: /x\n", ["status-range"],
     ["malformed YAML (line", "hint:"], None, None),
    ("tab-indent", "backup:\n\tsource: {}\n", ["status-range"], ["malformed YAML", "hint:"], None, None),
    ("port-not-a-number", "database:\n  port: abc\n", ["status-range"], ["whole number"], "database.port", 2),
    ("bool-not-a-bool", "state_dir: /tmp\nreadonly: yes please\n", ["status-range"], ["true or false"],
     "readonly", 2),
    ("list-not-a-list", "backup:\n  source:\n    base_path: /d\n  destinations: net\n", ["status-range"],
     ["expected a list"], "backup.destinations", 4),
    ("section-not-a-mapping", "database: [1, 2]\n", ["status-range"], ["expected a mapping"], "database", 1),
    ("unknown-key-typo", "database:\n  hots: x\n", ["status-range"], ["did you mean `host`"], "database.hots", 2),
    ("unknown-destination", None, ["sync", "p001", "20250104", "--dest", "nowhere"],
     ["unknown destination 'nowhere'", "configured destinations: net", "--dest"], None, None),
    ("relative-source", "backup:\n  source:\n    base_path: data/raw\n", ["status-range"],
     ["relative", "hint:"], "backup.source.base_path", 3),
    ("relative-store", "stores:\n  raw:\n    protocol: file\n    location: stores/raw\n", ["status-range"],
     ["relative"], "stores.raw.location", 4),
    ("missing-required", "backup:\n  source:\n    base_path: /d\n  destinations:\n    - name: x\n",
     ["status-range"], ["missing required key", "hint:"], "backup.destinations.0.base_path", 5),
    ("unknown-placeholder", "backup:\n  source:\n    base_path: /d\n    path_structure: '{subject}/{session_date}'\n",
     ["status-range"], ["unknown placeholder {subject}", "hint:"], "backup.source.path_structure", 4),
    ("placeholder-attribute", "backup:\n  source:\n    base_path: /d\n"
     "    path_structure: '{participant_id.__class__}/{session_date}'\n",
     ["status-range"], ["unknown placeholder"], "backup.source.path_structure", 4),
    ("template-dotdot", "backup:\n  source:\n    base_path: /d\n"
     "    path_structure: '../{participant_id}/{session_date}'\n",
     ["status-range"], ["cannot contain `..`"], "backup.source.path_structure", 4),
    ("broken-template", "backup:\n  source:\n    base_path: /d\n    path_structure: '{participant_id/{session_date}'\n",
     ["status-range"], ["not a valid template"], "backup.source.path_structure", 4),
    ("shell-in-rsync-flags", "backup:\n  source:\n    base_path: /d\n  rsync:\n    flags: '-a $(touch /tmp/x)'\n",
     ["status-range"], ["not a list of options", "hint:"], "backup.rsync.flags", 5),
    ("nul-in-path", 'state_dir: "/tmp/a\\0b"\n', ["status-range"], ["NUL"], "state_dir", 1),
]


def _run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "djtui", *argv], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def _no_traceback(out: subprocess.CompletedProcess) -> None:
    for stream in (out.stdout, out.stderr):
        assert "Traceback" not in stream and "internal error" not in stream, stream


@pytest.mark.parametrize(("text", "argv", "words", "key", "line"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_exits_2_names_file_key_line_and_changes_nothing(tmp_path, text, argv, words, key, line):
    (tmp_path / "src" / "p001" / "20250104").mkdir(parents=True)
    (tmp_path / "src" / "p001" / "20250104" / "cam0.mp4").write_bytes(b"v" * 100)
    (tmp_path / "dst").mkdir()
    cfg = tmp_path / "lab.yaml"
    cfg.write_text(text if text is not None else GOOD.format(root=tmp_path))
    cfg.chmod(0o600)
    before = snapshot(tmp_path)
    out = _run(["--config", str(cfg), *argv])
    assert out.returncode == 2, out.stderr
    _no_traceback(out)
    err = out.stderr
    assert err.startswith("djtui: error: "), err
    assert str(cfg) in err, err
    for w in words:
        assert w in err, (w, err)
    if key is not None:
        assert f"key `{key}`" in err, err
        assert f"line {line}" in err, err
    assert snapshot(tmp_path) == before  # no state dir, no audit log, no touched file
    assert not (tmp_path / "state").exists()


def test_missing_config_file_named_by_flag_and_by_env(tmp_path):
    out = _run(["--config", str(tmp_path / "nope.yaml"), "status-range"])
    assert out.returncode == 2 and "--config" in out.stderr and "nope.yaml does not exist" in out.stderr
    assert "hint:" in out.stderr
    _no_traceback(out)
    out = _run(["status-range"], env={"DJTUI_CONFIG": str(tmp_path / "gone.yaml")}, cwd=tmp_path)
    assert out.returncode == 2 and "$DJTUI_CONFIG" in out.stderr and "unset DJTUI_CONFIG" in out.stderr
    _no_traceback(out)
    (tmp_path / "adir.yaml").mkdir()
    out = _run(["--config", str(tmp_path / "adir.yaml"), "status-range"])
    assert out.returncode == 2 and "does not exist" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.yaml"]


def test_unreadable_and_non_utf8_config_files(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"backup:\n  source:\n    base_path: /d\xe9\n")
    out = _run(["--config", str(bad), "status-range"])
    assert out.returncode == 2 and "not UTF-8" in out.stderr and str(bad) in out.stderr
    _no_traceback(out)
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.yaml"
        locked.write_text("readonly: true\n")
        locked.chmod(0)
        out = _run(["--config", str(locked), "status-range"])
        assert out.returncode == 2 and "cannot read the file" in out.stderr and str(locked) in out.stderr
        _no_traceback(out)


def test_password_in_world_readable_file_is_a_warning_not_an_error(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    cfg = tmp_path / "lab.yaml"
    cfg.write_text(GOOD.format(root=tmp_path).replace("  user: nobody\n", "  user: nobody\n  password: Hunter2-x9\n"))
    cfg.chmod(0o644)
    out = _run(["--config", str(cfg), "status-range"])
    assert out.returncode == 0, out.stderr
    assert f"warning: {cfg} holds a password and is readable by other users" in out.stderr
    assert f"chmod 600 {cfg}" in out.stderr and "Hunter2-x9" not in out.stderr + out.stdout
    assert cfg.stat().st_mode & 0o777 == 0o644  # djtui tells; it does not change the admin's file
    cfg.chmod(0o600)
    out = _run(["--config", str(cfg), "status-range"])
    assert out.returncode == 0 and "warning" not in out.stderr
