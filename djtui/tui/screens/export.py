"""The Export screen (placeholder until its issue lands)."""

from djtui.tui.screens.base import PlannedScreen


class ExportScreen(PlannedScreen):
    SCREEN_TITLE = "Export"
    PLANNED = (
        'a table picker, the ancestors/descendants tree, leaves with validated restrictions',
        'per-table counts, the files an export needs, SQL / dump script / docker writers',
    )
    CLI_HINT = "not yet available"
