"""Errors that carry what went wrong, where, and how to fix it.

Every error a user can cause is a ``UserError``: the CLI prints it without a
traceback and exits 2. ``OperationFailed`` is a check or action that ran and
failed (exit 1).
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or configuration: exit code 2, nothing changed."""

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None):
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        parts = []
        if self.where:
            parts.append(f"{self.where}: {self.what}")
        else:
            parts.append(self.what)
        if self.hint:
            parts.append(f"  hint: {self.hint}")
        return "\n".join(parts)


class ConfigError(UserError):
    """A configuration file that cannot be used as written."""


class OperationFailed(Exception):
    """A check or an operation that ran and did not succeed: exit code 1."""

    exit_code = 1


READONLY_RULE = (
    "Read-only (--readonly, or `readonly: true` in the config) means djtui changes nothing in the lab: "
    "no database write, and no file written, moved or deleted in the session data, the backup "
    "destinations, the stores, the quarantine, the database dumps or the export folder. It still writes "
    "its own private state under state_dir (verification records, the hash cache, locks, the command "
    "log), which changes no data: so verifying sessions works (nothing becomes deletable, since delete "
    "is refused), while restore-verifying a dump is refused (it writes verified.json into the dump's "
    "folder). Every write is refused with the same message, and the app does not offer write keys."
)


class ReadOnlyError(UserError):
    """A write was asked for while djtui runs read-only: the one refusal, in the CLI and the app."""

    def __init__(self, action: str):
        super().__init__(
            f"refused: {action} writes, and djtui is running read-only",
            hint="drop --readonly (or set `readonly: false` in the config) to allow writes",
        )
