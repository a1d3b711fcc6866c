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


FIRST_FRAME_ENV = "DJTUI_TEST_EXIT_AFTER_FIRST_FRAME"


def first_frame_report() -> str | None:
    """Where to write the modules loaded at the app's first frame, then exit (tests only; unset: None).

    The startup test runs the real app with ``$DJTUI_TEST_EXIT_AFTER_FIRST_FRAME=<file>``: right
    after the first frame the app writes the names in ``sys.modules`` to that file, one a line,
    and exits, so the test sees what the first frame paid for.
    """
    return os.environ.get(FIRST_FRAME_ENV) or None


def write_loaded_modules(path: str) -> None:
    import sys
    from pathlib import Path
    Path(path).write_text("\n".join(sorted(sys.modules)) + "\n")
