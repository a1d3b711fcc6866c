"""The backup manager's rsync options as its shipped file writes them: flags "-avzh", bandwidth_limit
(KB/s), timeout (seconds), per destination too; and what verify_mount and the TR/TF prefixes mean to
its users (issue 12, defect 5)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

from djtui.cli import main
from djtui.config import RsyncSettings
from djtui.services.transfers import rsync_args, run_rsync


def run(lab, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(lab.config_path), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def mount_holding(path: Path) -> Path:
    """The real mount point that holds ``path`` (``/`` at worst): a mount_point verify_mount accepts."""
    p = path
    while not os.path.ismount(p):
        p = p.parent
    return p


def set_rsync(lab, block: str) -> None:
    text = lab.config_path.read_text()
    assert '  rsync:\n    flags: "-a"\n' in text
    lab.config_path.write_text(text.replace('  rsync:\n    flags: "-a"\n', block))


def test_avzh_and_the_limits_reach_real_rsync_and_its_progress_still_parses(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "meta").mkdir(parents=True)
    sizes = {"cam0.mp4": 700_000, "cam1.mp4": 300_001, "meta/info.json": 17}
    for rel, n in sizes.items():
        (src / rel).write_bytes(os.urandom(n))
    args = rsync_args(RsyncSettings("-avzh", bandwidth_limit=20000, timeout=30), src, dst)
    assert args[1:4] == ["-avzh", "--bwlimit=20000", "--timeout=30"]
    seen = []
    res = asyncio.run(run_rsync(args, seen.append))
    assert res.ok, res.stderr
    # -h in the user's flags would print "1.00M": djtui's later --no-h keeps the byte counts exact
    assert res.last is not None and res.last.bytes == sum(sizes.values()), seen[-3:]
    assert all(isinstance(p.bytes, int) for p in seen) and res.last.percent == 100
    assert sorted(res.changed) == sorted(sizes)  # -v adds no lines the itemize parser mistakes for files
    assert all((dst / rel).stat().st_size == n for rel, n in sizes.items())


def test_sync_dry_run_shows_the_limit_and_the_command(lab, capsys):
    set_rsync(lab, '  rsync:\n    flags: "-avzh"\n    bandwidth_limit: 10000  # KB/s\n    timeout: 300\n')
    lab.make_session("p001", "20250104")
    code, out, err = run(lab, capsys, "sync", "p001", "20250104", "--dry-run")
    assert code == 0, out + err
    assert "net: limit 9.8 MB/s (bandwidth_limit 10000 KB/s), timeout 300 s" in out, out
    assert "rsync -avzh --bwlimit=10000 --timeout=300 " in out
    assert not lab.dest_dir("p001", "20250104").exists()
    code, out, err = run(lab, capsys, "sync", "p001", "20250104", "--dry-run", "--json")
    (job,) = json.loads(out)
    assert job["bandwidth_limit"] == 10000 and job["timeout"] == 300
    assert job["command"][1:4] == ["-avzh", "--bwlimit=10000", "--timeout=300"]


def test_a_destination_lifts_or_sets_its_own_limit(lab, capsys):
    set_rsync(lab, '  rsync:\n    flags: "-a"\n    bandwidth_limit: 1000\n')
    text = lab.config_path.read_text().replace(
        '      path_structure: "{session_date}/{participant_id}"\n',
        '      path_structure: "{session_date}/{participant_id}"\n      rsync: {bandwidth_limit: 0, timeout: 5}\n', 1)
    lab.config_path.write_text(text)
    lab.make_session("p001", "20250104")
    code, out, err = run(lab, capsys, "sync", "p001", "20250104", "--dry-run", "--json")
    assert code == 0, err
    (job,) = json.loads(out)
    assert job["command"][1:4] == ["-a", "--bwlimit=0", "--timeout=5"], job


# -- verify_mount: true means the share must be mounted, as the backup manager's `mountpoint -q` ----

def test_verify_mount_refuses_a_plain_directory_at_the_mount_point(lab, capsys):
    """The backup manager runs `mountpoint -q <mount_point>` before every sync and refuses with
    "<mount_point> not mounted": a plain directory there is the unmounted share, and copying into it
    fills the local disk with a "backup" that is not one."""
    text = lab.config_path.read_text()
    assert text.count("      verify_mount: false  #") == 1
    lab.config_path.write_text(re.sub(r"      verify_mount: false .*\n", "", text))  # the default: true
    lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    code, out, err = run(lab, capsys, "sync", "p001", "20250104")
    assert code == 1, out + err
    assert f"{lab.root / 'mnt'} is not a mount point" in out, out
    assert not any((lab.root / "mnt").rglob("*.mp4"))  # nothing written under the bare mount point
    code, out, err = run(lab, capsys, "status", "p001", "20250104")
    assert "not a mount point" in out and "Safe to delete: ✗" in out, out
    code, out, err = run(lab, capsys, "doctor", "--json")
    net = next(c for c in json.loads(out)["checks"] if c["area"] == "destination" and c["name"] == "net")
    assert not net["ok"] and "is not a mount point" in net["detail"], net  # doctor's ✗
    assert code == 1


def test_verify_mount_accepts_a_real_mount_point(lab, capsys):
    base = lab.root / "onmount"
    base.mkdir()
    mount = mount_holding(base)
    text = re.sub(r"      verify_mount: false .*\n", "      verify_mount: true\n", lab.config_path.read_text())
    text = text.replace(f"mount_point: {lab.root}/mnt\n", f"mount_point: {mount}\n")
    lab.config_path.write_text(text.replace(f"base_path: {lab.root}/mnt/backup", f"base_path: {base}"))
    lab.make_session("p001", "20250104")
    code, out, err = run(lab, capsys, "sync", "p001", "20250104")
    assert code == 0, out + err
    assert (base / "20250104" / "p001" / "cam0.mp4").is_file()


# -- filters.participant_prefixes with TR/TF, destinations laid out {session_date}/{participant_id} --

def test_tr_and_tf_participants_are_found_synced_and_inverted_at_the_destination(lab, capsys):
    text = lab.config_path.read_text().replace('participant_prefixes: ["p", "t"]',
                                               'participant_prefixes: ["m", "p", "b", "s", "TR", "TF"]')
    lab.config_path.write_text(text)
    for pid in ("TR012", "TF3", "s7", "x9", "T5"):
        lab.make_session(pid, "20250104")
    lab.import_session("TR012", "20250104")
    code, out, err = run(lab, capsys, "status-range", "--json")
    assert code == 0, err
    rows = {(r["participant_id"], r["session_date"]): r for r in json.loads(out)}
    assert set(rows) == {("TR012", "20250104"), ("TF3", "20250104"), ("s7", "20250104")}
    assert rows[("TR012", "20250104")]["dj"] is True  # "TR012" is not read as t + "R012"
    code, out, err = run(lab, capsys, "sync", "TR012", "20250104")
    assert code == 0, out + err
    assert sorted(p.name for p in (lab.dest / "20250104").iterdir()) == ["TR012"]
    assert (lab.dest / "20250104" / "TR012" / "cam0.mp4").is_file()
    code, out, err = run(lab, capsys, "status-range", "--json")
    rows = {(r["participant_id"], r["session_date"]): r for r in json.loads(out)}
    assert rows[("TR012", "20250104")]["safe"] is True, rows[("TR012", "20250104")]
    # "Only sync participants with these prefixes": the backup manager refuses x9 ("not in allowed list")
    code, out, err = run(lab, capsys, "sync", "x9", "20250104")
    assert code == 2 and "backup.filters.participant_prefixes" in err and "'x9'" in err, out + err
    assert not (lab.dest / "20250104" / "x9").exists()


def test_batch_dry_run_shows_each_destinations_limit(lab, capsys):
    set_rsync(lab, '  rsync:\n    flags: "-avzh"\n    bandwidth_limit: 2048\n')
    lab.make_session("p001", "20250104")
    code, out, err = run(lab, capsys, "batch", "20250104", "--dry-run")
    assert code == 0, out + err
    assert "net: limit 2.0 MB/s (bandwidth_limit 2048 KB/s), no timeout" in out, out


async def test_the_transfers_screen_shows_a_syncs_limit(tmp_path):
    from textual.widgets import DataTable, Static

    from djtui.config import parse_config
    from djtui.domain.sessions import SessionKey, parse_date
    from djtui.tui.app import DjtuiApp
    from djtui.tui.screens.transfers import TransfersScreen

    src = tmp_path / "source" / "p001" / "20250104"
    src.mkdir(parents=True)
    (src / "cam0.mp4").write_bytes(os.urandom(600_000))  # about 2 s at 300 KB/s
    (tmp_path / "dest").mkdir()
    cfg = parse_config(f"backup:\n  source:\n    base_path: {tmp_path}/source\n"
                       f"  destinations:\n    - name: net\n      base_path: {tmp_path}/dest\n"
                       f"      verify_mount: false\n"
                       f"  rsync:\n    flags: \"-avzh\"\n    bandwidth_limit: 300  # KB/s\n"
                       f"state_dir: {tmp_path}/state\n")
    app = DjtuiApp(config=cfg, connect=False)
    async with app.run_test(size=(160, 30)) as pilot:
        queue = app.ctx.job_queue()
        job = queue.submit("sync", SessionKey("p001", parse_date("20250104")), "net")
        verify = queue.submit("verify", job.key, "net")
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, TransfersScreen)
        table = screen.query_one(DataTable)
        for _ in range(100):
            await pilot.pause(0.05)
            if job.state == "running" and job.progress is not None and table.row_count == 2:
                break
        assert job.state == "running", job.message
        table.move_cursor(row=0)
        await pilot.pause(0.4)
        assert "limit 300.0 KB/s" in str(table.get_cell(str(job.id), "Job")), table.get_cell(str(job.id), "Job")
        assert "limit" not in str(table.get_cell(str(verify.id), "Job"))  # a verify is not held back by rsync
        title = str(screen.query_one("#xfer-title", Static).render())
        assert "limit 300.0 KB/s" in title, title
        await queue.wait([job, verify])
        assert job.ok, job.message
