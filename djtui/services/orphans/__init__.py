"""Orphans: rows, store objects and files nothing refers to, found and cleaned through the quarantine.

One topic per module: ``catalog`` (catalog reads: ``db.backend``, and what it does not cover), ``reads`` (big
streamed reads), ``tables`` (orphan rows via foreign keys), ``external`` (DataJoint 0.14 stores;
``streamed``: its comparison in hash order, in bounded memory),
``store2x`` (DataJoint 2.x stores), ``directories`` (managed and temp directories), ``rows`` (rows
saved whole in a batch before their DELETE, and restored), ``plan`` (plan -> confirmation text),
``acting`` (the clean-up under a lock), ``cleaner`` (DataJoint-Cleaner's TOML), ``service``
(:class:`OrphanService`, the entry point the screen and the CLI share).
May import: ``djtui.domain``, ``djtui.config``, ``djtui.errors``, ``djtui.services.stores`` and the
leaf services (database, audit, locks, commandlog, testhook, spill); never the TUI or the CLI.
"""

from djtui.services.orphans.cleaner import cleaner_service, load_cleaner_runs
from djtui.services.orphans.model import ActionResult, ScanProgress, ScanResult, SourceInfo
from djtui.services.orphans.plan import CONFIRM, CleanupPlan, iec_size
from djtui.services.orphans.service import OrphanService
from djtui.services.stores import ScanCancelled

__all__ = ["CONFIRM", "ActionResult", "CleanupPlan", "OrphanService", "ScanCancelled", "ScanProgress", "ScanResult",
           "SourceInfo", "cleaner_service", "iec_size", "load_cleaner_runs"]
