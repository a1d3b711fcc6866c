"""The MultiCameraTracking backup manager's shipped config, and djtui running on it unchanged.

``data/mct_backup_config.example.yaml`` is ``backup_config.example.yaml`` byte for byte as
IntelligentSensingAndRehabilitation/MultiCameraTracking ships it. Two variants run here: the file as
shipped, and the same with every commented option uncommented (``rsync.bandwidth_limit: 10000  # KB/s``
and ``rsync.timeout: 300  # seconds``). In both only ``mount_point`` and the two ``base_path`` values
are rewritten, in place, so the paths exist: the source a temp dir, the destination a temp dir, and
``mount_point`` the real mount that holds it (``verify_mount: true`` stays, and a plain directory there
is refused, as the backup manager's own ``mountpoint -q`` refuses it). Everything else stays
byte-identical, which the test checks line by line.

The backup manager itself never reads those two options (FIELD.md §7: its shell script ignores them,
and its Python ``BackupManager`` passes ``rsync.flags`` only), so they are invitations it never
honoured: djtui honours them as rsync reads them, ``--bwlimit=10000`` (units of 1024 bytes/s) and
``--timeout=300``. The limit is measured: the same session copies at most at the limit with it, and
several times faster without it, and ``--bwlimit`` is read from the running rsync's own argv.

There is no database section: djtui finds the server as DataJoint does (DJ_HOST, DJ_PORT, DJ_USER,
DJ_PASS) and the tables under their default names, as on an acquisition machine.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from djtui import labschema

from .tools import server_env

REPO = Path(__file__).resolve().parents[2]
SHIPPED = Path(__file__).parent / "data" / "mct_backup_config.example.yaml"
SHIPPED_SIZE = 1287  # bytes, as the repository holds it
LIMIT_KIB = 10000  # the shipped comment's value
SESSION_BYTES = 24 * 1024 * 1024  # about 2.4 s at the limit


def uncommented(text: str) -> str:
    out = text
    for option in ("bandwidth_limit: 10000  # KB/s", "timeout: 300  # seconds"):
        assert f"    # {option}\n" in out, option
        out = out.replace(f"    # {option}\n", f"    {option}\n")
    assert "    # bandwidth_limit" not in out and "    # timeout" not in out
    return out


def with_paths(text: str, source: Path, mount: Path, dest: Path) -> str:
    """Only the three path values change; the diff proves nothing else did."""
    out = (text.replace('      mount_point: "/mnt/CottonLab"\n', f'      mount_point: "{mount}"\n')
           .replace('      base_path: "/mnt/CottonLab/mobile_system_data"\n', f'      base_path: "{dest}"\n')
           .replace('    base_path: "/data"\n', f'    base_path: "{source}"\n'))
    changed = [ln for ln in difflib.ndiff(text.splitlines(True), out.splitlines(True)) if ln[:1] in "+-"]
    assert len(changed) == 6, changed  # three lines out, three in
    return out


def mount_holding(path: Path) -> Path:
    p = path
    while not os.path.ismount(p):
        p = p.parent
    return p


class Mct:
    def __init__(self, server, root: Path):
        self.server, self.root = server, root
        self.home = root / "home"
        self.home.mkdir()
        self.env = server_env(server, HOME=str(self.home), XDG_STATE_HOME=str(root / "state"),
                              XDG_CONFIG_HOME=str(root / "xdg"), PYTHONPATH=str(REPO))

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        path.chmod(0o600)
        return path

    def cmd(self, config: Path, *args: str) -> list[str]:
        return [sys.executable, "-m", "djtui", "--config", str(config), *args]

    def run(self, config: Path, *args: str) -> subprocess.CompletedProcess:
        res = subprocess.run(self.cmd(config, *args), cwd=self.root, env=self.env, capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 0, f"djtui {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
        assert "Traceback" not in res.stderr
        return res


@pytest.fixture
def mct(server, tmp_path):
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name IN (%s, %s, %s)",
                        tuple(labschema.DEFAULT_SCHEMAS.values()))
            if cur.fetchone()[0]:
                pytest.fail(f"the private server already holds {labschema.DEFAULT_SCHEMAS}: another test left them")
            labschema.create_tables(cur)
            labschema.insert_session(cur, "101", dt.date(2025, 3, 1))  # the GUI stores p101 as 101
            labschema.insert_session(cur, "TR007", dt.date(2025, 3, 2))
    finally:
        conn.close()
    yield Mct(server, tmp_path)
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            labschema.drop_tables(cur, list(labschema.DEFAULT_SCHEMAS.values()))  # children first
    finally:
        conn.close()


def make_session(source: Path, pid: str, date: str, size: int) -> int:
    d = source / pid / date
    (d / "meta").mkdir(parents=True)
    (d / "cam0.mp4").write_bytes(os.urandom(size))  # random: -z cannot shrink it below the limit
    (d / "meta" / "info.json").write_text("{}")
    (d / "capture.tmp").write_text("excluded by *.tmp")
    return size + 2


def rsync_argvs(marker: str, stop: threading.Event, seen: list[list[str]]) -> None:
    """Every rsync process whose argv names ``marker``, read from /proc while it runs."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [a.decode(errors="replace") for a in argv if a]
            if words and words[0].endswith("rsync") and any(marker in w for w in words) and words not in seen:
                seen.append(words)
        time.sleep(0.05)


def timed_sync(mct: Mct, config: Path, pid: str, date: str, marker: str) -> tuple[float, list[list[str]], str]:
    """Run ``djtui sync`` and return rsync's own elapsed time (from djtui's report), the argvs seen, stdout."""
    seen: list[list[str]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=rsync_argvs, args=(marker, stop, seen), daemon=True)
    watcher.start()
    try:
        res = mct.run(config, "sync", pid, date)
    finally:
        stop.set()
        watcher.join()
    m = re.search(r"(\d+) files transferred in ([\d.]+) s; verified: (\d+) files match", res.stdout)
    assert m, res.stdout
    return float(m.group(2)), seen, res.stdout


def test_the_shipped_file_and_its_uncommented_options_run_doctor_status_range_and_sync(mct):
    shipped = SHIPPED.read_bytes()
    assert len(shipped) == SHIPPED_SIZE and shipped.startswith(b"# Backup Configuration for MultiCameraTracking\n")
    text = shipped.decode()
    source = mct.root / "data"
    size = make_session(source, "p101", "20250301", SESSION_BYTES)
    make_session(source, "TR007", "20250302", 4096)
    make_session(source, "x900", "20250302", 4096)  # no listed prefix: the filter leaves it out
    runs = {}
    for variant, body in (("shipped", text), ("uncommented", uncommented(text))):
        dest = mct.root / f"dest-{variant}"
        dest.mkdir()
        config = mct.write(f"{variant}.yaml", with_paths(body, source, mount_holding(dest), dest))

        doctor = mct.run(config, "doctor")
        assert "warning:" not in doctor.stderr, doctor.stderr  # not one key of the file is unknown to djtui

        st = mct.run(config, "status-range", "--json")
        rows = {(r["participant_id"], r["session_date"]): r for r in json.loads(st.stdout)}
        assert set(rows) == {("p101", "20250301"), ("TR007", "20250302")}
        assert rows[("p101", "20250301")]["dj"] and rows[("TR007", "20250302")]["dj"]
        assert not rows[("p101", "20250301")]["safe"]  # no backup yet

        dry = mct.run(config, "sync", "p101", "20250301", "--dry-run")
        elapsed, argvs, out = timed_sync(mct, config, "p101", "20250301", str(dest))
        copied = dest / "20250301" / "p101"  # {session_date}/{participant_id}, as the file lays it out
        assert (copied / "cam0.mp4").stat().st_size == SESSION_BYTES and not (copied / "capture.tmp").exists()
        after = {(r["participant_id"], r["session_date"]): r
                 for r in json.loads(mct.run(config, "status-range", "--json").stdout)}
        assert after[("p101", "20250301")]["safe"], after[("p101", "20250301")]
        runs[variant] = (elapsed, argvs, dry.stdout, out)

    # the options as the uncommented file means them, on the real rsync's argv and in the dry run
    elapsed_limited, argvs, dry, _ = runs["uncommented"]
    assert argvs, "no rsync process was seen"
    real = argvs[0]
    assert real[1] == "-avzh" and "--bwlimit=10000" in real and "--timeout=300" in real, real
    assert real.index("--no-h") > real.index("-avzh")  # the user's -h cannot change what djtui parses
    assert "CottonLab Network: limit 9.8 MB/s (bandwidth_limit 10000 KB/s), timeout 300 s" in dry, dry
    assert "--bwlimit=10000" in dry
    elapsed_free, argvs_free, dry_free, _ = runs["shipped"]
    assert argvs_free and not any(a.startswith(("--bwlimit", "--timeout")) for a in argvs_free[0]), argvs_free
    assert "no bandwidth limit, no timeout" in dry_free

    # the limit visibly slows rsync: at most LIMIT_KIB KiB/s with it, several times faster without it
    floor = size / (LIMIT_KIB * 1024)
    print(f"limited {elapsed_limited:.2f} s (floor {floor:.2f} s), unlimited {elapsed_free:.2f} s")
    assert elapsed_limited >= 0.8 * floor, (elapsed_limited, floor)
    assert elapsed_free * 3 < elapsed_limited, (elapsed_free, elapsed_limited)


def test_verify_mount_with_the_share_not_mounted_refuses_like_the_backup_manager(mct):
    """The shipped ``verify_mount: true`` with its mount_point a plain directory (the share not mounted):
    the backup manager's ``mountpoint -q`` refuses the sync ("not mounted"); so does djtui, and writes nothing."""
    source = mct.root / "data"
    make_session(source, "p101", "20250301", 4096)
    plain = mct.root / "CottonLab"
    (plain / "mobile_system_data").mkdir(parents=True)
    config = mct.write("plain.yaml", with_paths(SHIPPED.read_text(), source, plain, plain / "mobile_system_data"))
    res = subprocess.run(mct.cmd(config, "sync", "p101", "20250301"), cwd=mct.root, env=mct.env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"{plain} is not a mount point" in res.stdout
    assert not any(plain.rglob("*.mp4"))
