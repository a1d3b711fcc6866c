"""Which dated backups a keep-N-daily / M-weekly / K-monthly policy keeps.

Pure logic so the rule can be unit-tested without files: the newest backup of
each of the N most recent days that have one is kept, likewise the newest of
each of the M most recent ISO weeks and K most recent months. Everything else
may be pruned. Backups that are not complete are never passed in here.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RetentionPolicy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 6


def _newest_per_bucket(stamps: list[datetime], key: Callable[[datetime], Hashable], count: int) -> set[datetime]:
    if count <= 0:
        return set()
    chosen: dict[Hashable, datetime] = {}
    for ts in sorted(stamps, reverse=True):
        bucket = key(ts)
        if bucket not in chosen:
            if len(chosen) >= count:
                break
            chosen[bucket] = ts
    return set(chosen.values())


def keep_set(stamps: Iterable[datetime], policy: RetentionPolicy) -> set[datetime]:
    """The stamps the policy keeps (a subset of ``stamps``)."""
    items = list(stamps)
    keep = _newest_per_bucket(items, lambda t: t.date(), policy.daily)
    keep |= _newest_per_bucket(items, lambda t: tuple(t.isocalendar())[:2], policy.weekly)
    keep |= _newest_per_bucket(items, lambda t: (t.year, t.month), policy.monthly)
    return keep


def prune_set(stamps: Iterable[datetime], policy: RetentionPolicy) -> list[datetime]:
    """The stamps to remove, oldest first."""
    items = list(stamps)
    keep = keep_set(items, policy)
    return sorted(t for t in items if t not in keep)
