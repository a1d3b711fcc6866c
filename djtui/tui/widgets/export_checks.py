"""The Export screen's restriction checks: each restriction counted on the server before it is a leaf.

At most one check runs on the server at a time (the gate); a newer as-you-type check (or leaving
the screen) stops the one it supersedes there (``LeafCount.cancel`` kills its connection). Every
method but ``Check.counted`` blocks: call them from worker threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from djtui.domain.cascade import Leaf
from djtui.domain.djnames import display_name
from djtui.errors import OperationFailed, UserError


@dataclass(frozen=True)
class Check:
    """What the server said about a restriction: its rows, or why not (``ok`` False)."""

    msg: str
    ok: bool
    rows: int | None = None
    warnings: tuple[str, ...] = ()

    @property
    def warn(self) -> bool:
        return self.ok and (self.rows == 0 or bool(self.warnings))

    @classmethod
    def counted(cls, rows: int, warnings: list[str]) -> Check:
        if warnings:
            msg = (f"⚠ {rows} rows, but the server coerced a value instead of refusing it: "
                   f"{'; '.join(warnings)}. Check the restriction")
        elif rows == 0:
            msg = "⚠ 0 rows match: Enter adds it anyway, and it exports nothing"
        else:
            msg = f"✓ {rows} rows"
        return cls(msg, True, rows, tuple(warnings))


class RestrictionChecks:
    """The checks of one screen: run, supersede, cancel."""

    def __init__(self) -> None:
        self._gate = threading.Lock()
        self._lock = threading.Lock()
        self._typing: Any = None  # the LeafCount of the as-you-type check now running or waiting
        self._running: set[Any] = set()  # every LeafCount running or waiting

    def run(self, db: Any, leaf: Leaf, statement_timeout: float | None, *, typing: bool) -> Check | None:
        """Count the restriction's rows on the server; None: superseded or cancelled.

        A newer check supersedes the as-you-type check before it (``typing``: this one is such a
        check; Enter's check is not, so typing on does not stop it): the older one's query is
        killed on the server, and only one check runs there at a time."""
        from djtui.services.export import CountCancelled, LeafCount

        if db is None:
            return Check("cannot check: not connected to the database", False)
        check = LeafCount(db, leaf, statement_timeout=statement_timeout, label=f"{display_name(leaf.table)}")
        with self._lock:
            old, self._typing = self._typing, (check if typing else None)
            self._running.add(check)
        try:
            if old is not None:
                old.cancel()
            with self._gate:
                n = check.run()
            return Check.counted(n, check.warnings)
        except CountCancelled:
            return None
        except UserError as exc:  # the whole error, for the text typed
            return Check(exc.what + (f" ({exc.hint})" if exc.hint else ""), False)
        except OperationFailed as exc:  # the time limit, and its hint
            return Check(" ".join(line.strip() for line in str(exc).splitlines()), False)
        except Exception as exc:
            return Check(f"cannot check: {exc}", False)
        finally:
            with self._lock:
                self._running.discard(check)
                if self._typing is check:
                    self._typing = None

    def cancel_typing(self) -> None:
        """Stop the as-you-type check (the field was emptied)."""
        with self._lock:
            check, self._typing = self._typing, None
        if check is not None:
            check.cancel()

    def cancel_all(self) -> None:
        """Stop every check (the screen was left)."""
        with self._lock:
            checks, self._typing = list(self._running), None
        for check in checks:
            check.cancel()

    @staticmethod
    def count_loaded(db: Any, leaves: list[Leaf], statement_timeout: float | None) -> dict[Leaf, Check]:
        """Each loaded leaf's own rows (a paper's log, a leaves file), counted one after the other."""
        from djtui.services.export import LeafCount

        checks: dict[Leaf, Check] = {}
        for n, leaf in enumerate(leaves):
            count = LeafCount(db, leaf, n, statement_timeout=statement_timeout)
            try:
                checks[leaf] = Check.counted(count.run(), count.warnings)
            except (UserError, OperationFailed) as exc:
                checks[leaf] = Check(str(exc), False)
        return checks
