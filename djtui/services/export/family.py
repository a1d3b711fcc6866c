"""The export's parts of each server family: the session (``open_session``) a database needs.

MySQL and MariaDB: ``session.ExportSession``; PostgreSQL: ``pgsession.PgExportSession`` (chosen by
``db.backend.name``). The writers and ``verify`` choose by ``session.family`` and the manifest's ``backend``.
"""

from __future__ import annotations

from typing import Any

from djtui.errors import UserError
from djtui.services.export.pgsession import PgExportSession
from djtui.services.export.session import ExportSession

SESSIONS: dict[str, type[ExportSession]] = {cls.family: cls for cls in (ExportSession, PgExportSession)}


def open_session(db: Any, graph: Any, leaves: list, **kwargs: Any) -> ExportSession:
    """The export session of the database's server family (use it as a context manager)."""
    cls = SESSIONS.get(db.backend.name)
    if cls is None:
        raise UserError(f"export does not know the database backend {db.backend.name!r}",
                        hint="use mysql or postgresql")
    return cls(db, graph, leaves, **kwargs)
