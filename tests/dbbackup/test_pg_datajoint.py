"""DataJoint 2.3 on PostgreSQL asks the same question as djtui's restore: a pipeline DataJoint declared and
filled (an enum, json, a blob, a foreign key, DataJoint's ``~lineage``) is backed up, verified, partly deleted
with DataJoint, restored by djtui, and DataJoint reads back exactly what it read before the deletion.
DataJoint runs in a child process (its config is global), with the password in the child's environment only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from djtui.services import dbbackup
from djtui.services.audit import AuditLog

pytest.importorskip("datajoint")

SCRIPT = textwrap.dedent("""
    import json, sys
    import datajoint as dj
    dj.config["database.use_tls"] = False
    action, name = sys.argv[1], sys.argv[2]
    schema = dj.Schema(name, create_tables=action == "declare")

    @schema
    class Subject(dj.Manual):
        definition = '''
        subject_id: int32
        ---
        sex: enum('M', 'F', 'U')
        info = null : json
        trace = null : <blob>
        '''

    @schema
    class Session(dj.Manual):
        definition = '''
        -> Subject
        session_id: int16
        ---
        note = '' : varchar(64)
        '''

    if action == "declare":
        Subject.insert([dict(subject_id=i, sex="MFU"[i % 3], info={"n": i}, trace=[1.5, 2.5, i])
                        for i in range(20)])
        Session.insert([dict(subject_id=i, session_id=s, note=f"s{i}.{s}") for i in range(20) for s in (1, 2)])
    elif action == "delete":
        (Session & "subject_id > 9").delete_quick()
        (Subject & "subject_id > 9").delete_quick()
    subjects = [dict(r, trace=[float(v) for v in r["trace"]]) for r in Subject.to_dicts(order_by="subject_id")]
    print(json.dumps({"subjects": subjects, "sessions": Session.to_dicts(order_by=["subject_id", "session_id"])}))
""")


def _dj(lab, action: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "PG"))}
    env.update(DJ_HOST="127.0.0.1", DJ_PORT=str(lab.server.port), DJ_USER="djadmin",
               DJ_PASS=lab.server.password.reveal(), DJ_BACKEND="postgresql", DJ_DATABASE_NAME=lab.server.dbname)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, action, f"{lab.schema}_dj"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("db_server", ["postgresql"], indirect=True)
def test_datajoint_reads_back_what_it_wrote_after_a_restore(lab, tmp_path):
    before = _dj(lab, "declare")
    assert len(before["subjects"]) == 20 and len(before["sessions"]) == 40
    name = f"{lab.schema}_dj"
    res = dbbackup.run_backup(lab.db, tmp_path / "b", schemas=[name], full_server=True)
    tables = res.manifest["schemas"][0]["tables"]
    assert tables["subject"] == 20 and tables["session"] == 40 and "~lineage" in tables
    v = dbbackup.verify_backup(res.path, scratch_dir=tmp_path / "scratch")
    assert v.ok, v.problems

    after_delete = _dj(lab, "delete")
    assert len(after_delete["subjects"]) == 10 and len(after_delete["sessions"]) == 20
    plan = dbbackup.plan_restore(lab.db, res.path)
    assert plan.confirm_word == "OVERWRITE 1 SCHEMA"
    r = dbbackup.restore_backup(lab.db, plan, tmp_path / "state", AuditLog(tmp_path / "a.jsonl"),
                                safety_dir=tmp_path / "b" / "pre-restore")
    assert r.ok, r.problems
    assert _dj(lab, "read") == before
    renamed = dbbackup.plan_restore(lab.db, res.path, prefix="old_")
    assert f"NOTE ~lineage: DataJoint 2.x's lineage rows are data and keep naming {name}" in "\n".join(renamed.lines())
