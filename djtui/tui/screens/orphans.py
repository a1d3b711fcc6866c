"""The Orphans screen (placeholder until its issue lands)."""

from djtui.tui.screens.base import PlannedScreen


class OrphansScreen(PlannedScreen):
    SCREEN_TITLE = "Orphans"
    PLANNED = (
        'orphan rows, orphan external-store objects (0.14 and 2.x stores) and untracked files, per source',
        'quarantine with typed confirmation, restore and purge',
    )
    CLI_HINT = "not yet available"
