"""Fixtures of the orphans tests; the lab builders live in ``orphans_lab``."""

from orphans_lab import legacy_lab, table_lab

__all__ = ["legacy_lab", "table_lab"]
