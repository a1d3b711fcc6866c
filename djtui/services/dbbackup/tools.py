"""The programs a backup runs and the file helpers every step shares.

The dump and client programs and the credentials options file come from the database's
backend (``db.backend.dump_tools()``, ``credentials_file``, ``tool_argv``); this module adds
the compressor and runs ``a | b > file`` without a shell, with stderr masked.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog
from djtui.services.backends import Backend

Progress = Callable[[str], None]


def quiet(_msg: str) -> None:
    pass


@dataclass(frozen=True)
class Tools:
    dump: str
    client: str
    compressor: list[str]  # compress stdin to stdout
    decompressor: list[str]  # decompress stdin to stdout
    suffix: str  # ".sql.zst" | ".sql.gz"


def tools_for(backend: Backend, prefer_zstd: bool = True) -> Tools:
    """The backend's dump/client programs and a compressor (zstd, else gzip)."""
    found = backend.dump_tools()
    zstd = shutil.which("zstd") if prefer_zstd else None
    if zstd:
        return Tools(found.dump, found.client, [zstd, "-q", "-1", "-T1", "-c"], [zstd, "-q", "-d", "-c"], ".sql.zst")
    gzip = shutil.which("gzip")
    if not gzip:
        raise UserError("neither zstd nor gzip is installed", hint="apt-get install zstd")
    return Tools(found.dump, found.client, [gzip, "-c", "-6"], [gzip, "-d", "-c"], ".sql.gz")


def decompressor_for(path: Path) -> list[str]:
    if path.name.endswith(".zst"):
        exe = shutil.which("zstd")
        if not exe:
            raise UserError(f"{path.name} is zstd-compressed and zstd is not installed", hint="apt-get install zstd")
        return [exe, "-q", "-d", "-c"]
    exe = shutil.which("gzip")
    if not exe:
        raise UserError("gzip is not installed")
    return [exe, "-d", "-c"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pipe_to_file(first: list[str], second: list[str], out: Path, stdin_path: Path | None = None) -> None:
    """Run ``first | second > out`` without a shell; raise OperationFailed with masked stderr."""
    commandlog.record("exec", [*first, "|", *second])
    with contextlib.ExitStack() as stack:
        fout = stack.enter_context(open(out, "wb"))
        err1 = stack.enter_context(tempfile.TemporaryFile())
        err2 = stack.enter_context(tempfile.TemporaryFile())
        fin: Any = stack.enter_context(open(stdin_path, "rb")) if stdin_path else subprocess.DEVNULL
        p1 = subprocess.Popen(first, stdin=fin, stdout=subprocess.PIPE, stderr=err1)
        p2 = subprocess.Popen(second, stdin=p1.stdout, stdout=fout, stderr=err2)
        assert p1.stdout is not None
        p1.stdout.close()
        rc2 = p2.wait()
        rc1 = p1.wait()
        if rc1 or rc2:
            err1.seek(0)
            err2.seek(0)
            msg = (err1.read().decode(errors="replace") + err2.read().decode(errors="replace")).strip()
            failed = Path(first[0] if rc1 else second[0]).name
            raise OperationFailed(commandlog.mask(f"{failed} failed (exit {rc1 or rc2}): "
                                                  f"{msg[-800:] or 'no message'}"))


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def table_counts(db: Any, schema: str) -> dict[str, int]:
    """Exact row counts of the schema's base tables (COUNT(*), not the catalog's estimates)."""
    out: dict[str, int] = {}
    for _schema, name in db.backend.tables([schema]):
        out[name] = int(db.query(f"SELECT COUNT(*) FROM {db.dialect.table(schema, name)}")[0][0])
    return out


@functools.lru_cache(maxsize=16)
def tool_version(tool: str) -> str:
    """``tool --version``'s first line (the manifest records which programs wrote the backup)."""
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.strip().splitlines() or ["?"])[0]
