"""Sessions: which exist (``discovery``), whether DataJoint holds them (``imported``), how each destination
compares (``service``), the verify records (``records``), and deleting a local copy (``deletion``, with
the plan -> confirmation -> execute workflow in ``delete_plan``).

May import ``djtui.domain``, ``djtui.config``, ``djtui.errors`` and the plain services (database,
filesystem, audit, locks, testhook); never ``djtui.tui``, ``djtui.cli`` or ``djtui.services.transfers``.
"""

from djtui.services.sessions.discovery import Discovery
from djtui.services.sessions.records import VerifyStore
from djtui.services.sessions.service import SessionService, keys_for_batch

__all__ = ["Discovery", "SessionService", "VerifyStore", "keys_for_batch"]
