"""The Sessions screen (placeholder until its issue lands)."""

from djtui.tui.screens.base import PlannedScreen


class SessionsScreen(PlannedScreen):
    SCREEN_TITLE = "Sessions"
    PLANNED = (
        'the status-range table: Date, Participant, Videos, Size, DJ, Backup, Verified, Safe',
        'date-range and text filters, sorting, multi-select, a detail pane',
        'sync (s), verify (v), delete (d) and bulk delete (D) with typed confirmation',
    )
    CLI_HINT = "djtui status-range, djtui sync, djtui verify, djtui delete"
