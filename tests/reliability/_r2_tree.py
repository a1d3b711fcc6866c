"""Helpers of the R2 reliability tests: exact snapshots of trees and tables, to prove "nothing changed"."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path


def snapshot(root: str | os.PathLike) -> dict[bytes, tuple]:
    """Every entry under ``root`` (bytes paths, so any name works): kind, mode, size, mtime, content or target."""
    out: dict[bytes, tuple] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in [*dirnames, *filenames]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, base)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
                out[rel] = ("file", st.st_mode, st.st_size, st.st_mtime_ns, digest)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", st.st_mode)
            else:
                out[rel] = ("other", st.st_mode)
    return out


def files_of(root: str | os.PathLike) -> dict[bytes, bytes]:
    """Regular files under ``root`` (relative bytes path -> content); symlinks are not followed."""
    out: dict[bytes, bytes] = {}
    base = os.fsencode(root)
    for dirpath, _dirs, filenames in os.walk(base):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(p).st_mode):
                out[os.path.relpath(p, base)] = Path(os.fsdecode(p)).read_bytes()
    return out


def checksum_schemas(conn, schemas: list[str]) -> dict[str, object]:
    """``CHECKSUM TABLE`` of every table of ``schemas`` plus the table list itself."""
    out: dict[str, object] = {}
    with conn.cursor() as cur:
        for db in schemas:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", (db,))
            tables = [r[0] for r in cur.fetchall()]
            out[db] = tables
            for t in tables:
                cur.execute(f"CHECKSUM TABLE `{db}`.`{t}` EXTENDED")
                out[f"{db}.{t}"] = cur.fetchone()[1]
    return out
