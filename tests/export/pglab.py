"""A DataJoint-shaped lab on the suite's private PostgreSQL, in plain SQL (the PostgreSQL export tests).

Two schemas: ``<p>_lab`` (subject with a serial key and an enum type, session with jsonb, uuid and a
timestamp, its part ``session__file``, a self-referencing ``probe``) and ``<p>_acq`` (trace: bytea,
double, a generated column, a foreign key into the other schema).
"""

from __future__ import annotations

import itertools
import os

_counter = itertools.count()


def lab_prefix() -> str:
    return f"pg{os.getpid()}_{next(_counter)}"


def build_lab(conn, p: str, sessions: int = 12) -> None:
    """Fill the lab; subject i has sessions i*10 .. ; every session has 3 traces and 2 files."""
    lab, acq = f'"{p}_lab"', f'"{p}_acq"'
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {lab}; CREATE SCHEMA {acq};")
        cur.execute(f"CREATE TYPE {lab}.enum_sex AS ENUM ('F', 'M', 'U')")
        cur.execute(f"CREATE TABLE {lab}.subject (subject_id serial PRIMARY KEY, sex {lab}.enum_sex NOT NULL, "
                    f"born date, notes text)")
        cur.execute(f"COMMENT ON TABLE {lab}.subject IS 'lab animals'")
        cur.execute(f"CREATE TABLE {lab}.probe (probe_id int PRIMARY KEY, parent_id int "
                    f"REFERENCES {lab}.probe (probe_id), label varchar(32))")
        cur.execute(f"CREATE TABLE {lab}.session (subject_id int NOT NULL REFERENCES {lab}.subject, "
                    f"session_id int NOT NULL, started timestamp(3), meta jsonb, uid uuid, probe_id int "
                    f"REFERENCES {lab}.probe, PRIMARY KEY (subject_id, session_id))")
        cur.execute(f"CREATE TABLE {lab}.session__file (subject_id int NOT NULL, session_id int NOT NULL, "
                    f"file_no int NOT NULL, path varchar(255), PRIMARY KEY (subject_id, session_id, file_no), "
                    f"FOREIGN KEY (subject_id, session_id) REFERENCES {lab}.session)")
        cur.execute(f"CREATE TABLE {acq}.trace (subject_id int NOT NULL, session_id int NOT NULL, "
                    f"trace_id int NOT NULL, data bytea, value double precision, "
                    f"doubled double precision GENERATED ALWAYS AS (value * 2) STORED, label text, "
                    f"recorded timestamptz, PRIMARY KEY (subject_id, session_id, trace_id), "
                    f"FOREIGN KEY (subject_id, session_id) REFERENCES {lab}.session)")
        cur.execute(f"CREATE INDEX trace_label ON {acq}.trace (label)")
        cur.execute(f"INSERT INTO {lab}.probe VALUES (1, NULL, 'root'), (2, 1, 'shank'), (3, 2, 'tip'), "
                    f"(4, NULL, 'other')")
        for s in range(4):
            cur.execute(f"INSERT INTO {lab}.subject (sex, born, notes) VALUES (%s, %s, %s)",
                        ("FMU"[s % 3], f"2024-01-0{s + 1}", None if s == 2 else f"mouse '{s}'\n\\tab\t\"q\""))
        for n in range(sessions):
            subj, sess = n % 4 + 1, n
            cur.execute(f"INSERT INTO {lab}.session VALUES (%s, %s, %s, %s, %s, %s)",
                        (subj, sess, f"2025-02-03 04:05:06.{n:03d}", f'{{"rig": "a", "n": {n}, "x": 1.5e-7}}',
                         f"00000000-0000-4000-8000-{n:012d}", 3 if n == 5 else (4 if n == 7 else None)))
            for f in range(2):
                cur.execute(f"INSERT INTO {lab}.session__file VALUES (%s, %s, %s, %s)",
                            (subj, sess, f, f"raw/{sess}/{f}.bin"))
            for t in range(3):
                cur.execute(f"INSERT INTO {acq}.trace (subject_id, session_id, trace_id, data, value, label, "
                            f"recorded) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (subj, sess, t, bytes([0, 255, t, 10, 13, 92]), 0.1 * (t + 1) + n, f"t{t}",
                             "2025-02-03 04:05:06.5+02"))


def drop_lab(conn, p: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{p}_acq" CASCADE; DROP SCHEMA IF EXISTS "{p}_lab" CASCADE')
