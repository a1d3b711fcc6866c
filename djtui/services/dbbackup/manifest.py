"""The backup folder's layout: its name, its manifest (what was dumped, with hashes and exact
row counts) and the mark a restore-verification leaves (``verified.json``)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from djtui.errors import UserError

STAMP_FORMAT = "%Y-%m-%d_%H%M%S"
PARTIAL_PREFIX = ".partial-"
MANIFEST = "manifest.json"
VERIFIED = "verified.json"
SERVER_FILE = "_server"


def safe_file(name: str) -> str:
    """A schema name as a file name: anything but letters, digits and ``-_.`` is %-escaped."""
    return "".join(c if c.isalnum() or c in "-_." else f"%{ord(c):02x}" for c in name)


def read_manifest(path: Path) -> dict[str, Any]:
    mf = Path(path) / MANIFEST
    if not mf.is_file():
        raise UserError(f"{path} is not a djtui backup (no {MANIFEST})", where=str(path),
                        hint="pass a folder printed by `djtui dbbackup run` (see `djtui dbbackup list`)")
    try:
        data = json.loads(mf.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{MANIFEST} is not valid JSON: {exc}", where=str(mf)) from None
    if not isinstance(data, dict) or "schemas" not in data:
        raise UserError(f"{MANIFEST} has no schema list", where=str(mf))
    return data


def manifest_files(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(file name, sha256) of every dump the manifest lists, the whole-server file last."""
    files = [(s["file"], s["sha256"]) for s in manifest["schemas"]]
    if manifest.get("server_dump"):
        files.append((manifest["server_dump"]["file"], manifest["server_dump"]["sha256"]))
    return files


def unmark(path: Path) -> None:
    """Forget an earlier verification (the folder no longer matches what was verified)."""
    with contextlib.suppress(FileNotFoundError):
        (Path(path) / VERIFIED).unlink()
