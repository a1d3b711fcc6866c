"""Spyglass-shaped schemas: an interval list whose children reference it through renamed foreign keys,
an analysis pipeline for export, Spyglass's export log, and the managed analysis directory with its
untracked files (and a temp directory)."""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path

from djtui.demo.model import DAY, Schemas, write_file
from djtui.domain.dialects import MYSQL

EXPORT_TABLES = (
    "common_nwbfile.nwbfile", "common_nwbfile.analysis_nwbfile", "common_session.session",
    "common_interval.interval_list", "demo_ephys.#sorting_params", "demo_ephys.recording_selection",
    "demo_ephys.__recording", "demo_ephys.sorting_selection", "demo_ephys.__sorting", "demo_ephys.curated_units",
    "demo_ephys.curated_units__unit", "demo_results.__unit_metrics", "demo_results.place_field_selection",
    "demo_results.__place_field", "demo_results.custom_analysis_file",
)


_FK = "ON UPDATE CASCADE ON DELETE RESTRICT"
_UNIT_PK = "nwb_file_name, sort_interval_name, recording_id, params_name, curation_id, unit_id"
_UNIT_COLS = """nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL,
        recording_id INT NOT NULL, params_name VARCHAR(32) NOT NULL, curation_id INT NOT NULL,
        unit_id INT NOT NULL"""


def spyglass_ddl(s: Schemas) -> list[str]:
    """Every schema and table, parents first."""
    return [*_common_ddl(s), *_pipeline_ddl(s), *_usage_ddl(s)]


def _common_ddl(s: Schemas) -> list[str]:
    """The schemas; NWB files, sessions, the interval list and its children (plain, renamed, and a look-alike)."""
    nwb, ses, itv = MYSQL.ident(s.common_nwbfile), MYSQL.ident(s.common_session), MYSQL.ident(s.common_interval)
    eph, res, use = MYSQL.ident(s.demo_ephys), MYSQL.ident(s.demo_results), MYSQL.ident(s.common_usage)
    lfp, pos, dec = MYSQL.ident(s.lfp_v1), MYSQL.ident(s.position_v1), MYSQL.ident(s.decoding_v1)
    fk = _FK
    return [
        *(f"CREATE DATABASE IF NOT EXISTS {d}" for d in (nwb, ses, itv, eph, res, use, lfp, pos, dec)),
        f"""CREATE TABLE {nwb}.`nwbfile` (
            nwb_file_name VARCHAR(64) NOT NULL, nwb_file_abs_path VARCHAR(255) NOT NULL,
            PRIMARY KEY (nwb_file_name)) ENGINE=InnoDB COMMENT 'Table for NWB files'""",
        f"""CREATE TABLE {nwb}.`analysis_nwbfile` (
            analysis_file_name VARCHAR(64) NOT NULL, nwb_file_name VARCHAR(64) NOT NULL,
            analysis_file_abs_path VARCHAR(255) NOT NULL, PRIMARY KEY (analysis_file_name),
            FOREIGN KEY (nwb_file_name) REFERENCES {nwb}.`nwbfile` (nwb_file_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {ses}.`session` (
            nwb_file_name VARCHAR(64) NOT NULL, subject_id VARCHAR(80) NOT NULL,
            session_description VARCHAR(255) NOT NULL DEFAULT '', PRIMARY KEY (nwb_file_name),
            FOREIGN KEY (nwb_file_name) REFERENCES {nwb}.`nwbfile` (nwb_file_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {itv}.`interval_list` (
            nwb_file_name VARCHAR(64) NOT NULL, interval_list_name VARCHAR(170) NOT NULL,
            valid_times LONGBLOB NOT NULL, pipeline VARCHAR(64) NOT NULL DEFAULT '',
            PRIMARY KEY (nwb_file_name, interval_list_name),
            FOREIGN KEY (nwb_file_name) REFERENCES {ses}.`session` (nwb_file_name) {fk}) ENGINE=InnoDB""",
        # children of interval_list: one plain FK, two renamed ones, and a same-named column with no FK
        f"""CREATE TABLE {pos}.`raw_position` (
            nwb_file_name VARCHAR(64) NOT NULL, interval_list_name VARCHAR(170) NOT NULL,
            n_samples INT NOT NULL, PRIMARY KEY (nwb_file_name, interval_list_name),
            FOREIGN KEY (nwb_file_name, interval_list_name)
                REFERENCES {itv}.`interval_list` (nwb_file_name, interval_list_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {lfp}.`lfp_selection` (
            nwb_file_name VARCHAR(64) NOT NULL, target_interval_list_name VARCHAR(170) NOT NULL,
            filter_name VARCHAR(80) NOT NULL, PRIMARY KEY (nwb_file_name, target_interval_list_name, filter_name),
            FOREIGN KEY (nwb_file_name, target_interval_list_name)
                REFERENCES {itv}.`interval_list` (nwb_file_name, interval_list_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {dec}.`decoding_notes` (
            nwb_file_name VARCHAR(64) NOT NULL, interval_list_name VARCHAR(170) NOT NULL,
            note VARCHAR(255) NOT NULL, PRIMARY KEY (nwb_file_name, interval_list_name)) ENGINE=InnoDB
            COMMENT 'same column names as interval_list, but no foreign key: not a reference'""",
    ]


def _pipeline_ddl(s: Schemas) -> list[str]:
    """The analysis pipeline export walks: recording, sorting, curation, unit metrics and place fields."""
    itv, eph, res = MYSQL.ident(s.common_interval), MYSQL.ident(s.demo_ephys), MYSQL.ident(s.demo_results)
    fk, unit_pk, unit_cols = _FK, _UNIT_PK, _UNIT_COLS
    return [
        f"""CREATE TABLE {eph}.`#sorting_params` (
            params_name VARCHAR(32) NOT NULL, params LONGBLOB NOT NULL, PRIMARY KEY (params_name)) ENGINE=InnoDB""",
        f"""CREATE TABLE {eph}.`recording_selection` (
            nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL, recording_id INT NOT NULL,
            PRIMARY KEY (nwb_file_name, sort_interval_name, recording_id),
            FOREIGN KEY (nwb_file_name, sort_interval_name)
                REFERENCES {itv}.`interval_list` (nwb_file_name, interval_list_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {eph}.`__recording` (
            nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL, recording_id INT NOT NULL,
            n_channels INT NOT NULL, duration_s DOUBLE NOT NULL,
            PRIMARY KEY (nwb_file_name, sort_interval_name, recording_id),
            FOREIGN KEY (nwb_file_name, sort_interval_name, recording_id)
                REFERENCES {eph}.`recording_selection` (nwb_file_name, sort_interval_name, recording_id) {fk}
            ) ENGINE=InnoDB""",
        f"""CREATE TABLE {eph}.`sorting_selection` (
            nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL, recording_id INT NOT NULL,
            params_name VARCHAR(32) NOT NULL,
            PRIMARY KEY (nwb_file_name, sort_interval_name, recording_id, params_name),
            FOREIGN KEY (nwb_file_name, sort_interval_name, recording_id)
                REFERENCES {eph}.`__recording` (nwb_file_name, sort_interval_name, recording_id) {fk},
            FOREIGN KEY (params_name) REFERENCES {eph}.`#sorting_params` (params_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {eph}.`__sorting` (
            nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL, recording_id INT NOT NULL,
            params_name VARCHAR(32) NOT NULL, sorted_at DATETIME NOT NULL,
            PRIMARY KEY (nwb_file_name, sort_interval_name, recording_id, params_name),
            FOREIGN KEY (nwb_file_name, sort_interval_name, recording_id, params_name)
                REFERENCES {eph}.`sorting_selection` (nwb_file_name, sort_interval_name, recording_id, params_name)
                {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {eph}.`curated_units` (
            nwb_file_name VARCHAR(64) NOT NULL, sort_interval_name VARCHAR(170) NOT NULL, recording_id INT NOT NULL,
            params_name VARCHAR(32) NOT NULL, curation_id INT NOT NULL, curated_by VARCHAR(32) NOT NULL,
            PRIMARY KEY (nwb_file_name, sort_interval_name, recording_id, params_name, curation_id),
            FOREIGN KEY (nwb_file_name, sort_interval_name, recording_id, params_name)
                REFERENCES {eph}.`__sorting` (nwb_file_name, sort_interval_name, recording_id, params_name) {fk}
            ) ENGINE=InnoDB COMMENT 'master'""",
        f"""CREATE TABLE {eph}.`curated_units__unit` (
            {unit_cols}, label VARCHAR(16) NOT NULL, PRIMARY KEY ({unit_pk}),
            FOREIGN KEY (nwb_file_name, sort_interval_name, recording_id, params_name, curation_id)
                REFERENCES {eph}.`curated_units`
                (nwb_file_name, sort_interval_name, recording_id, params_name, curation_id) {fk}
            ) ENGINE=InnoDB COMMENT 'part of curated_units'""",
        f"""CREATE TABLE {res}.`__unit_metrics` (
            {unit_cols}, firing_rate DOUBLE NOT NULL, isi_violation DOUBLE NOT NULL, PRIMARY KEY ({unit_pk}),
            FOREIGN KEY ({unit_pk}) REFERENCES {eph}.`curated_units__unit` ({unit_pk}) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {res}.`place_field_selection` (
            {unit_cols}, epoch_interval_name VARCHAR(170) NOT NULL, PRIMARY KEY ({unit_pk}, epoch_interval_name),
            FOREIGN KEY ({unit_pk}) REFERENCES {res}.`__unit_metrics` ({unit_pk}) {fk},
            FOREIGN KEY (nwb_file_name, epoch_interval_name)
                REFERENCES {itv}.`interval_list` (nwb_file_name, interval_list_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {res}.`__place_field` (
            {unit_cols}, epoch_interval_name VARCHAR(170) NOT NULL, peak_rate DOUBLE NOT NULL,
            field_map LONGBLOB NOT NULL, PRIMARY KEY ({unit_pk}, epoch_interval_name),
            FOREIGN KEY ({unit_pk}, epoch_interval_name)
                REFERENCES {res}.`place_field_selection` ({unit_pk}, epoch_interval_name) {fk}) ENGINE=InnoDB""",
    ]


def _usage_ddl(s: Schemas) -> list[str]:
    """A notebook's own analysis files, and Spyglass's export log: a paper's selections, the tables and
    restrictions it read, its files."""
    nwb, res, use = MYSQL.ident(s.common_nwbfile), MYSQL.ident(s.demo_results), MYSQL.ident(s.common_usage)
    fk = _FK
    return [
        f"""CREATE TABLE {res}.`custom_analysis_file` (
            analysis_file_name VARCHAR(64) NOT NULL, nwb_file_name VARCHAR(64) NOT NULL,
            description VARCHAR(255) NOT NULL DEFAULT '', PRIMARY KEY (analysis_file_name),
            FOREIGN KEY (nwb_file_name) REFERENCES {nwb}.`nwbfile` (nwb_file_name) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {use}.`export_selection` (
            export_id INT NOT NULL, paper_id VARCHAR(32) NOT NULL, analysis_id VARCHAR(32) NOT NULL,
            spyglass_version VARCHAR(16) NOT NULL, time TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
            PRIMARY KEY (export_id), UNIQUE KEY (paper_id, analysis_id)) ENGINE=InnoDB""",
        f"""CREATE TABLE {use}.`export_selection__table` (
            export_id INT NOT NULL, table_id INT NOT NULL, table_name VARCHAR(128) NOT NULL,
            restriction MEDIUMBLOB NOT NULL, PRIMARY KEY (export_id, table_id),
            FOREIGN KEY (export_id) REFERENCES {use}.`export_selection` (export_id) {fk}) ENGINE=InnoDB""",
        f"""CREATE TABLE {use}.`export_selection__file` (
            export_id INT NOT NULL, analysis_file_name VARCHAR(64) NOT NULL,
            PRIMARY KEY (export_id, analysis_file_name),
            FOREIGN KEY (export_id) REFERENCES {use}.`export_selection` (export_id) {fk},
            FOREIGN KEY (analysis_file_name) REFERENCES {nwb}.`analysis_nwbfile` (analysis_file_name) {fk}
            ) ENGINE=InnoDB""",
    ]


NWB_FILES = tuple(f"{name}20260{m}0{d}_.nwb" for name, m, d in
                  (("frodo", 7, 1), ("frodo", 7, 2), ("samwise", 8, 3), ("samwise", 8, 4), ("merry", 9, 5)))


def build_spyglass(cur, sch: Schemas, rng: random.Random) -> int:
    """Returns how many interval_list rows no child references through a foreign key."""
    for stmt in spyglass_ddl(sch):
        cur.execute(stmt)
    nwb, ses, itv = MYSQL.ident(sch.common_nwbfile), MYSQL.ident(sch.common_session), MYSQL.ident(sch.common_interval)
    eph, res, use = MYSQL.ident(sch.demo_ephys), MYSQL.ident(sch.demo_results), MYSQL.ident(sch.common_usage)
    cur.executemany(f"INSERT INTO {nwb}.`nwbfile` VALUES (%s, %s)",
                    [(f, f"/stores/raw/{f}") for f in NWB_FILES])
    cur.executemany(f"INSERT INTO {ses}.`session` VALUES (%s, %s, %s)",
                    [(f, f.split("2026")[0], "open field + linear track") for f in NWB_FILES])

    intervals: list[tuple[str, str]] = []
    for f in NWB_FILES:
        for n in range(1, 5):
            intervals.append((f, f"{n:02d}_r{n}"))
        intervals += [(f, "raw data valid times"), (f, f"pos {rng.randint(0, 3)} valid times"),
                      (f, "sort group 0 interval"), (f, "lfp band 100Hz"), (f, "artifact removed 2")]
    intervals = sorted(set(intervals))
    cur.executemany(f"INSERT INTO {itv}.`interval_list` VALUES (%s, %s, %s, %s)",
                    [(f, name, rng.randbytes(64), "") for f, name in intervals])

    referenced: set[tuple[str, str]] = set()
    by_file = {f: [i for i in intervals if i[0] == f] for f in NWB_FILES}
    pos_rows = [i for i in intervals if "valid times" in i[1] or i[1].endswith("_r1")]
    cur.executemany(f"INSERT INTO {MYSQL.ident(sch.position_v1)}.`raw_position` VALUES (%s, %s, %s)",
                    [(f, n, rng.randint(10_000, 90_000)) for f, n in pos_rows])
    referenced.update(pos_rows)
    lfp_rows = [i for i in intervals if i[1].startswith("lfp") or i[1].endswith("_r2")]
    cur.executemany(f"INSERT INTO {MYSQL.ident(sch.lfp_v1)}.`lfp_selection` VALUES (%s, %s, %s)",
                    [(f, n, "LFP 0-400 Hz") for f, n in lfp_rows])
    referenced.update(lfp_rows)

    # the analysis pipeline: recording_selection renames interval_list_name -> sort_interval_name
    rec_sel = [(f, "sort group 0 interval", r) for f in NWB_FILES[:4] for r in (1, 2)]
    cur.executemany(f"INSERT INTO {eph}.`recording_selection` VALUES (%s, %s, %s)", rec_sel)
    referenced.update((f, n) for f, n, _ in rec_sel)
    cur.executemany(f"INSERT INTO {eph}.`__recording` VALUES (%s, %s, %s, %s, %s)",
                    [(*k, 32 * k[2], round(rng.uniform(600, 3600), 1)) for k in rec_sel])
    cur.executemany(f"INSERT INTO {eph}.`#sorting_params` VALUES (%s, %s)",
                    [("ms4_default", b"\x00" * 32), ("kilosort_franklab", b"\x01" * 32)])
    sort_sel = [(*k, p) for k in rec_sel for p in ("ms4_default", "kilosort_franklab") if k[2] == 1 or p[0] == "m"]
    cur.executemany(f"INSERT INTO {eph}.`sorting_selection` VALUES (%s, %s, %s, %s)", sort_sel)
    cur.executemany(f"INSERT INTO {eph}.`__sorting` VALUES (%s, %s, %s, %s, %s)",
                    [(*k, dt.datetime(2026, 9, 1, 12) + dt.timedelta(hours=i)) for i, k in enumerate(sort_sel)])
    curated = [(*k, 1) for k in sort_sel]
    cur.executemany(f"INSERT INTO {eph}.`curated_units` VALUES (%s, %s, %s, %s, %s, %s)",
                    [(*k, rng.choice(["ana", "ben"])) for k in curated])
    units = [(*k, u) for k in curated for u in range(rng.randint(3, 9))]
    cur.executemany(f"INSERT INTO {eph}.`curated_units__unit` VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(*u, rng.choice(["accept", "accept", "mua", "noise"])) for u in units])
    cur.executemany(f"INSERT INTO {res}.`__unit_metrics` VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    [(*u, round(rng.uniform(0.1, 40), 3), round(rng.uniform(0, 0.05), 4)) for u in units])
    pf_sel = []
    for u in units[::2]:
        # epoch_interval_name renames interval_list_name: the second path up to interval_list
        epoch = rng.choice([n for f, n in by_file[u[0]] if n.endswith(("_r3", "_r4"))])
        pf_sel.append((*u, epoch))
        referenced.add((u[0], epoch))
    cur.executemany(f"INSERT INTO {res}.`place_field_selection` VALUES ({', '.join(['%s'] * 7)})", pf_sel)
    cur.executemany(f"INSERT INTO {res}.`__place_field` VALUES ({', '.join(['%s'] * 9)})",
                    [(*k, round(rng.uniform(1, 30), 2), rng.randbytes(128)) for k in pf_sel[::2]])

    # rows whose column names match interval_list but that hold no foreign key (name-matching trap)
    unreferenced = [i for i in intervals if i not in referenced]
    notes = rng.sample(unreferenced, 4) + rng.sample(sorted(referenced), 2)
    cur.executemany(f"INSERT INTO {MYSQL.ident(sch.decoding_v1)}.`decoding_notes` VALUES (%s, %s, %s)",
                    [(f, n, "looked at this epoch") for f, n in notes])

    # Spyglass's export log: one paper, two analyses, leaves on two tables
    cur.executemany(f"INSERT INTO {use}.`export_selection` (export_id, paper_id, analysis_id, spyglass_version) "
                    "VALUES (%s, %s, %s, %s)", [(1, "demo_paper_2026", "fig2_place_fields", "0.5.4"),
                                                (2, "demo_paper_2026", "fig3_unit_quality", "0.5.4")])
    f0, f1 = NWB_FILES[0], NWB_FILES[2]
    cur.executemany(f"INSERT INTO {use}.`export_selection__table` VALUES (%s, %s, %s, %s)", [
        (1, 1, MYSQL.table(sch.demo_results, "__place_field"), f"nwb_file_name = '{f0}'".encode()),
        (1, 2, MYSQL.table(sch.demo_results, "__place_field"), f"nwb_file_name = '{f1}' AND unit_id < 2".encode()),
        (2, 1, MYSQL.table(sch.demo_ephys, "curated_units__unit"),
         f"nwb_file_name = '{f1}' AND label = 'accept'".encode()),
    ])
    return len(unreferenced)


def build_analysis_dir(cur, base: Path, sch: Schemas, rng: random.Random) -> tuple[int, int, int]:
    adir, tdir = base / "analysis", base / "tmp"
    adir.mkdir(exist_ok=True)
    tdir.mkdir(exist_ok=True)
    now = time.time()

    def name(f: str) -> str:
        return f"{f.removesuffix('_.nwb')}_{''.join(rng.choices('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', k=10))}.nwb"

    tracked = [(name(f), f) for f in NWB_FILES for _ in range(2)]
    custom = [(name(f), f) for f in NWB_FILES[:3]]
    cur.executemany(f"INSERT INTO {MYSQL.ident(sch.common_nwbfile)}.`analysis_nwbfile` VALUES (%s, %s, %s)",
                    [(a, f, str(adir / a)) for a, f in tracked])
    cur.executemany(f"INSERT INTO {MYSQL.ident(sch.demo_results)}.`custom_analysis_file` VALUES (%s, %s, %s)",
                    [(a, f, "made in a notebook") for a, f in custom])
    cur.executemany(f"INSERT INTO {MYSQL.ident(sch.common_usage)}.`export_selection__file` VALUES (%s, %s)",
                    [(1, a) for a, f in tracked if f in (NWB_FILES[0], NWB_FILES[2])])
    for a, _f in tracked + custom:
        write_file(adir / a, rng.randbytes(rng.randint(2_000, 60_000)), now - rng.uniform(2, 60) * DAY)
    untracked = [name(rng.choice(NWB_FILES)) for _ in range(4)]
    for a in untracked:
        write_file(adir / a, rng.randbytes(rng.randint(2_000, 60_000)), now - rng.uniform(2, 60) * DAY)
    zero = [name(rng.choice(NWB_FILES)) for _ in range(2)]
    for a in zero:
        write_file(adir / a, b"", now - 5 * DAY)
    write_file(adir / name(NWB_FILES[0]), rng.randbytes(5000), now - 60)  # being written right now: too young
    return len(untracked), len(zero), build_temp_dir(tdir, rng, now)


def build_temp_dir(tdir: Path, rng: random.Random, now: float) -> int:
    """Stale spike-sorting leftovers and young job files in a temp directory; returns the stale count."""
    tdir.mkdir(parents=True, exist_ok=True)
    stale = 5
    for i in range(stale):
        write_file(tdir / f"spikesort_{i:02d}" / "recording.dat", rng.randbytes(4096), now - (8 + 3 * i) * DAY)
    for i in range(3):
        write_file(tdir / f"job_{i:02d}.tmp", rng.randbytes(1024), now - i * 3600)
    return stale
