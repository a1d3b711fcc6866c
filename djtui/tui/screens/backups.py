"""The Backups screen (placeholder until its issue lands)."""

from djtui.tui.screens.base import PlannedScreen


class BackupsScreen(PlannedScreen):
    SCREEN_TITLE = "Backups"
    PLANNED = (
        'database dumps with size, age and verified state',
        'run and restore-verify with progress',
    )
    CLI_HINT = "not yet available"
