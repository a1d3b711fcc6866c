"""A small lab with known orphans of every kind, built with plain SQL on the private server.

The ``~external_<store>`` tables and their foreign keys follow DataJoint 0.14's
DDL; the object files are laid out as 0.14 writes them. Every fixture returns
the exact set a correct scan must report, so tests compare sets, not counts.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from djtui.config import Config, parse_config
from djtui.domain import stores as ds

OLD = time.time() - 3 * 3600


def ext_ddl(db: str, store: str) -> str:
    return (f"CREATE TABLE `{db}`.`~external_{store}` (hash BINARY(16) NOT NULL COMMENT ':uuid:hash of contents', "
            "size BIGINT UNSIGNED NOT NULL, attachment_name VARCHAR(255) NULL, filepath VARCHAR(1000) NULL, "
            "contents_hash BINARY(16) NULL COMMENT ':uuid:used for filepath', "
            "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (hash)) ENGINE=InnoDB")


def put(root: Path, rel: str, data: bytes, mtime: float = OLD) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.utime(p, (mtime, mtime))
    return p


def config_text(server, tmp_path: Path, extra: str = "") -> str:
    return (f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
            f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
            f"state_dir: {tmp_path}/state\n" + extra)


def make_config(server, tmp_path: Path, extra: str = "") -> Config:
    return parse_config(config_text(server, tmp_path, extra))


@dataclass
class LegacyLab:
    schema: str
    schema_v2: str
    location: Path
    expected: dict[str, set[str]] = field(default_factory=dict)  # reason -> paths
    hashes: dict[str, uuid.UUID] = field(default_factory=dict)  # what each row of S is for
    untracked_bytes: dict[str, bytes] = field(default_factory=dict)


@pytest.fixture
def legacy_lab(server, admin_conn, schema_name, tmp_path) -> LegacyLab:
    """Schema S and S_v2 sharing one file store; S has one orphan of each kind, S_v2 none."""
    s, v2 = schema_name, schema_name + "_v2"
    loc = tmp_path / "store"
    loc.mkdir()
    lab = LegacyLab(s, v2, loc)
    cur = admin_conn.cursor()
    for db in (s, v2):
        cur.execute(f"CREATE DATABASE `{db}`")
        cur.execute(ext_ddl(db, "main"))
        # a blob column, a renamed attachment column and a filepath column, all FKs to the store table
        cur.execute(f"CREATE TABLE `{db}`.`rec` (id INT PRIMARY KEY, data BINARY(16) NULL, att BINARY(16) NULL, "
                    f"fp BINARY(16) NULL, "
                    f"CONSTRAINT `rec_data` FOREIGN KEY (data) REFERENCES `~external_main` (hash), "
                    f"CONSTRAINT `rec_att` FOREIGN KEY (att) REFERENCES `~external_main` (hash), "
                    f"CONSTRAINT `rec_fp` FOREIGN KEY (fp) REFERENCES `~external_main` (hash)) ENGINE=InnoDB")

    def row(db, h, size, att=None, fp=None):  # written three hours ago, past the grace age
        cur.execute(f"INSERT INTO `{db}`.`~external_main` (hash, size, attachment_name, filepath, timestamp) "
                    "VALUES (%s, %s, %s, %s, NOW() - INTERVAL 3 HOUR)", (h.bytes, size, att, fp))

    h = {k: uuid.uuid4() for k in ("blob", "att", "unused", "missing", "fp", "zero", "v2")}
    lab.hashes = h
    # S: a used blob, a used attachment, an unused row, a used row with no object, a filepath, a zero-byte object
    row(s, h["blob"], 5)
    put(loc, ds.legacy_blob_path(s, h["blob"]), b"blob!")
    row(s, h["att"], 3, att="notes.txt")
    put(loc, ds.legacy_attach_path(s, h["att"], "notes.txt"), b"att")
    row(s, h["unused"], 6)
    put(loc, ds.legacy_blob_path(s, h["unused"]), b"unused")
    row(s, h["missing"], 9)
    row(s, h["fp"], 4, fp="raw/session1/f.dat")
    put(loc, "raw/session1/f.dat", b"file")
    row(s, h["zero"], 0)
    put(loc, ds.legacy_blob_path(s, h["zero"]), b"")
    cur.execute(f"INSERT INTO `{s}`.rec VALUES (1, %s, %s, %s), (2, %s, NULL, NULL), (3, %s, NULL, NULL)",
                (h["blob"].bytes, h["att"].bytes, h["fp"].bytes, h["missing"].bytes, h["zero"].bytes))
    untracked = ds.legacy_blob_path(s, uuid.uuid4())
    put(loc, untracked, b"orphan object bytes")
    lab.untracked_bytes[untracked] = b"orphan object bytes"
    put(loc, ds.legacy_blob_path(s, uuid.uuid4()), b"in flight", mtime=time.time())  # younger than the grace age
    # S_v2: one used blob, which a prefix without the slash would call an orphan of S
    row(v2, h["v2"], 2)
    put(loc, ds.legacy_blob_path(v2, h["v2"]), b"v2")
    cur.execute(f"INSERT INTO `{v2}`.rec VALUES (1, %s, NULL, NULL)", (h["v2"].bytes,))
    cur.close()
    lab.expected = {
        ds.UNUSED_ROW: {ds.legacy_blob_path(s, h["unused"])},
        ds.MISSING_OBJECT: {ds.legacy_blob_path(s, h["missing"])},
        ds.ZERO_BYTE: {ds.legacy_blob_path(s, h["zero"])},
        ds.UNTRACKED_OBJECT: {untracked},
    }
    return lab


@dataclass
class TableLab:
    schema: str
    schema_v2: str
    orphans: set[str]


@pytest.fixture
def table_lab(admin_conn, schema_name) -> Iterator[TableLab]:
    """IntervalList-style parent; one child by name, one in another schema through a renamed FK."""
    s, other = schema_name, schema_name + "_v2"
    cur = admin_conn.cursor()
    cur.execute(f"CREATE DATABASE `{s}`")
    cur.execute(f"CREATE DATABASE `{other}`")
    cur.execute(f"CREATE TABLE `{s}`.interval_list (nwb_file_name VARCHAR(64), interval_list_name VARCHAR(64), "
                "PRIMARY KEY (nwb_file_name, interval_list_name)) ENGINE=InnoDB")
    cur.execute(f"CREATE TABLE `{s}`.`lfp` (nwb_file_name VARCHAR(64), interval_list_name VARCHAR(64), "
                "PRIMARY KEY (nwb_file_name, interval_list_name), FOREIGN KEY (nwb_file_name, interval_list_name) "
                f"REFERENCES `{s}`.interval_list (nwb_file_name, interval_list_name)) ENGINE=InnoDB")
    cur.execute(f"CREATE TABLE `{other}`.`sorting` (id INT PRIMARY KEY, nwb_file_name VARCHAR(64), "
                "sort_interval_name VARCHAR(64), FOREIGN KEY (nwb_file_name, sort_interval_name) "
                f"REFERENCES `{s}`.interval_list (nwb_file_name, interval_list_name)) ENGINE=InnoDB")
    cur.executemany(f"INSERT INTO `{s}`.interval_list VALUES (%s, %s)",
                    [("f.nwb", n) for n in ("by_lfp", "by_renamed", "orphan1", "orphan2", "by_both")])
    cur.execute(f"INSERT INTO `{s}`.lfp VALUES ('f.nwb', 'by_lfp'), ('f.nwb', 'by_both')")
    # a name-based antijoin would wrongly think 'by_renamed' is unreferenced
    cur.execute(f"INSERT INTO `{other}`.sorting VALUES (1, 'f.nwb', 'by_renamed'), (2, 'f.nwb', 'by_both')")
    cur.close()
    yield TableLab(s, other, {"orphan1", "orphan2"})
    with admin_conn.cursor() as cur:  # the child schema first: its foreign keys point into s
        cur.execute(f"DROP DATABASE IF EXISTS `{other}`")
