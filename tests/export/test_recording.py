"""`djtui.recording.record_export` around real DataJoint 2.x queries, fed back into the cascade."""

from __future__ import annotations

import json
import logging
import warnings

import pytest

from djtui.errors import UserError
from djtui.services.export import plan_export
from djtui.services.export.recording import read_leaves, record_export


@pytest.fixture
def dj_schema(server, schema):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import datajoint as dj
    logging.getLogger("datajoint").setLevel(logging.ERROR)
    s = server.settings
    conn = dj.Connection(s.host, s.user, s.password.reveal(), port=s.port)
    sch = dj.Schema(schema, connection=conn)

    @sch
    class Subject(dj.Manual):
        definition = """
        subject_id : int32
        ---
        name : varchar(20)
        """

    @sch
    class Session(dj.Manual):
        definition = """
        -> Subject
        session : int32
        ---
        note : varchar(20)
        """

    Subject.insert([(i, f"s{i}") for i in range(1, 6)])
    Session.insert([(i, j, "n") for i in range(1, 6) for j in range(1, 4)])
    try:
        yield dj, Subject, Session
    finally:
        conn.close()


def test_record_fetches_and_plan_from_them(dj_schema, db, schema, tmp_path):
    _dj, Subject, Session = dj_schema
    path = tmp_path / "leaves.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with record_export(path) as recorded:
            (Session & "session = 2" & {"subject_id": 3}).to_dicts()
            (Subject * Session & "note = 'n'" & "subject_id = 5" & "session = 1").fetch("KEY")
        Subject().to_dicts()  # outside the block: not recorded
    data = json.loads(path.read_text())
    tables = [lf["table"] for lf in data["leaves"]]
    assert tables[0] == f"{schema}.session" and "session = 2" in data["leaves"][0]["restriction"]
    assert f"{schema}.subject" in tables[1:] and len(recorded) == len(data["leaves"])
    result = plan_export(db, read_leaves(path), [schema])
    assert result.counts == {f"{schema}.session": 2, f"{schema}.subject": 2}


@pytest.mark.parametrize("build, fetched", [
    # a renamed key attribute, restricted by its new name
    (lambda Session: Session.proj("note", sid="subject_id") & "sid = 3", 3),
    # restricted, renamed (not the key), restricted again
    (lambda Session: (Session & "session = 2").proj(nn="note") & "nn = 'n'", 5),
    # two levels of renames
    (lambda Session: (Session.proj(sid="subject_id") & "session = 1").proj(s2="sid") & "s2 > 3", 2),
])
def test_queries_that_rename_keys_are_recorded_exactly(dj_schema, db, schema, tmp_path, build, fetched):
    """A projection that renames puts the table in a subquery: its rows are still recorded, through
    the renames, and the plan holds exactly the fetched sessions (found by acceptance testing)."""
    _dj, _Subject, Session = dj_schema
    path = tmp_path / "leaves.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # exact: no broader fallback
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        with record_export(path):
            rows = build(Session).to_dicts()
    assert len(rows) == fetched
    leaves = read_leaves(path)
    assert [lf.table for lf in leaves] == [f"{schema}.session"]
    result = plan_export(db, leaves, [schema])
    assert result.counts[f"{schema}.session"] == fetched


def test_read_leaves_refuses_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"leaves": [{"table": "a.b", "restriction": "1=1; DROP TABLE b"}]}')
    with pytest.raises(UserError, match="';'"):
        read_leaves(bad)
    bad.write_text("[1, 2")
    with pytest.raises(UserError, match="cannot read"):
        read_leaves(bad)
