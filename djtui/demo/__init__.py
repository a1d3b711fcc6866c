"""The demo lab: a small but realistic lab on a private server, for trying every screen.

It holds what the screens are about, including the traps real labs fall into (``FIELD.md``):
MultiCameraTracking sessions in every import and backup state (``sessions``), Spyglass-shaped schemas
with renamed foreign keys, an export pipeline and a managed analysis directory (``spyglass``), a legacy
0.14 store in two schemas (``legacy``), a DataJoint 2.x store (``dj2``), and the config that points at
all of it (``configfile``). Everything is seeded, so two builds are alike; ``DemoSummary`` says what was
built so tests can compare it with what they find. ``lab.build_lab`` is the entry point.

A tool beside the UI: imports services, domain, config and ``djtui.labschema``; only the CLI, tests and
benchmarks import it.
"""

from djtui.demo.lab import build_lab, is_demo_dir, preverify
from djtui.demo.model import (
    CONFIG_NAME,
    DJ2_STORE,
    LEGACY_STORE,
    MARKER,
    SERVER_DIR,
    DemoSession,
    DemoSummary,
    Schemas,
    db_participant,
)
from djtui.demo.spyglass import EXPORT_TABLES

__all__ = ["CONFIG_NAME", "DJ2_STORE", "EXPORT_TABLES", "LEGACY_STORE", "MARKER", "SERVER_DIR", "DemoSession",
           "DemoSummary", "Schemas", "build_lab", "db_participant", "is_demo_dir", "preverify"]
