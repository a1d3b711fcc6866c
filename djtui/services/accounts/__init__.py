"""Users, roles and grants on the live server: read them, plan changes, apply plans.

One topic per module, each building on the one before: ``state`` (what was read), ``read``
(roles, users and their drift; needs an admin's account), ``plan`` (the roles: init, add-module),
``admin`` (users: add, passwords, set-role, lock, drop, fix), ``apply`` (``AccountsService``: runs a
plan under the lock, re-planned at the moment of action, audited, undone on failure). The screen
and the CLI show the same ``Plan`` and apply it. SQL comes from the grant dialect and the
backend (``db.backend``), never written here.

May import: ``djtui.domain``, ``djtui.config``, ``djtui.errors`` and other services; never tui or cli.
"""

from djtui.services.accounts.admin import check_password
from djtui.services.accounts.apply import AccountsService
from djtui.services.accounts.state import AccountState, RoleState, ServerAccounts

__all__ = ["AccountState", "AccountsService", "RoleState", "ServerAccounts", "check_password"]
