"""Transfers: the rsync runner (``rsync``), the hash cache (``hashcache``), hashing many files under a
deadline (``hashrun``; the worker process itself is ``djtui.services.hashing``, kept outside so it imports
nothing else), verification (``verify``) and the job queue the screen and CLI share (``jobs``).

May import ``djtui.domain``, ``djtui.config``, ``djtui.errors``, ``djtui.services.sessions`` and the plain
services (filesystem, commandlog, locks); never ``djtui.tui`` or ``djtui.cli``.
"""

from djtui.services.transfers.hashcache import HashCache
from djtui.services.transfers.hashrun import hash_files
from djtui.services.transfers.jobs import Job, JobQueue
from djtui.services.transfers.rsync import Cancelled, RsyncResult, rsync_args, run_rsync, sync_args
from djtui.services.transfers.verify import VerifyOutcome, verify_many, verify_session

__all__ = ["Cancelled", "HashCache", "Job", "JobQueue", "RsyncResult", "VerifyOutcome", "hash_files", "rsync_args",
           "run_rsync", "sync_args", "verify_many", "verify_session"]
