"""The Transfers screen (placeholder until its issue lands)."""

from djtui.tui.screens.base import PlannedScreen


class TransfersScreen(PlannedScreen):
    SCREEN_TITLE = "Transfers"
    PLANNED = (
        'the queue of sync and verify jobs with live progress (bytes, files, rate, ETA)',
        "a rate sparkline, cancel, and each job's final result",
    )
    CLI_HINT = "djtui sync / djtui batch"
