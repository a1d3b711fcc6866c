"""AppContext: what the app's screens share, every field declared.

The app makes one at start and fills the database fields as it connects; screens read it through
``DjtuiScreen.ctx``. It holds no Textual object, so screens, widgets and the app can all import it
without importing each other.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from djtui.config import Config
    from djtui.errors import UserError
    from djtui.services.audit import AuditLog
    from djtui.services.database import ConnectionSettings, Database, ServerInfo
    from djtui.services.transfers import JobQueue


@dataclass(slots=True)
class AppContext:
    """Config, read-only switch, audit log, the database and its state, and the session job queue.

    Slotted: setting an attribute it does not declare raises AttributeError at once.
    """

    config: Config
    readonly: bool
    audit: AuditLog
    db_settings: ConnectionSettings | None = None
    db: Database | None = None
    server_info: ServerInfo | None = None
    db_error: UserError | None = None
    connecting: Database | None = None  # the database being connected to, until it answers
    db_wait: float | None = None  # seconds the oldest database call in flight has waited
    db_answering: bool | None = None  # what the last liveness probe found while a call was overdue
    # the app's one session job queue (sync, verify), made on first use so jobs outlive any screen
    jobs: JobQueue | None = None
    # set when a connection attempt ended (connected or failed); cleared while one runs
    connect_ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def wait_db(self) -> Database:
        """The database once connected; the connection's error when it failed."""
        await self.connect_ended.wait()
        if self.db is None:
            from djtui.errors import UserError
            raise self.db_error or UserError("the database is not connected")
        return self.db

    def job_queue(self) -> JobQueue:
        """The session job queue, made on first use with this context's config and database."""
        if self.jobs is None:
            from djtui.services.sessions import SessionService
            from djtui.services.transfers import JobQueue
            self.jobs = JobQueue(SessionService(self.config, self.db))
        elif self.jobs.service.db is None and self.db is not None:
            self.jobs.service.db = self.db  # connected after the first job was queued
        return self.jobs
