"""The CLI as an operator uses it: real server, real rsync, real files."""

from __future__ import annotations

import json
import os
import time

from djtui import labschema
from djtui.cli import main


def run(lab, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(lab.config_path), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def status_json(lab, capsys, *extra: str) -> dict:
    code, out, err = run(lab, capsys, "status-range", "--json", *extra)
    assert code == 0, err
    return {(r["participant_id"], r["session_date"]): r for r in json.loads(out)}


def test_status_range_shows_the_mix_of_states(lab, capsys):
    lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    lab.make_session("p002", "20250105")
    lab.import_session("p002", "20250105", labschema.ImportPlan(videos=False))
    lab.make_session("p003", "20250106")
    lab.make_session("x999", "20250106")  # filtered by participant_prefixes
    rows = status_json(lab, capsys)
    assert set(rows) == {("p001", "20250104"), ("p002", "20250105"), ("p003", "20250106")}
    assert rows[("p001", "20250104")]["dj"] is True
    assert rows[("p002", "20250105")]["dj"] is False
    assert rows[("p002", "20250105")]["dj_missing"] == ["SingleCameraVideo"]
    assert "Subject" in rows[("p003", "20250106")]["dj_missing"]
    assert rows[("p001", "20250104")]["videos"] == 4
    assert rows[("p001", "20250104")]["bytes"] == 4000 + len('{"n": 4}')
    assert not any(r["backup"] for r in rows.values())
    code, out, _ = run(lab, capsys, "status-range", "--start-date", "20250105", "--end-date", "20250105")
    assert code == 0
    assert "p002" in out and "p001" not in out and "Verified" in out


def test_sync_makes_verified_and_safe_then_delete_removes_exactly_it(lab, capsys):
    src = lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    other = lab.make_session("p001", "20250105")
    # partly copied already
    d = lab.dest_dir("p001", "20250104")
    d.mkdir(parents=True)
    (d / "cam0.mp4").write_bytes((src / "cam0.mp4").read_bytes())
    code, out, err = run(lab, capsys, "sync", "p001", "20250104")
    assert code == 0, out + err
    assert "verified" in out
    assert sorted(p.name for p in d.iterdir()) == ["cam0.mp4", "cam1.mp4", "cam2.mp4", "cam3.mp4", "meta"]
    row = status_json(lab, capsys)[("p001", "20250104")]
    assert row["backup"] and row["verified"] and row["safe"], row
    code, out, _ = run(lab, capsys, "delete", "p001", "20250104", "--dry-run")
    assert code == 0 and "would delete 5 files" in out and src.exists()
    code, out, err = run(lab, capsys, "delete", "p001", "20250104")  # no tty, no --confirm
    assert code == 2 and src.exists()
    code, out, err = run(lab, capsys, "delete", "p001", "20250104", "--confirm", "delete")
    assert code == 2 and src.exists()
    code, out, err = run(lab, capsys, "delete", "p001", "20250104", "--confirm", "DELETE")
    assert code == 0, out + err
    assert not src.exists()
    assert other.exists() and len(list(other.iterdir())) == 5
    assert (d / "cam1.mp4").exists()
    log = [json.loads(line) for line in lab.config.audit_log.read_text().splitlines()]
    assert [e["event"] for e in log] == ["intent", "outcome"]
    assert log[0]["target"] == "p001 20250104" and log[0]["details"]["files"] == 5
    assert log[1]["status"] == "ok" and log[1]["details"]["removed_files"] == 5


def test_delete_refuses_unverified_and_file_added_after_verification(lab, capsys):
    src = lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    code, out, _ = run(lab, capsys, "delete", "p001", "20250104", "--confirm", "DELETE")
    assert code == 1 and "no backup" in out and src.exists()
    assert run(lab, capsys, "sync", "p001", "20250104")[0] == 0
    time.sleep(0.01)
    (src / "late.mp4").write_bytes(b"written after the backup")
    code, out, _ = run(lab, capsys, "delete", "p001", "20250104", "--confirm", "DELETE")
    assert code == 1 and src.exists() and (src / "late.mp4").exists()
    assert "late.mp4" in out
    # a file rewritten with the same size after verification also refuses
    assert run(lab, capsys, "sync", "p001", "20250104")[0] == 0
    os.utime(src / "cam1.mp4", ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    code, out, _ = run(lab, capsys, "delete", "p001", "20250104", "--confirm", "DELETE")
    assert code == 1 and "cam1.mp4" in out and (src / "cam1.mp4").exists()
    assert not lab.config.audit_log.exists()


def test_bad_input_exits_2(lab, capsys):
    for argv in (["status", "..", "20250104"], ["status", "p/1", "20250104"], ["status", "p001", "20250230"],
                 ["verify", "p001", "2025"], ["status-range", "--start-date", "20250201", "--end-date", "20250101"],
                 ["batch", "20251301"], ["sync", "p001", "20250104", "--dest", "nowhere"]):
        code, _out, err = run(lab, capsys, *argv)
        assert code == 2, (argv, err)
        assert "error" in err


def test_batch_syncs_range_skips_verified_and_fails_on_rsync_error(lab, capsys):
    for pid in ("p001", "p002"):
        lab.make_session(pid, "20250104")
        lab.import_session(pid, "20250104")
    lab.import_session("p777", "20250104")  # in the database, never on local disk
    code, out, err = run(lab, capsys, "batch", "20250104")
    assert code == 0, out + err
    assert "2 succeeded, 0 failed" in out and "skip 777 20250104" in out
    code, out, _ = run(lab, capsys, "batch", "20250101", "20250110")
    assert code == 0 and "already backed up and verified" in out and "0 succeeded" in out
    # a destination rsync cannot write to: a failure, never reported as success (the shell tool's pipefail bug)
    lab.make_session("p003", "20250106")
    blocker = lab.dest_dir("p003", "20250106")
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the session folder should go")
    code, out, _ = run(lab, capsys, "batch", "20250106", "--json")
    data = json.loads(out)
    assert code == 1 and data["failed"] == 1 and data["succeeded"] == 0
    assert "rsync failed" in data["jobs"][0]["message"]


def test_verify_checksum_finds_same_size_corruption_and_uses_cache(lab, capsys):
    src = lab.make_session("p001", "20250104", size=200_000)
    lab.import_session("p001", "20250104")
    assert run(lab, capsys, "sync", "p001", "20250104")[0] == 0
    code, out, _ = run(lab, capsys, "verify", "p001", "20250104", "--checksum", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["destinations"][0]["hashed_now"] == 10
    code, out, _ = run(lab, capsys, "verify", "p001", "20250104", "--checksum", "--json")
    assert json.loads(out)["destinations"][0]["hashed_now"] == 0  # all from the cache
    target = lab.dest_dir("p001", "20250104") / "cam2.mp4"
    data_bytes = bytearray(target.read_bytes())
    data_bytes[100] ^= 0xFF
    target.write_bytes(bytes(data_bytes))
    code, out, _ = run(lab, capsys, "verify", "p001", "20250104")
    assert code == 0  # sizes still equal
    code, out, _ = run(lab, capsys, "verify", "p001", "20250104", "--checksum")
    assert code == 1 and "content differs: cam2.mp4" in out
    assert not status_json(lab, capsys)[("p001", "20250104")]["verified"]
    assert src.exists()


def test_readonly_refuses_writes(lab, capsys):
    lab.make_session("p001", "20250104")
    code = main(["--config", str(lab.config_path), "--readonly", "sync", "p001", "20250104"])
    _out, err = capsys.readouterr()
    assert code == 2 and "read-only" in err
    assert not lab.dest_dir("p001", "20250104").exists()
    code = main(["--config", str(lab.config_path), "--readonly", "delete", "p001", "20250104", "--confirm", "DELETE"])
    assert code == 2 and (lab.source / "p001" / "20250104").exists()


def test_unreachable_database_still_lists_disks(lab, capsys):
    lab.make_session("p001", "20250104")
    lab.config_path.write_text(lab.config_path.read_text().replace(f"port: {lab.server.port}", "port: 1"))
    code, out, err = run(lab, capsys, "status-range")
    assert code == 0 and "p001" in out and "DJ column unknown" in err and "unreachable" in err
