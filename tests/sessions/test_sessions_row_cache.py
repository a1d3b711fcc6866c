"""The Sessions screen's rows are made once per status and picked again by each filter (issue 17).

A filter keystroke at 50,000 sessions used to make every row's cells again (0.8 s); ``RowCache`` keeps
them. What must not change with it: which rows a filter shows, their cells, the selection marks (the
table edits its cell dicts in place, so the cache must never hand out its own), and a new status object
(a refreshed row) gets new cells.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from rich.text import Text

from djtui.domain.sessions import DjStatus, Listing, SessionKey, SessionStatus
from djtui.tui.screens import status as st


def _status(pid: str, day: dt.date, imported: bool = True) -> SessionStatus:
    return SessionStatus(SessionKey(pid, day), pid.lstrip("p"), f"/src/{pid}/{day:%Y%m%d}", Listing(True),
                         DjStatus(imported), videos=3)


def _plain(data: dict) -> list[str]:
    return [c.plain if isinstance(c, Text) else str(c) for c in data.values()]


def _view(statuses, selected=frozenset(), needle="", cache=None):
    keys, built = st.build_view(statuses, selected, needle, "Date", False, cache)
    return keys, [_plain(built.data[rk]) for rk in built.rows]


STATUSES = [_status(f"p{i:02d}", dt.date(2025, 1, 1) + dt.timedelta(days=i % 7)) for i in range(30)]


def test_cached_rows_are_the_rows_made_afresh():
    cache = st.RowCache()
    for needle in ("", "p1", "202501", "P2", "0103", "zz"):
        assert _view(STATUSES, needle=needle, cache=cache) == _view(STATUSES, needle=needle), needle


def test_a_filter_matches_the_participant_or_the_date_never_across_both():
    keys, _ = _view(STATUSES, needle="p12")
    assert keys == ["p12|20250106"]
    # "p12" + the start of its date: in neither field, so no row (a joined text would have matched)
    assert _view(STATUSES, needle="p122025")[0] == []
    assert _view(STATUSES, needle="20250106")[0] == [f"p{i:02d}|20250106" for i in range(30) if i % 7 == 5]


def test_the_second_build_makes_no_cells(monkeypatch):
    cache = st.RowCache()
    _view(STATUSES, cache=cache)
    made = []
    real = st.row_cells
    monkeypatch.setattr(st, "row_cells", lambda s: made.append(s) or real(s))
    _view(STATUSES, needle="p1", cache=cache)
    _view(STATUSES, cache=cache)
    assert made == []
    fresh = replace(STATUSES[3], dj=DjStatus(False))  # a refreshed row: a new status object
    keys, rows = _view([*STATUSES[:3], fresh, *STATUSES[4:]], cache=cache)
    assert made == [fresh]
    by_key = dict(zip(keys, rows, strict=True))
    assert by_key["p03|20250104"][5] == "✗" and by_key["p02|20250103"][5] == "✓"


def test_selection_marks_never_stick_to_the_cache():
    cache = st.RowCache()
    key = "p05|20250106"
    _, built = st.build_view(STATUSES, frozenset({key}), "", "Date", False, cache)
    selected_row = built.data[next(rk for rk in built.rows if rk.value == key)]
    assert _plain(selected_row)[0] == "●"
    selected_row[st.COLUMN_KEYS[3]] = "edited in place"  # what DataTable.update_cell does to its dicts
    keys, rows = _view(STATUSES, cache=cache)
    again = rows[keys.index(key)]
    assert again[0] == " " and again[3] == "3"


def test_column_widths_cover_every_shown_cell():
    wide = _status("p" + "x" * 40, dt.date(2025, 2, 1))
    cache = st.RowCache()
    _, built = st.build_view([*STATUSES, wide], frozenset(), "", "Date", False, cache)
    assert built.widths[2] == 41
    _, built = st.build_view([*STATUSES, wide], frozenset(), "p0", "Date", False, cache)
    assert built.widths[2] == len("Participant")  # the filtered rows' widest, not the cache's


def test_a_superseded_build_stops_and_returns_nothing():
    many = [_status(f"p{i:05d}", dt.date(2025, 1, 1) + dt.timedelta(days=i % 300)) for i in range(10_000)]
    asked = []

    def wanted() -> bool:
        asked.append(1)
        return len(asked) < 2  # superseded after the first few thousand rows

    assert st.build_view(many, frozenset(), "", "Date", False, st.RowCache(), wanted) is None
    assert len(asked) == 2
    keys, built = st.build_view(many, frozenset(), "", "Date", False, st.RowCache(), lambda: True)
    assert len(keys) == len(built.rows) == 10_000
