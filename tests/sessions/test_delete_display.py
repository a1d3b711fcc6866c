"""Delete and the Safe / Backup columns agree with each other (acceptance report A, #2 #3 #4 #12).

Real server, real rsync, real files: excluded files stay and make a delete a success; symlinks and
FIFOs make a session unsafe everywhere, not only inside delete; Backup is ✓ only for a complete copy;
a delete refused at the moment of action leaves a ``refused`` line in the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
import os

from djtui.cli import main
from djtui.domain.sessions import SessionKey
from djtui.services.audit import AuditLog
from djtui.services.database import Database
from djtui.services.locks import exclusive
from djtui.services.sessions import SessionService
from djtui.services.sessions.delete_plan import plan_delete
from djtui.services.sessions.deletion import delete_session, plan_lines

PID, DATE = "p001", "20250104"
KEY = SessionKey(PID, dt.date(2025, 1, 4))


def run(lab, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(lab.config_path), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def service(lab) -> SessionService:
    cfg = lab.config
    return SessionService(cfg, Database.from_config(cfg))


def safe_session(lab, capsys, **extra: bytes):
    """A session imported, synced and verified: safe to delete."""
    src = lab.make_session(PID, DATE, extra=extra)
    lab.import_session(PID, DATE)
    code, out, err = run(lab, capsys, "sync", PID, DATE)
    assert code == 0, out + err
    return src


def audit_entries(lab) -> list[dict]:
    return AuditLog(lab.config.audit_log).entries()


def status_row(lab, capsys) -> dict:
    code, out, err = run(lab, capsys, "status-range", "--json")
    assert code == 0, err
    return {(r["participant_id"], r["session_date"]): r for r in json.loads(out)}[(PID, DATE)]


# -- #2: excluded files are kept, and the delete is a success ------------------------------------

def test_excluded_files_are_kept_and_the_delete_succeeds(lab, capsys):
    src = safe_session(lab, capsys, **{"notes.tmp": b"scratch", "rec.tmp": b"x"})
    assert not (lab.dest_dir(PID, DATE) / "notes.tmp").exists()  # never backed up
    assert status_row(lab, capsys)["safe"]

    code, out, _ = run(lab, capsys, "delete", PID, DATE, "--dry-run")
    assert code == 0, out
    assert "would delete 5 files" in out and "will keep 2 excluded files: notes.tmp, rec.tmp" in out

    st = service(lab).status(KEY)
    plan = "\n".join(plan_lines(st))
    assert "Kept in place (2 files excluded by filters.exclude_patterns" in plan and "notes.tmp, rec.tmp" in plan

    code, out, err = run(lab, capsys, "delete", PID, DATE, "--confirm", "DELETE")
    assert code == 0, out + err
    assert out.startswith("✓ ") and "deleted 5 files" in out, out
    assert "kept 2 excluded files: notes.tmp, rec.tmp" in out and "refused" not in out
    assert sorted(p.name for p in src.iterdir()) == ["notes.tmp", "rec.tmp"]
    assert (lab.dest_dir(PID, DATE) / "cam0.mp4").exists()
    log = audit_entries(lab)
    assert [e["event"] for e in log] == ["intent", "outcome"]
    assert log[0]["details"]["kept_excluded"] == ["notes.tmp", "rec.tmp"]
    assert log[1]["status"] == "ok" and log[1]["details"]["removed_files"] == 5
    assert log[1]["details"]["kept_excluded"] == ["notes.tmp", "rec.tmp"] and log[1]["details"]["left_behind"] == []


def test_a_file_that_appears_during_the_delete_is_still_reported(lab, capsys):
    src = safe_session(lab, capsys, **{"notes.tmp": b"scratch"})

    def sneak() -> None:
        (src / "late.mp4").write_bytes(b"late")

    res = delete_session(service(lab), AuditLog(lab.config.audit_log), KEY, before_unlink=sneak)
    assert not res.ok and res.left_behind == ("late.mp4",) and res.kept_excluded == ("notes.tmp",)
    assert res.message.startswith("partial: deleted 5 files") and "changed during delete, kept: late.mp4" in res.message
    assert sorted(p.name for p in src.iterdir()) == ["late.mp4", "notes.tmp"]
    last = audit_entries(lab)[-1]
    assert last["status"] == "partial" and last["details"]["left_behind"] == ["late.mp4"]
    assert last["details"]["kept_excluded"] == ["notes.tmp"]


# -- #3: symlinks and FIFOs make a session unsafe in every view ---------------------------------

def test_symlink_or_fifo_makes_the_session_unsafe_everywhere(lab, capsys):
    src = safe_session(lab, capsys)
    assert status_row(lab, capsys)["safe"]
    for make, name, reason in ((lambda p: p.symlink_to("/etc/hostname"), "link.mp4", "symbolic links in the session"),
                               (os.mkfifo, "stuck.mp4", "special files in the session (never backed up)")):
        make(src / name)
        row = status_row(lab, capsys)
        assert not row["safe"], row
        assert any(r.startswith(reason) and name in r for r in row["reasons_unsafe"]), row["reasons_unsafe"]
        code, out, _ = run(lab, capsys, "status", PID, DATE)
        assert "Safe to delete: ✗ no" in out and name in out
        code, out, _ = run(lab, capsys, "status-range")
        assert "0 safe to delete" in out
        plan = plan_delete(service(lab), [KEY], bulk=True)
        assert not plan.candidates and len(plan.unsafe) == 1
        code, out, _ = run(lab, capsys, "bulk-delete", "--dry-run")
        assert code == 0 and "0 sessions safe to delete" in out
        code, out, _ = run(lab, capsys, "delete", PID, DATE, "--dry-run")
        assert code == 1 and reason in out
        assert out.count(reason) == 1  # one reason, not the status's and delete's own
        (src / name).unlink()
    assert status_row(lab, capsys)["safe"]


# -- #4: Backup is ✓ only for a complete copy ----------------------------------------------------

def test_backup_is_complete_partial_or_missing(lab, capsys):
    src = lab.make_session(PID, DATE)  # 5 files: cam0..cam3.mp4, meta/info.json
    lab.import_session(PID, DATE)
    dest = lab.dest_dir(PID, DATE)

    row = status_row(lab, capsys)
    assert (row["backup"], row["backup_state"]) == (False, "missing")

    dest.mkdir(parents=True)  # an empty folder (a cancelled sync) is no backup
    row = status_row(lab, capsys)
    assert (row["backup"], row["backup_state"]) == (False, "missing"), row
    assert row["destinations"][0]["backup_files"] == 0
    code, out, _ = run(lab, capsys, "status", PID, DATE)
    assert "✗ no backup" in out

    for name in ("cam0.mp4", "cam1.mp4"):
        (dest / name).write_bytes((src / name).read_bytes())
    row = status_row(lab, capsys)
    assert (row["backup"], row["backup_state"]) == (False, "partial"), row
    d = row["destinations"][0]
    assert (d["backup"], d["backup_state"], d["backup_files"], d["files"]) == (False, "partial", 2, 2)
    assert any("partial backup, 2 of 5 files" in r for r in row["reasons_unsafe"]), row["reasons_unsafe"]
    code, out, _ = run(lab, capsys, "status", PID, DATE)
    assert "⚠ partial: 2 of 5 files" in out, out
    code, out, _ = run(lab, capsys, "status-range")
    line = next(x for x in out.splitlines() if x.startswith(DATE))
    assert line.split()[-4:] == ["✓", "⚠", "✗", "✗"], line
    assert "1 session has a partial backup" in out

    (dest / "cam1.mp4").write_bytes(b"short")  # one present with another size: still partial, 1 of 5
    row = status_row(lab, capsys)
    assert row["backup_state"] == "partial" and row["destinations"][0]["backup_files"] == 1

    code, out, err = run(lab, capsys, "sync", PID, DATE)
    assert code == 0, out + err
    row = status_row(lab, capsys)
    assert (row["backup"], row["backup_state"], row["safe"]) == (True, "complete", True), row
    assert row["destinations"][0]["backup_files"] == 5
    code, out, _ = run(lab, capsys, "status-range")
    line = next(x for x in out.splitlines() if x.startswith(DATE))
    assert line.split()[-4:] == ["✓", "✓", "✓", "✓"], line


# -- #12: refused at the moment of action is audited ------------------------------------------

def test_a_delete_refused_at_the_moment_of_action_is_audited(lab, capsys):
    src = safe_session(lab, capsys)
    svc = service(lab)
    audit = AuditLog(lab.config.audit_log)
    (src / "late_cam9.mp4").write_bytes(b"late")  # after the operator's check and confirmation
    res = delete_session(svc, audit, KEY)
    assert not res.ok and res.message.startswith("refused: ") and src.exists()
    (entry,) = audit_entries(lab)
    assert entry["event"] == "outcome" and entry["status"] == "refused" and entry["action"] == "delete-session"
    assert entry["target"] == f"{PID} {DATE}" and entry["id"] == res.audit_id
    assert entry["actor"]["db_user"] == lab.config.database.user
    assert any("late_cam9.mp4" in r for r in entry["details"]["reasons"]), entry
    assert audit.interrupted() == []  # a refusal is not an interrupted action

    (src / "late_cam9.mp4").unlink()
    with exclusive(lab.config.state_dir, f"source:{svc.source_path(KEY)}", purpose="another operator"):
        res = delete_session(svc, audit, KEY)
    assert not res.ok and "another operator" in res.message
    last = audit_entries(lab)[-1]
    assert last["status"] == "refused" and "another operator" in last["details"]["reasons"][0]

    n = len(audit_entries(lab))
    assert not delete_session(svc, audit, KEY, dry_run=True).audit_id  # a dry run writes nothing
    assert len(audit_entries(lab)) == n
