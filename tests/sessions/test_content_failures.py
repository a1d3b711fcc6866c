"""A content difference found by a checksum verify sticks: no size check can make the session safe again.

A.md #1: a backup file corrupted with its size and mtime kept was found by `verify --checksum`, then a
plain `verify` (or the size verify after `sync`) wrote a fresh record and delete removed the only good copy.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from djtui.cli import main
from djtui.services.sessions import SessionService
from djtui.services.transfers import verify_many


def run(lab, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(lab.config_path), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def flip_byte_keep_stat(path: Path) -> None:
    """Bit rot: one byte changes, size and mtime stay (rsync's quick check and a size verify see nothing)."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def status(lab, capsys) -> dict:
    code, out, err = run(lab, capsys, "status", "p001", "20250104", "--json")
    assert code == 0, err
    return json.loads(out)


def corrupted_session(lab, capsys) -> tuple[Path, Path]:
    src = lab.make_session("p001", "20250104", size=5000)
    lab.import_session("p001", "20250104")
    assert run(lab, capsys, "sync", "p001", "20250104")[0] == 0
    assert status(lab, capsys)["safe"]
    victim = lab.dest_dir("p001", "20250104") / "cam0.mp4"
    flip_byte_keep_stat(victim)
    code, out, _ = run(lab, capsys, "verify", "p001", "20250104", "--checksum")
    assert code == 1 and "content differs: cam0.mp4" in out
    return src, victim


def test_a_size_verify_or_sync_cannot_clear_a_content_failure_and_delete_refuses(lab, capsys):
    src, _victim = corrupted_session(lab, capsys)
    good = (src / "cam0.mp4").read_bytes()

    st = status(lab, capsys)
    dest = st["destinations"][0]
    assert not st["safe"] and not st["verified"] and dest["content_differs"] == ["cam0.mp4"]
    assert "never verified" not in dest["drift"] and "content differed at" in dest["drift"][0]
    assert any("cam0.mp4: content differed at" in r for r in st["reasons_unsafe"])
    code, out, _ = run(lab, capsys, "status", "p001", "20250104")
    assert code == 0 and "never verified" not in out and "✗ no" in out
    assert "verification: ✗ content check failed: cam0.mp4: content differed at" in out

    code, out, _ = run(lab, capsys, "verify", "p001", "20250104")  # size only
    assert code == 1
    assert "cam0.mp4: content differed at" in out and "(checksum verify)" in out
    assert "the size check cannot clear it: re-copy the file and run verify --checksum" in out
    code, out, _ = run(lab, capsys, "verify", "p001", "20250104", "--json")
    data = json.loads(out)["destinations"][0]
    assert not data["ok"] and data["hash_mismatch"] == ["cam0.mp4"] and data["record"] is None
    assert not status(lab, capsys)["safe"]

    code, out, _ = run(lab, capsys, "sync", "p001", "20250104")  # rsync skips it; the size verify after it fails
    assert code == 1 and "VERIFY FAILED" in out and "content differed" in out
    assert not status(lab, capsys)["safe"]

    code, out, _ = run(lab, capsys, "status-range", "--json")
    row = json.loads(out)[0]
    assert not row["safe"] and not row["verified"]
    code, out, _ = run(lab, capsys, "status-range")
    assert "match by size but have no current verification" not in out  # another verify cannot help

    code, out, _ = run(lab, capsys, "delete", "p001", "20250104", "--confirm", "DELETE")
    assert code == 1 and "content differed" in out
    assert (src / "cam0.mp4").read_bytes() == good
    code, out, _ = run(lab, capsys, "bulk-delete", "--confirm", "DELETE ALL")
    assert "0 sessions safe to delete" in out and (src / "cam0.mp4").read_bytes() == good


def test_recopy_and_a_passing_checksum_verify_clear_it(lab, capsys):
    src, victim = corrupted_session(lab, capsys)
    shutil.copy2(src / "cam0.mp4", victim)  # re-copied: same size and mtime as the bad copy had
    code, out, _ = run(lab, capsys, "verify", "p001", "20250104")
    assert code == 1 and "run verify --checksum" in out  # a size check still cannot tell
    code, out, _ = run(lab, capsys, "verify", "p001", "20250104", "--checksum")
    assert code == 0, out
    assert status(lab, capsys)["destinations"][0]["content_differs"] == []
    code, out, _ = run(lab, capsys, "verify", "p001", "20250104")
    assert code == 0, out
    assert status(lab, capsys)["safe"]


def test_a_file_changed_on_either_side_no_longer_counts(lab, capsys):
    _src, victim = corrupted_session(lab, capsys)
    svc = SessionService(lab.config, None)
    key = svc.discover()[0]
    assert len(svc.records.load_mismatches([key], "net")[key]) == 1
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # rewritten since
    assert status(lab, capsys)["destinations"][0]["content_differs"] == []
    code, out, _ = run(lab, capsys, "verify", "p001", "20250104")
    assert code == 0, out
    assert svc.records.load_mismatches([key], "net") == {}  # forgotten, not just ignored
    assert status(lab, capsys)["verified"]


def test_batch_verify_fails_only_the_session_with_a_known_difference(lab, capsys):
    for pid in ("p001", "p002", "p003"):
        lab.make_session(pid, "20250104", size=5000)
        assert run(lab, capsys, "sync", pid, "20250104")[0] == 0
    flip_byte_keep_stat(lab.dest_dir("p002", "20250104") / "cam3.mp4")
    svc = SessionService(lab.config, None)
    keys = svc.discover()
    dest = svc.destinations[0]
    bad = [o.key.participant_id for o in verify_many(svc, keys, dest, checksum=True) if not o.ok]
    assert bad == ["p002"]
    again = SessionService(lab.config, None)  # another process: the difference is in the store
    outs = verify_many(again, keys, dest)
    assert [(o.key.participant_id, o.ok) for o in outs] == [("p001", True), ("p002", False), ("p003", True)]
    assert "cam3.mp4: content differed at" in outs[1].message and outs[1].comparison.hash_mismatch == ("cam3.mp4",)
    assert again.records.load(keys[1], dest.name) is None
    verified = {s.key.participant_id: (s.destinations[0].verified, s.needs_verify) for s in again.statuses(keys)}
    assert verified == {"p001": (True, False), "p002": (False, False), "p003": (True, False)}
