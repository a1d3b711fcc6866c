"""Pure rules: ids, dates, templates, the rsync parser, the verification record."""

from __future__ import annotations

import datetime as dt

import pytest

from djtui.domain.rsync import parse_itemize, parse_progress, split_records
from djtui.domain.sessions import (
    FileEntry,
    Listing,
    SessionKey,
    VerifyRecord,
    compare_sizes,
    excluded,
    normalize_participant,
    parse_date,
    record_drift,
    render_path,
    template_regex,
    validate_participant,
)
from djtui.errors import UserError


@pytest.mark.parametrize("bad", ["..", "a/b", "../p1", "p1/..", "", "a\\b", "p\n1", "x" * 51, "a..b"])
def test_bad_participant_ids_are_refused(bad):
    with pytest.raises(UserError):
        validate_participant(bad)


@pytest.mark.parametrize("bad", ["20250230", "2025", "20251301", "2025-1-1", "abcdefgh", "../20250101"])
def test_impossible_dates_are_refused(bad):
    with pytest.raises(UserError):
        parse_date(bad)


def test_dates_and_normalization():
    assert parse_date("20240229") == dt.date(2024, 2, 29)
    assert parse_date("2025-01-04") == dt.date(2025, 1, 4)
    assert normalize_participant("p123", ("p", "t"), True) == "123"
    assert normalize_participant("pilot", ("p", "t"), True) == "pilot"
    assert normalize_participant("pilot", ("p", "t"), False) == "ilot"
    assert normalize_participant("TR12", ("TR",), True) == "12"


def test_templates_round_trip_inverted_layouts():
    key = SessionKey("p001", dt.date(2025, 1, 4))
    assert render_path("{session_date}/{participant_id}", key) == "20250104/p001"
    m = template_regex("{session_date}/{participant_id}").match("20250104/p001")
    assert m and m["participant_id"] == "p001" and m["session_date"] == "20250104"
    assert template_regex("{participant_id}_{session_date}").match("p001_20250104")["participant_id"] == "p001"


def test_exclude_patterns_match_names_and_paths():
    assert excluded("a/b/x.tmp", ["*.tmp"])
    assert not excluded("a/b/x.mp4", ["*.tmp"])
    assert excluded("meta/info.json", ["meta/*"])


def test_progress2_and_itemize_lines():
    raw = ">f+++++++++ x.bin\n\r      32768   1%    0.00kB/s    0:00:00  \r    3000000  99%  707.44MB/s    0:00:00 " \
          "(xfr#1, to-chk=2/4)\ncd+++++++++ sub/\r  12 0% 1.00kB/s ??:??:?? (xfr#0, ir-chk=10/20)\rpart"
    records, tail = split_records(raw)
    assert tail == "part"
    assert parse_itemize(records[0]).name == "x.bin" and parse_itemize(records[0]).is_file_transfer
    p = parse_progress(records[2])
    assert p.bytes == 3000000 and p.percent == 99 and p.rate == pytest.approx(707.44e6)
    assert p.transferred_files == 1 and p.remaining == 2 and p.total == 4 and p.total_final
    assert parse_itemize(records[3]).is_dir
    q = parse_progress(records[4])
    assert q.eta_seconds is None and not q.total_final
    assert parse_itemize(r">f+++++++++ bad\#012name").name == "bad\nname"
    assert parse_progress("sending incremental file list") is None


def test_compare_and_record_drift():
    src = Listing(True, (FileEntry("a", 1, 10), FileEntry("b", 2, 20)))
    dst = Listing(True, (FileEntry("a", 1, 99), FileEntry("b", 3, 20), FileEntry("c", 1, 1)))
    c = compare_sizes(src, dst)
    assert not c.ok and c.size_mismatch == ("b",) and c.extra == ("c",)
    assert compare_sizes(src, Listing(True, src.files)).ok
    rec = VerifyRecord("p1", "20250104", "net", 100.0, "size", {"a": (1, 10, None), "b": (2, 20, None)})
    assert record_drift(VerifyRecord.from_json(rec.to_json()), src) == []
    newer = Listing(True, (FileEntry("a", 1, 11), FileEntry("b", 2, 20), FileEntry("n", 5, 5)))
    drift = record_drift(rec, newer)
    assert any("a: modified" in d for d in drift) and any("n: appeared" in d for d in drift)
    assert record_drift(None, src) == ["never verified"]
