"""djtui: a terminal app and CLI for the people who keep a DataJoint lab healthy."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["record_export"]


def __getattr__(name: str) -> Any:
    # lazy, so `import djtui` (and the app's first frame) never pays for DataJoint
    if name == "record_export":
        from djtui.services.export.recording import record_export
        return record_export
    raise AttributeError(f"module 'djtui' has no attribute {name!r}")
