"""Names no other test (or test run) on the shared private server uses."""

from __future__ import annotations

import itertools
import os

_n = itertools.count()


def unique(stem: str) -> str:
    """``stem`` plus this run's pid and a counter: a user, prefix or schema name nobody else took."""
    return f"{stem}{os.getpid() % 100000}x{next(_n)}"
