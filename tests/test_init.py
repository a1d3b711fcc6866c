"""`djtui init`: a commented config from flags or answers on a terminal, prefilled from DataJoint's config."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import yaml

from djtui.config import load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LC_ALL": "C.UTF-8", "PYTHONPATH": str(ROOT),
            "COLUMNS": "100", **extra}


def _init(*args: str, home: Path, cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "djtui", "init", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=_env(home, **extra), stdin=subprocess.DEVNULL)


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    return home, cwd


def test_init_from_flags_writes_a_config_that_loads_and_passes_doctors_config_check(tmp_path):
    home, cwd = _dirs(tmp_path)
    out = _init("--source", str(tmp_path / "data"), "--dest", f"Lab NAS={tmp_path}/nas",
                "--path-structure", "{session_date}/{participant_id}", "--db-host", "db.lab", "--db-port", "3307",
                "--db-user", "alice", "--password-env", "LAB_PW", home=home, cwd=cwd)
    assert out.returncode == 0, out.stderr
    path = home / ".config/djtui/config.yaml"
    assert f"wrote {path}" in out.stdout and "djtui doctor" in out.stdout
    assert path.stat().st_mode & 0o077 == 0
    text = path.read_text()
    assert text.count("\n# ") > 5  # commented
    cfg = load_config(path)
    assert cfg.backup.source.base_path == tmp_path / "data"
    assert cfg.backup.source.path_structure == "{session_date}/{participant_id}"
    assert [(d.name, d.base_path) for d in cfg.backup.destinations] == [("Lab NAS", tmp_path / "nas")]
    assert (cfg.database.host, cfg.database.port, cfg.database.user) == ("db.lab", 3307, "alice")
    assert cfg.database.password_env == "LAB_PW" and cfg.database.password is None
    # the commented example of a remapped key, uncommented, is read as a keymap entry
    keyed = text.replace("# keys:\n#   sessions.delete: x", "keys:\n  sessions.delete: x")
    assert keyed != text and dict(parse_config(keyed).keys) == {"sessions.delete": "x"}
    doctor = subprocess.run([sys.executable, "-m", "djtui", "doctor", "--json", "--timeout", "1"],
                            capture_output=True, text=True, timeout=120, cwd=cwd, env=_env(home, LAB_PW="x"))
    checks = json.loads(doctor.stdout)["checks"]
    row = next(c for c in checks if (c["area"], c["name"]) == ("config", "file"))
    assert row["ok"] and not row["warn"] and row["detail"] == str(path)


def test_init_refuses_to_overwrite_without_force_and_keeps_the_old_file(tmp_path):
    home, cwd = _dirs(tmp_path)
    target = cwd / "mine.yaml"
    target.write_text("readonly: true\n")
    out = _init("--output", str(target), home=home, cwd=cwd)
    assert out.returncode == 2 and "already exists" in out.stderr and "--force" in out.stderr
    assert target.read_text() == "readonly: true\n"
    out = _init("--output", str(target), "--force", "--db-user", "bob", home=home, cwd=cwd)
    assert out.returncode == 0, out.stderr
    assert load_config(target).database.user == "bob"
    assert (cwd / "mine.yaml.bak").read_text() == "readonly: true\n"


def test_init_bad_flags_exit_2_with_a_clear_error_and_write_nothing(tmp_path):
    home, cwd = _dirs(tmp_path)
    for args, says in ((["--dest", "nas"], "is not NAME=DIR"),
                       (["--source", "/d", "--path-structure", "{subject}"], "unknown placeholder {subject}"),
                       (["--dest", "a=/x"], "--dest needs --source"),
                       (["--db-port", "70000"], "between 1 and 65535"),
                       (["--password-env", "s3cret pass"], "not an environment variable name")):
        out = _init("--output", str(cwd / "c.yaml"), *args, home=home, cwd=cwd)
        assert out.returncode == 2, (args, out.stderr)
        assert says in out.stderr and "Traceback" not in out.stderr
        assert not (cwd / "c.yaml").exists()
    assert "s3cret" not in out.stderr  # a password typed in the wrong place is not repeated


def test_init_prefills_database_and_stores_from_datajoint_config_never_the_password(tmp_path):
    home, cwd = _dirs(tmp_path)
    (home / ".datajoint_config.json").write_text(json.dumps({
        "database.host": "dj.example.org", "database.user": "carol", "database.password": "pw-in-dj",
        "stores": {"raw": {"protocol": "file", "location": str(tmp_path / "raw")},
                   "cloud": {"protocol": "s3", "endpoint": "s3.example.org", "bucket": "b",
                             "access_key": "AK", "secret_key": "SK-secret", "location": "lab"}}}))
    out = _init("--no-input", home=home, cwd=cwd)
    assert out.returncode == 0, out.stderr
    path = home / ".config/djtui/config.yaml"
    text = path.read_text()
    assert "pw-in-dj" not in text and "SK-secret" not in text
    raw = yaml.safe_load(text)
    assert raw["database"]["host"] == "dj.example.org" and raw["database"]["user"] == "carol"
    assert raw["stores"]["raw"]["location"] == str(tmp_path / "raw")
    assert "cloud" not in raw["stores"] and "cloud: s3 store" in text  # its keys stay in DataJoint's config


def _read_until(fd: int, needle: str, buf: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while needle not in "".join(buf):
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} in {''.join(buf)!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                buf.append(os.read(fd, 4096).decode(errors="replace"))
            except OSError:
                break


def test_init_asks_on_a_terminal(tmp_path):
    home, cwd = _dirs(tmp_path)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "djtui", "init"], stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, env=_env(home, TERM="xterm"), close_fds=True)
    os.close(slave)
    buf: list[str] = []
    try:
        for prompt, answer in (("recordings to back up", str(tmp_path / "rec")),
                               ("how sessions are laid out", "{nope}"),  # refused, asked again
                               ("unknown placeholder", ""),  # keeps the default
                               ("destination 1", "NAS"), ("where NAS keeps", str(tmp_path / "nas")),
                               ("mount point", str(tmp_path)), ("destination 2", ""),
                               ("database host", "db.lab"), ("database port", "abc"), ("not a port", "3310"),
                               ("database user", "dave"), ("password", "DAVE_PW")):
            _read_until(master, prompt, buf)
            buf.clear()
            os.write(master, (answer + "\n").encode())
        _read_until(master, "wrote", buf)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    cfg = load_config(home / ".config/djtui/config.yaml")
    assert cfg.backup.source.base_path == tmp_path / "rec"
    assert cfg.backup.source.path_structure == "{participant_id}/{session_date}"
    nas = cfg.backup.destinations[0]
    assert (nas.name, nas.base_path, nas.mount_point, nas.verify_mount) == ("NAS", tmp_path / "nas", tmp_path, True)
    assert (cfg.database.host, cfg.database.port, cfg.database.user, cfg.database.password_env) == (
        "db.lab", 3310, "dave", "DAVE_PW")
