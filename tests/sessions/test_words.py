"""Issue 16: what the sessions commands say after a dry run, a delete and a bulk delete is plain and exact."""

from __future__ import annotations

from djtui.cli import main


def run(lab, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(lab.config_path), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_delete_status_and_bulk_say_what_happened(lab, capsys):
    lab.make_session("p001", "20250104")
    lab.import_session("p001", "20250104")
    lab.make_session("p002", "20250104")  # not imported: kept by a bulk delete
    code, out, err = run(lab, capsys, "sync", "p001", "20250104", "--dry-run")
    assert code == 0 and "dry run: would transfer 5 files" in out and "files transferred" not in out, out + err
    assert run(lab, capsys, "sync", "p001", "20250104")[0] == 0
    code, out, _ = run(lab, capsys, "bulk-delete", "--dry-run")
    assert "1 session safe to delete" in out and "1 not safe (kept)" in out
    assert "20250104  p002: not imported into DataJoint" in out  # the kept session is named, with its reason
    assert "would delete 5 files (3.9 KB)" in out  # the same units as the tables
    code, out, _ = run(lab, capsys, "delete", "p001", "20250104", "--confirm", "DELETE")
    assert code == 0 and "deleted 5 files (3.9 KB)" in out, out
    code, out, _ = run(lab, capsys, "status", "p001", "20250104")
    assert "the local copy was deleted after verification" in out and "gone since verification" not in out, out


def test_delete_json_carries_the_plan_it_ran(lab, capsys):
    import json

    lab.make_session("p001", "20250104", extra={"notes.tmp": b"x"})
    lab.import_session("p001", "20250104")
    assert run(lab, capsys, "sync", "p001", "20250104")[0] == 0
    code, out, _ = run(lab, capsys, "delete", "p001", "20250104", "--dry-run", "--json")
    data = json.loads(out)
    assert code == 0 and data["dry_run"] and data["plan"]["confirm"] == "DELETE"
    (planned,) = data["plan"]["sessions"]
    assert planned["files"] == 5 and planned["kept_excluded"] == ["notes.tmp"] and len(planned["preserved"]) == 1
    code, out, _ = run(lab, capsys, "bulk-delete", "--dry-run", "--json")
    data = json.loads(out)
    assert data["plan"]["confirm"] == "DELETE ALL"
    assert [s["participant_id"] for s in data["plan"]["sessions"]] == ["p001"]
