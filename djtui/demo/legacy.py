"""The legacy (DataJoint 0.14) ``~external_<store>`` store in demo_analysis and demo_analysis_v2 (the
prefix trap), with orphans of every kind: unused rows, untracked, missing and zero-byte objects."""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from pathlib import Path

from djtui.demo.model import DAY, LEGACY_STORE, Noise, Schemas, write_file
from djtui.domain.dialects import MYSQL


def _legacy_ddl(db: str) -> list[str]:
    d, ext = MYSQL.ident(db), MYSQL.ident(f"~external_{LEGACY_STORE}")
    return [
        f"CREATE DATABASE IF NOT EXISTS {d}",
        f"""CREATE TABLE {d}.{ext} (
            hash BINARY(16) NOT NULL COMMENT ':uuid:hash of contents (blob), of filename + contents (attach), or relative filepath',
            size BIGINT UNSIGNED NOT NULL COMMENT 'size of object in bytes',
            attachment_name VARCHAR(255) NULL COMMENT 'the filename of an attachment',
            filepath VARCHAR(1000) NULL COMMENT 'relative filepath or attachment filename',
            contents_hash BINARY(16) NULL COMMENT ':uuid:used for the filepath datatype',
            timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP COMMENT 'automatic timestamp',
            PRIMARY KEY (hash)) ENGINE=InnoDB COMMENT 'external storage tracking'""",  # noqa: E501
        f"""CREATE TABLE {d}.`analysis_result` (
            result_id INT NOT NULL, result_blob BINARY(16) NOT NULL COMMENT ':blob@{LEGACY_STORE}:',
            PRIMARY KEY (result_id),
            FOREIGN KEY (result_blob) REFERENCES {d}.{ext} (hash) ON UPDATE RESTRICT ON DELETE RESTRICT
            ) ENGINE=InnoDB""",
        f"""CREATE TABLE {d}.`analysis_report` (
            result_id INT NOT NULL, report BINARY(16) NULL COMMENT ':attach@{LEGACY_STORE}:',
            PRIMARY KEY (result_id),
            FOREIGN KEY (result_id) REFERENCES {d}.`analysis_result` (result_id) ON UPDATE CASCADE ON DELETE RESTRICT,
            FOREIGN KEY (report) REFERENCES {d}.{ext} (hash) ON UPDATE RESTRICT ON DELETE RESTRICT
            ) ENGINE=InnoDB""",
    ]


def legacy_object_path(location: Path, schema: str, hash_hex: str, attachment_name: str | None = None) -> Path:
    """Where DataJoint 0.14 keeps a blob (or attachment) of ``schema`` in a file store."""
    h = hash_hex.replace("-", "")
    name = h + (f".{attachment_name}" if attachment_name else "")
    return location / schema / h[0:2] / h[2:4] / name


# per schema: (results, reports, unused blob rows, unused attach rows, untracked objects, missing, zero-byte)
_LEGACY_PLAN = {"demo_analysis": (20, 8, 3, 1, 5, 1, 1), "demo_analysis_v2": (10, 4, 2, 0, 2, 1, 0)}


def build_legacy_store(cur, base: Path, sch: Schemas, rng: random.Random, noise: Noise) -> dict[str, dict[str, int]]:
    location = base / "stores" / LEGACY_STORE
    old = time.time() - 3 * DAY
    out: dict[str, dict[str, int]] = {}
    for short, (n_res, n_rep, n_unused_b, n_unused_a, n_untracked, n_missing, n_zero) in _LEGACY_PLAN.items():
        db = getattr(sch, short)
        ext = MYSQL.table(db, f"~external_{LEGACY_STORE}")
        for stmt in _legacy_ddl(db):
            cur.execute(stmt)
        ext_rows: list[tuple] = []
        objects: list[tuple[Path, bytes]] = []

        def new_object(kind: str, i: int, *, _db: str = db) -> tuple[bytes, int, str | None, Path, bytes]:
            data = noise.take(rng.randint(200, 40_000))
            name = f"report_{i:03d}.pdf" if kind == "attach" else None
            h = uuid.UUID(hashlib.md5((name or "").encode() + data).hexdigest())
            return h.bytes, len(data), name, legacy_object_path(location, _db, h.hex, name), data

        blobs = [new_object("blob", i) for i in range(n_res + n_unused_b)]
        attaches = [new_object("attach", i) for i in range(n_rep + n_unused_a)]
        for h, size, name, path, data in blobs + attaches:
            ext_rows.append((h, size, name, None, None))
            objects.append((path, data))
        cur.executemany(f"INSERT INTO {ext} "
                        "(hash, size, attachment_name, filepath, contents_hash) VALUES (%s, %s, %s, %s, %s)",
                        ext_rows)
        # written a day ago, like the objects: rows younger than the grace age are no orphans yet
        cur.execute(f"UPDATE {ext} SET `timestamp` = NOW() - INTERVAL 1 DAY")
        cur.executemany(f"INSERT INTO {MYSQL.ident(db)}.`analysis_result` VALUES (%s, %s)",
                        [(i, blobs[i][0]) for i in range(n_res)])
        cur.executemany(f"INSERT INTO {MYSQL.ident(db)}.`analysis_report` VALUES (%s, %s)",
                        [(i, attaches[i][0]) for i in range(n_rep)])
        # referenced rows whose object is missing, or was written empty
        missing = {blobs[i][3] for i in range(n_missing)}
        zero = {blobs[n_missing + i][3] for i in range(n_zero)}
        for path, data in objects:
            if path in missing:
                continue
            write_file(path, b"" if path in zero else data, old)
        # objects with no row: an interrupted insert, or rows deleted without their files
        untracked = [new_object("blob" if i % 3 else "attach", 900 + i) for i in range(n_untracked)]
        for _h, _size, _name, path, data in untracked:
            write_file(path, data, old - rng.uniform(0, 20) * DAY)
        # and one written a moment ago, its row not yet inserted: inside the grace period, not an orphan
        if short == "demo_analysis":
            _h, _size, _name, path, data = new_object("blob", 999)
            write_file(path, data, time.time())
        out[db] = {"unused-row": n_unused_b + n_unused_a, "untracked-object": n_untracked,
                   "missing-object": n_missing, "zero-byte": n_zero}
    return out
