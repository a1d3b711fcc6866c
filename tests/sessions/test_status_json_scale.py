"""status-range --json at 50,000 sessions (issue 17): the CLI took 11 s where the statuses took 4.7 s.

Two costs went: every status built an entry per file (parsing every mtime) only to say whether the
session holds special files or links, and the JSON was indented by Python's pure-Python encoder.
What must hold: the same answers, and the same JSON document.
"""

from __future__ import annotations

import io
import json
import os

from djtui.cli import output
from djtui.services import filesystem
from djtui.services.sessions.lazy import ScanListing
from tests.sessions.test_sessions_verify_batch import make_service, make_sessions


def test_special_files_and_links_come_from_the_columns(tmp_path):
    svc = make_service(tmp_path)
    keys = make_sessions(svc, 3, 4)
    odd = svc.source_path(keys[1])
    (odd / "b-link").symlink_to("f0")
    (odd / "a-link").symlink_to("nowhere")
    os.mkfifo(odd / "pipe")
    sts = svc.statuses(keys)
    for st in sts:
        assert isinstance(st.source, ScanListing)
        plain = filesystem.scan(st.source_path)
        assert (st.source.special, st.source.symlinks) == (plain.special, plain.symlinks)
        reasons = st.reasons_unsafe()
        st.to_json()
        assert st.source._plain is None  # nothing built an entry per file
        if st.key == keys[1]:
            assert st.source.symlinks == ("a-link", "b-link") and st.source.special == ("pipe",)
            assert any("symbolic links" in r for r in reasons) and any("special files" in r for r in reasons)
            assert not st.safe
    assert sts[1].source.files == filesystem.scan(sts[1].source_path).files  # built when a caller wants them
    assert (sts[1].source.special, sts[1].source.symlinks) == (("pipe",), ("a-link", "b-link"))


def test_a_list_is_one_json_document_one_element_a_line(monkeypatch):
    data = [{"participant_id": "p1", "name": "caf\u00e9", "odd": "\udcff", "n": 1, "nested": {"a": [1, 2]}},
            {"participant_id": "p2", "when": object.__new__(type("T", (), {"__str__": lambda s: "T!"}))}]
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    output.emit_json(data)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == 4
    back = json.loads(text)
    assert back[0]["name"] == "caf\u00e9" and back[0]["odd"] == "\udcff" and back[1]["when"] == "T!"
    assert back[0]["nested"] == {"a": [1, 2]}
    out.truncate(0)
    out.seek(0)
    output.emit_json([])
    assert json.loads(out.getvalue()) == []
    out.truncate(0)
    out.seek(0)
    output.emit_json({"a": [1]})  # a document that is not a list keeps its indentation
    assert out.getvalue() == '{\n  "a": [\n    1\n  ]\n}\n'
