"""The keep-daily/weekly/monthly rule, on dates alone."""

from datetime import datetime, timedelta

from djtui.domain.retention import RetentionPolicy, keep_set, prune_set


def _days(n: int, start: datetime = datetime(2026, 3, 31, 2, 0)) -> list[datetime]:
    return [start - timedelta(days=i) for i in range(n)]


def test_daily_only_keeps_newest_n_days():
    stamps = _days(10)
    keep = keep_set(stamps, RetentionPolicy(daily=3, weekly=0, monthly=0))
    assert keep == set(stamps[:3])


def test_two_backups_one_day_counts_once():
    a, b = datetime(2026, 3, 31, 1), datetime(2026, 3, 31, 23)
    keep = keep_set([a, b, datetime(2026, 3, 30, 1)], RetentionPolicy(daily=2, weekly=0, monthly=0))
    assert keep == {b, datetime(2026, 3, 30, 1)}


def test_weekly_and_monthly_keep_newest_of_each_bucket():
    stamps = _days(90)
    keep = keep_set(stamps, RetentionPolicy(daily=7, weekly=4, monthly=3))
    # newest of each month: Mar 31, Feb 28 (2026 not leap), Jan 31 (within 90 days back from Mar 31)
    assert datetime(2026, 2, 28, 2) in keep and datetime(2026, 1, 31, 2) in keep
    # weekly: newest of the 4 most recent ISO weeks; Sundays before the current week
    assert datetime(2026, 3, 29, 2) in keep and datetime(2026, 3, 22, 2) in keep
    assert datetime(2026, 3, 15, 2) in keep
    assert datetime(2026, 3, 8, 2) not in keep  # fifth week
    assert len(keep) == len(set(keep))
    assert datetime(2026, 3, 10, 2) not in keep


def test_prune_is_complement_oldest_first():
    stamps = _days(20)
    pol = RetentionPolicy(daily=5, weekly=2, monthly=1)
    gone = prune_set(stamps, pol)
    assert gone == sorted(gone)
    assert set(gone) | keep_set(stamps, pol) == set(stamps)
    assert not set(gone) & keep_set(stamps, pol)


def test_zero_policy_removes_everything():
    assert len(prune_set(_days(4), RetentionPolicy(0, 0, 0))) == 4
