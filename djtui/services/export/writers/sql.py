"""The SQL writer: ``export.sql``, ``files.tsv`` and ``manifest.json`` (with each table's checksum).

The SQL file is written by djtui itself: ``CREATE DATABASE`` / ``CREATE TABLE`` as the server
shows them, rows as batched INSERTs, tables parents-first, so the ``mariadb``/``mysql`` client
loads it into an empty server with foreign-key checks on. ``manifest.json`` beside it holds
each table's row count and an order-independent content checksum, which ``verify`` recomputes
on the loaded copy (``verify``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from djtui.domain.cascade import split_name
from djtui.services.export.files import NeededFile, needed_files
from djtui.services.export.session import ExportSession

SQL_FILE = "export.sql"
MANIFEST = "manifest.json"
FILES_LIST = "files.tsv"
_MASK = (1 << 64) - 1


# ---------------------------------------------------------------------------
# charset / collation stripping, outside quoted text only

_CHARSET = re.compile(
    r"\s+(?:DEFAULT\s+)?(?:CHARSET|CHARACTER\s+SET)\s*=\s*\w+"
    r"|\s+(?:DEFAULT\s+)?COLLATE\s*=\s*\w+"
    r"|\s+(?:DEFAULT\s+)?(?:CHARACTER\s+SET)\s+\w+"
    r"|\s+(?:DEFAULT\s+)?COLLATE\s+\w+", re.I)
_QUOTED = re.compile(r"('(?:[^'\\]|\\.|'')*'|`(?:[^`]|``)*`|\"(?:[^\"\\]|\\.)*\")", re.S)
# a column whose collation is named without its character set (the table's default): pinned, so the
# column keeps its meaning (``utf8mb4_bin`` keys stay case-sensitive) whatever the target's default is
_BARE_COLLATE = re.compile(
    r"^(?P<head>[ \t]*`(?:[^`]|``)+`[ \t]+\w+(?:\([^)\n]*\))?(?:[ \t]+(?:unsigned|zerofill|binary))*)"
    r"[ \t]+COLLATE[ \t]+(?P<coll>[A-Za-z0-9]+_\w+)", re.I | re.M)


def _outside_quotes(text: str, edit: Callable[[str], str]) -> str:
    parts = _QUOTED.split(text)
    return "".join(p if i % 2 else edit(p) for i, p in enumerate(parts))


def _column_list_end(ddl: str) -> int | None:
    """Index of the parenthesis that closes a CREATE TABLE's column list (None: there is none)."""
    masked = _QUOTED.sub(lambda m: "_" * len(m.group()), ddl)
    depth = 0
    for i, ch in enumerate(masked):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def strip_charset(ddl: str) -> str:
    """Remove the table's (or database's) default ``CHARSET=x``, ``COLLATE=x``, ``CHARACTER SET x``.

    Only the options after the column list: a column's own ``CHARACTER SET`` / ``COLLATE`` changes
    what its values mean (a ``utf8mb4_bin`` key holds both ``a`` and ``A``), so it always stays; one
    that names only a collation gets its character set written out, as the default it relied on is gone.
    Comments and identifiers are left alone (the seed's ``sed`` would edit them too).
    """
    end = _column_list_end(ddl)
    if end is None:  # CREATE DATABASE: all of it is options
        return _outside_quotes(ddl, lambda p: _CHARSET.sub("", p))
    head = _BARE_COLLATE.sub(lambda m: f"{m['head']} CHARACTER SET {m['coll'].split('_', 1)[0]} COLLATE {m['coll']}",
                             ddl[:end + 1])
    return head + _outside_quotes(ddl[end + 1:], lambda p: _CHARSET.sub("", p))


_AUTO_INC = re.compile(r"\s+AUTO_INCREMENT=\d+")


# ---------------------------------------------------------------------------
# checksums


@dataclass
class TableSum:
    """Row count and an order-independent checksum: the sum of xxh3 hashes of each row's SQL literal
    (UTF-8), so ``verify`` can read the loaded copy in any order."""

    rows: int = 0
    checksum: int = 0

    def add(self, rows: list[bytes]) -> None:
        self.rows += len(rows)
        self.checksum = (self.checksum + sum(map(xxhash.xxh3_64_intdigest, rows))) & _MASK


# ---------------------------------------------------------------------------
# the list of stored files the rows reference (every export directory has one)


def write_files_list(session: ExportSession, out_dir: Path, stores: Sequence[Any] = ()) -> dict[str, Any]:
    """``files.tsv``: store, path, size, exists, table and problem of every stored object the exported
    rows reference, checked in the configured stores; returns the manifest's summary of it."""
    found: list[NeededFile] = needed_files(session, stores)
    tmp = out_dir / (FILES_LIST + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(("store", "path", "size", "exists", "table", "problem"))
        for f in found:
            exists = {True: "yes", False: "MISSING", None: "not checked"}[f.exists]
            w.writerow((f.store, f.path, "" if f.size is None else f.size, exists, f.table, f.problem or ""))
    os.replace(tmp, out_dir / FILES_LIST)
    return {"list": FILES_LIST, "count": len(found), "bytes": sum(f.size or 0 for f in found),
            "missing": sum(1 for f in found if f.exists is False),
            "not_checked": sum(1 for f in found if f.exists is None)}


# ---------------------------------------------------------------------------
# the SQL writer


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def write_sql_file(session: ExportSession, out_dir: Path, *, strip: bool, batch_rows: int,
                    progress: Callable[[str, int], None] | None) -> list[dict[str, Any]]:
    """``export.sql`` in ``out_dir``; returns each table's manifest entry (rows, checksum)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SQL_FILE
    tmp = out_dir / (SQL_FILE + ".part")
    tables_meta = []
    with open(tmp, "wb") as fh:
        fh.write(b"-- djtui export\n"
                 b"SET NAMES utf8mb4;\nSET TIME_ZONE = '+00:00';\n"
                 b"SET SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO';\nSET UNIQUE_CHECKS = 0;\n\n")
        created: set[str] = set()
        current_db = None
        for table in session.plan.tables:
            db, name = split_name(table)
            ident = session.db.dialect.ident
            if db not in created:
                ddl = session.show_create_database(db)
                ddl = ddl.replace("CREATE DATABASE ", "CREATE DATABASE IF NOT EXISTS ", 1) \
                    if "IF NOT EXISTS" not in ddl else ddl
                fh.write(_utf8((strip_charset(ddl) if strip else ddl) + ";\n"))
                created.add(db)
            if db != current_db:
                fh.write(_utf8(f"USE {ident(db)};\n"))
                current_db = db
            ddl = _AUTO_INC.sub("", session.show_create_table(table))
            fh.write(_utf8(f"\n-- {table}\n{strip_charset(ddl) if strip else ddl};\n"))
            cols = "(" + ", ".join(ident(c) for c in session.columns(table)) + ")"
            head = _utf8(f"INSERT INTO {ident(name)} {cols} VALUES\n")
            acc = TableSum()
            own_parent = table in session.plan.self_referencing  # its rows come in key order, not parents first
            if own_parent:
                fh.write(b"SET FOREIGN_KEY_CHECKS = 0;\n")
            for rows in session.iter_literal_rows(table, batch_rows):
                acc.add(rows)
                fh.write(head + b",\n".join(rows) + b";\n")
            if own_parent:  # the cascade closed the table under its own key: every parent row is in
                fh.write(b"SET FOREIGN_KEY_CHECKS = 1;\n")
            tables_meta.append({"table": table, "rows": acc.rows, "checksum": f"{acc.checksum:016x}"})
            if progress:
                progress(table, acc.rows)
    os.replace(tmp, path)
    return tables_meta


def write_sql(session: ExportSession, out_dir: Path, *, strip: bool = False, batch_rows: int = 1000,
              progress: Callable[[str, int], None] | None = None, stores: Sequence[Any] = ()) -> dict[str, Any]:
    """Write ``export.sql``, ``files.tsv`` and ``manifest.json``; the session must have run its cascade."""
    started = time.monotonic()
    tables_meta = write_sql_file(session, out_dir, strip=strip, batch_rows=batch_rows, progress=progress)
    manifest = {
        "format": "sql",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "leaves": [{"table": lf.table, "restriction": lf.restriction} for lf in session.leaves],
        "files": [SQL_FILE, FILES_LIST],
        "tables": tables_meta,
        "stored_files": write_files_list(session, out_dir, stores),
        "seconds": round(time.monotonic() - started, 3),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# ---------------------------------------------------------------------------
# verify


