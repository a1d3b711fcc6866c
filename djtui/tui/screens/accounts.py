"""The Accounts screen (placeholder until its issue lands)."""

from djtui.tui.screens.base import PlannedScreen


class AccountsScreen(PlannedScreen):
    SCREEN_TITLE = "Accounts"
    PLANNED = (
        'users with role, host, default role and drift',
        'a grant matrix of users x schema prefixes',
        'add user / add module / reset password, showing the SQL first',
    )
    CLI_HINT = "djtui users list, djtui roles init"
