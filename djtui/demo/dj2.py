"""A DataJoint 2.x store: tables declared by DataJoint 2.x itself when it runs here, else the same JSON
columns and objects written by hand; deleted rows leave orphan objects behind."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from djtui.demo.model import DAY, DJ2_STORE, Schemas, write_file
from djtui.domain.dialects import MYSQL


def build_dj2(base: Path, sch: Schemas, settings, conn_factory, use_datajoint: bool,
               notes: list[str]) -> tuple[int, str]:
    """A ``<blob@dj2>`` table declared by DataJoint 2.x itself; deleting rows leaves orphan objects."""
    location = base / "stores" / DJ2_STORE
    location.mkdir(parents=True, exist_ok=True)
    values = [bytes(f"waveform set {i}: ", "ascii") + bytes(range(i, i + 64)) * (i + 1) for i in range(12)]
    drop = (2, 5, 9)  # waveform_set rows deleted: their hash-addressed objects stay behind
    backend = "direct"
    if use_datajoint:
        try:
            _dj2_with_datajoint(sch.demo_dj2, settings, location, values, drop)
            backend = "datajoint"
        except Exception as exc:  # DataJoint on MariaDB is best effort: fall back to the documented layout
            if settings.backend == "postgresql":  # DataJoint 2.x's own backend: no excuse, no fallback
                raise
            notes.append(f"DataJoint 2.x could not build the store ({type(exc).__name__}: {exc}); "
                         "wrote its JSON columns and objects directly")
    if backend == "direct":
        conn = conn_factory()
        try:
            with conn.cursor() as cur:
                _dj2_direct(cur, sch.demo_dj2, location, values, drop)
        finally:
            conn.close()
    old = time.time() - 2 * DAY
    for root, _dirs, files in os.walk(location):
        for f in files:
            os.utime(os.path.join(root, f), (old, old))
    return len(drop) + len(TRACE_DROP), backend


TRACES = 6
TRACE_DROP = (1, 4)  # trace rows deleted: their schema-addressed objects stay behind


def _dj2_with_datajoint(schema_name: str, settings, location: Path, values: list[bytes],
                        drop: tuple[int, ...]) -> None:
    import logging
    import warnings

    import numpy as np
    import pymysql

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import datajoint as dj
    logger = logging.getLogger("datajoint")
    saved_level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _dj2_declare(dj, np, pymysql, schema_name, settings, location, values, drop)
    finally:
        logger.setLevel(saved_level)


def _dj2_declare(dj, np, pymysql, schema_name: str, settings, location: Path, values: list[bytes],
                 drop: tuple[int, ...]) -> None:

    saved_stores = dict(dj.config["stores"]) if dj.config["stores"] else {}
    dj.config["stores"] = {**saved_stores, DJ2_STORE: {"protocol": "file", "location": str(location)}}
    conn = dj2_connection(dj, settings)
    try:
        if settings.backend != "postgresql":
            # DataJoint 2.3.5 on MariaDB sees a codec's json column as longtext and hands the driver a dict
            conn._conn.encoders[dict] = lambda d, _m=None: "'" + pymysql.converters.escape_string(json.dumps(d)) + "'"
        schema = dj.Schema(schema_name, connection=conn)

        class WaveformSet(dj.Manual):
            definition = f"""
            set_id : int32
            ---
            waveform : <blob@{DJ2_STORE}>
            """

        table = schema(WaveformSet)
        table.insert([{"set_id": i, "waveform": np.frombuffer(v, dtype=np.uint8)} for i, v in enumerate(values)])
        restriction = " OR ".join(f"set_id = {i}" for i in drop)
        (table & restriction).delete(prompt=False)

        class Trace(dj.Manual):
            definition = f"""
            trace_id : int32
            ---
            samples : <npy@{DJ2_STORE}>
            """

        traces = schema(Trace)
        traces.insert([{"trace_id": i, "samples": np.arange(i * 50, dtype=np.float32)} for i in range(TRACES)])
        (traces & " OR ".join(f"trace_id = {i}" for i in TRACE_DROP)).delete(prompt=False)
    finally:
        conn.close()
        dj.config["stores"] = saved_stores


def dj2_connection(dj, settings):
    """A ``dj.Connection`` to the lab's server: MySQL/MariaDB, or PostgreSQL (its database, no TLS on loopback)."""
    if settings.backend == "postgresql":
        return dj.Connection(settings.host, settings.user, settings.password.reveal(), port=settings.port,
                             use_tls=False, database_name=settings.dbname, backend="postgresql")
    return dj.Connection(settings.host, settings.user, settings.password.reveal(), port=settings.port)


def quiet_datajoint():
    """DataJoint imported with its warnings and log lines (connected to ..., no datajoint.json) silenced."""
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import datajoint as dj
    logging.getLogger("datajoint").setLevel(logging.ERROR)
    return dj


def _dj2_direct(cur, schema_name: str, location: Path, values: list[bytes], drop: tuple[int, ...]) -> None:
    """The same store written by hand, as FIELD.md section 2 lays it out (hash-addressed, ``_hash/``)."""
    import base64

    d = MYSQL.ident(schema_name)
    cur.execute(f"CREATE DATABASE IF NOT EXISTS {d}")
    cur.execute(f"""CREATE TABLE {d}.`waveform_set` (
        set_id INT NOT NULL, waveform JSON NOT NULL COMMENT ':<blob@{DJ2_STORE}>:',
        PRIMARY KEY (set_id)) ENGINE=InnoDB""")
    rows = []
    for i, v in enumerate(values):
        h = base64.b32encode(hashlib.md5(v).digest()).decode().rstrip("=").lower()
        rel = f"_hash/{schema_name}/{h}"
        write_file(location / rel, v, time.time())
        if i not in drop:
            rows.append((i, json.dumps({"hash": h, "path": rel, "schema": schema_name, "store": DJ2_STORE,
                                        "size": len(v)})))
    cur.executemany(f"INSERT INTO {d}.`waveform_set` VALUES (%s, %s)", rows)
    _dj2_direct_traces(cur, schema_name, location)


def _dj2_direct_traces(cur, schema_name: str, location: Path) -> None:
    """Schema-addressed ``<npy@>`` objects: ``_schema/{schema}/{table}/{pk}/{field}_{token}.npy``."""
    import io

    import numpy as np

    d = MYSQL.ident(schema_name)
    cur.execute(f"""CREATE TABLE {d}.`trace` (
        trace_id INT NOT NULL, samples JSON NOT NULL COMMENT ':<npy@{DJ2_STORE}>:',
        PRIMARY KEY (trace_id)) ENGINE=InnoDB""")
    rows = []
    for i in range(TRACES):
        arr = np.arange(i * 50, dtype=np.float32)
        buf = io.BytesIO()
        np.save(buf, arr)
        token = hashlib.md5(f"{schema_name}{i}".encode()).hexdigest()[:8]
        rel = f"_schema/{schema_name}/trace/trace_id={i}/samples_{token}.npy"
        write_file(location / rel, buf.getvalue(), time.time())
        if i not in TRACE_DROP:
            rows.append((i, json.dumps({"path": rel, "store": DJ2_STORE, "dtype": "float32", "shape": [i * 50]})))
    cur.executemany(f"INSERT INTO {d}.`trace` VALUES (%s, %s)", rows)
