"""Test-only: a pause between the items of a destructive action, so a fault test can strike mid-way.

The reliability suite kills djtui (SIGKILL) or its database connection (``KILL <id>``) in the
middle of a bulk delete, a quarantine or a role change. A fixed pause between items makes that
deterministic instead of a race. The variable is read here and nowhere else; unset (real use)
this costs one environment lookup per item.
"""

from __future__ import annotations

import os
import time

ENV = "DJTUI_TEST_PAUSE_BETWEEN_ITEMS"


def pause_between_items() -> None:
    """Sleep ``$DJTUI_TEST_PAUSE_BETWEEN_ITEMS`` seconds (tests only; unset means no pause)."""
    value = os.environ.get(ENV)
    if not value:
        return
    try:
        time.sleep(float(value))
    except ValueError:
        return
