"""A Spyglass lab built by Spyglass itself, what Spyglass answers about it, and the truth from the server.

Spyglass 0.6.0 (its own venv, with the DataJoint 0.14.10 it pins) declares its schemas on the suite's
private server (``import spyglass.common`` and the v1 LFP modules: ``common_*``, ``lfp_*``; Spyglass's
schema names are fixed, so the lab is built once per session) and every row goes in through its own
classes: ``Nwbfile``/``AnalysisNwbfile`` register real files through their ``filepath@raw`` and
``filepath@analysis`` stores (``AnalysisNwbfile.get_abs_path`` picks each file's place, as Spyglass
does for every new analysis file), imported and computed tables take ``allow_direct_insert=True``,
``LFPOutput`` is filled through its merge insert. No NWB content is needed: no class reads the files.

The lab, by design:

- ``IntervalList``: rows used by children (``Raw``, ``LFP``, ``LFPBand``, the v1 LFP tables), rows used
  by nobody (``orphan A1/A2`` in session alpha, ``orphan B1/B2`` in beta), and rows used only through
  a renamed foreign key (``LFPBandSelection.target_interval_list_name`` -> ``interval_list_name``,
  v0 and v1, and ``lfp_v1.LFPSelection``).
- ``AnalysisNwbfile``: files at Spyglass's own place ``<analysis dir>/<name up to its last _>/<name>``,
  one in the legacy flat layout, one row nothing references, one row deleted (its
  ``~external_analysis`` row stays, unused, its file stays on disk), one external row uploaded
  without its table row (an insert in flight: young). On disk beside them: an untracked file, an
  empty reservation file, an untracked file younger than the age limit, a non-NWB file, and a stray
  copy of a tracked file in the wrong folder (``backup_2022/``), and one at the legacy flat place of a
  file tracked in its subfolder.
- ``Nwbfile``: one row deleted, its ``~external_raw`` row left unused.
- ``ExportSelection``: a paper's three analyses, logged by Spyglass while they fetch (``start_export``...).
- ``Probe`` with two shanks (``Probe.Shank``) and four electrodes (``Probe.Electrode`` -> ``Probe.Shank``);
  downstream (``Electrode``) references only shank 0's two electrodes. A second probe nobody uses.

Spyglass's answers come from its own code paths, read-only: ``IntervalList.cleanup(dry_run=True)``,
``AnalysisNwbfile.get_orphans()`` (what ``cleanup`` deletes), ``cleanup_external``'s ``unused()``
(``dry_run=True``), the untracked-file ``CleanupPlan`` that ``AnalysisNwbfile.cleanup`` executes
(built, never executed), and ``RestrGraph(...).restr_ft`` and ``.file_paths`` for exports (for the paper:
``ExportSelection.get_restr_graph``, what ``Export.make`` cascades).

The truth is computed here from ``information_schema`` (every foreign key, renamed or not) and the
rows, with no tool's help.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .tools import run_tool, server_env

# schemas Spyglass declares for this lab (its names are fixed by Spyglass)
SPYGLASS_PREFIXES = ("common_", "lfp_")
PASSWORD_ENV = "SPYGLASS_LAB_DB_PASSWORD"
OLD_H = 48.0  # files and external rows of the lab's past: older than every age limit
AGE_LIMIT_H = 1.0  # the untracked-file age limit both tools are given

# the paper whose exports Spyglass logs while the lab is built, and its cases: case -> analysis_id (None: all)
PAPER = "conformance-paper"
PAPER_CASES: dict[str, str | None] = {"paper": None, "paper_fig2": "fig2", "paper_fig3": "fig3"}
PAPER_TABLES = {  # analysis -> the tables it fetched from
    "fig1": {"common_ephys.__l_f_p_band", "common_interval.interval_list"},
    "fig2": {"common_ephys._electrode", "common_ephys._raw"},
    "fig3": {"lfp_band_v1.l_f_p_band_selection", "lfp_merge.l_f_p_output"},
}
# export leaves asked of both tools: case -> [(db.table, SQL restriction)]
EXPORT_CASES: dict[str, list[tuple[str, str]]] = {
    "lfp_band_v0": [("common_ephys.__l_f_p_band", "nwb_file_name = 'alpha_.nwb'")],
    "lfp_band_selection_v0": [("common_ephys.l_f_p_band_selection", "nwb_file_name = 'alpha_.nwb'")],
    "lfp_band_v1": [("lfp_band_v1.__l_f_p_band_v1", "nwb_file_name = 'alpha_.nwb'")],
    "one_electrode": [("common_ephys._electrode", "electrode_id = 0")],
    "probe_electrode_0": [("common_device.probe__electrode", "probe_electrode = 0")],
    "band_and_interval": [("common_ephys.__l_f_p_band", "nwb_file_name = 'alpha_.nwb'"),
                          ("common_interval.interval_list", "interval_list_name = 'orphan B1'")],
}

_PRELUDE = r"""
import json
import os
import time
from pathlib import Path

import datajoint as dj

dj.config["database.host"] = os.environ["DJ_HOST"]
dj.config["database.port"] = int(os.environ["DJ_PORT"])
dj.config["database.user"] = os.environ["DJ_USER"]
dj.config["database.password"] = os.environ["DJ_PASS"]
dj.config["database.use_tls"] = False  # Spyglass's own default is TLS; the private server has none
dj.config["safemode"] = False
# only this lab's folders, whatever a global DataJoint config says
dj.config["custom"] = {"spyglass_dirs": {"base": os.environ["SPYGLASS_BASE_DIR"]}}
t0 = time.time()
import numpy as np

import spyglass.common as sgc
from spyglass.lfp import lfp_electrode, lfp_merge
from spyglass.lfp.analysis.v1 import lfp_band as band_v1
from spyglass.lfp.v1 import lfp as lfp_v1
from spyglass.settings import analysis_dir, raw_dir

t_import = time.time() - t0
"""

BUILD = _PRELUDE + r"""
OLD_H = float(os.environ["LAB_OLD_H"])
DIRECT = dict(skip_duplicates=True, allow_direct_insert=True)
now = time.time()


def age(path, hours):
    os.utime(path, (now - hours * 3600, now - hours * 3600))


def raw_file(name, size=64):
    p = Path(raw_dir) / name
    p.write_bytes((name * size).encode()[:size])
    return str(p)


for nwb in ("alpha_.nwb", "beta_.nwb", "delta_.nwb"):
    sgc.Nwbfile.insert1(dict(nwb_file_name=nwb, nwb_file_abs_path=raw_file(nwb)), skip_duplicates=True)
for nwb in ("alpha_.nwb", "beta_.nwb"):
    sgc.Session.insert1(dict(nwb_file_name=nwb, session_description="conformance lab",
                             session_start_time="2024-01-02 03:04:05",
                             timestamps_reference_time="2024-01-02 03:04:05"), **DIRECT)
(sgc.Nwbfile & {"nwb_file_name": "delta_.nwb"}).delete_quick()  # its ~external_raw row stays, unused

intervals = [("alpha_.nwb", n) for n in (
    "raw data valid times", "lfp valid times", "band valid times", "target A", "orphan A1", "orphan A2",
    "v1 target", "v1 lfp valid times", "v1 band target", "v1 band valid times")]
intervals += [("beta_.nwb", n) for n in ("raw data valid times", "orphan B1", "orphan B2")]
sgc.IntervalList.insert([dict(nwb_file_name=s, interval_list_name=n, valid_times=np.array([[0.0, 10.0]]))
                         for s, n in intervals], skip_duplicates=True)
for nwb in ("alpha_.nwb", "beta_.nwb"):
    sgc.Raw.insert1(dict(nwb_file_name=nwb, interval_list_name="raw data valid times", raw_object_id="raw-" + nwb,
                         sampling_rate=30000.0, comments="", description=""), **DIRECT)
sgc.FirFilterParameters.insert1(dict(filter_name="theta 5-11 Hz", filter_sampling_rate=1000, filter_type="bandpass",
                                     filter_comments="", filter_band_edges=np.array([4, 5, 11, 12]),
                                     filter_coeff=np.ones(8)), skip_duplicates=True)

A = sgc.AnalysisNwbfile
files = {}


def analysis(nwb, name, *, flat=False, size=100):
    # Spyglass picks the place of a new analysis file; the legacy flat layout is found there first
    p = Path(analysis_dir) / name if flat else Path(A.get_abs_path(name))
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes((name * size).encode()[:size])
    A().add(nwb, name)
    age(p, OLD_H)
    files[name] = str(p)


for nwb, name in (("alpha_.nwb", "alpha_LFPAAAAAA1.nwb"), ("alpha_.nwb", "alpha_BANDAAAAA1.nwb"),
                  ("alpha_.nwb", "alpha_V1LFPAAAA1.nwb"), ("alpha_.nwb", "alpha_V1BANDAAA1.nwb"),
                  ("beta_.nwb", "beta_SPAREAAAA1.nwb"), ("beta_.nwb", "beta_GONEAAAAA1.nwb")):
    analysis(nwb, name)
analysis("alpha_.nwb", "alpha_FLATAAAAA1.nwb", flat=True)
(A & {"analysis_file_name": "beta_GONEAAAAA1.nwb"}).delete_quick()  # row gone, external row and file stay

sgc.ProbeType.insert1(dict(probe_type="conf-2shank", probe_description="two shanks", manufacturer="", num_shanks=2),
                      skip_duplicates=True)
for pid, shanks in (("probe1", {0: [0, 1], 1: [2, 3]}), ("probe2", {0: [0]})):
    sgc.Probe.insert1(dict(probe_id=pid, probe_type="conf-2shank", contact_side_numbering="True"),
                      skip_duplicates=True)
    for sh, els in shanks.items():
        sgc.Probe.Shank.insert1(dict(probe_id=pid, probe_shank=sh), skip_duplicates=True)
        for e in els:
            sgc.Probe.Electrode.insert1(dict(probe_id=pid, probe_shank=sh, probe_electrode=e, rel_x=float(e)),
                                        skip_duplicates=True)
region = sgc.BrainRegion.fetch_add(region_name="CA1")
sgc.ElectrodeGroup.insert1(dict(nwb_file_name="alpha_.nwb", electrode_group_name="0", region_id=region,
                                probe_id="probe1", description="tetrode"), **DIRECT)
for e in (0, 1):  # only shank 0's electrodes are used downstream
    sgc.Electrode.insert1(dict(nwb_file_name="alpha_.nwb", electrode_group_name="0", electrode_id=e,
                               probe_id="probe1", probe_shank=0, probe_electrode=e, region_id=region,
                               name=str(e), filtering="none", contacts=""), **DIRECT)

# LFP v0 (spyglass.common): LFPBandSelection names its IntervalList through target_interval_list_name
sgc.LFPSelection.insert1(dict(nwb_file_name="alpha_.nwb"), skip_duplicates=True)
for e in (0, 1):
    sgc.LFPSelection.LFPElectrode.insert1(dict(nwb_file_name="alpha_.nwb", electrode_group_name="0", electrode_id=e),
                                          skip_duplicates=True)
sgc.LFP.insert1(dict(nwb_file_name="alpha_.nwb", interval_list_name="lfp valid times", filter_name="theta 5-11 Hz",
                     filter_sampling_rate=1000, analysis_file_name="alpha_LFPAAAAAA1.nwb", lfp_object_id="lfp-1",
                     lfp_sampling_rate=1000.0), **DIRECT)
band = dict(nwb_file_name="alpha_.nwb", filter_name="theta 5-11 Hz", filter_sampling_rate=1000,
            target_interval_list_name="target A", lfp_band_sampling_rate=100)
sgc.LFPBandSelection.insert1(dict(band, min_interval_len=1.0), skip_duplicates=True)
sgc.LFPBandSelection.LFPBandElectrode.insert1(dict(band, electrode_group_name="0", electrode_id=0,
                                                   reference_elect_id=-1), skip_duplicates=True)
sgc.LFPBand.insert1(dict(band, analysis_file_name="alpha_BANDAAAAA1.nwb", interval_list_name="band valid times",
                         filtered_data_object_id="band-1"), **DIRECT)

# LFP v1: LFPOutput is a merge table; LFPBandSelection names it through lfp_merge_id
grp = dict(nwb_file_name="alpha_.nwb", lfp_electrode_group_name="lfp group")
lfp_electrode.LFPElectrodeGroup.insert1(grp, skip_duplicates=True)
for e in (0, 1):
    lfp_electrode.LFPElectrodeGroup.LFPElectrode.insert1(dict(grp, electrode_group_name="0", electrode_id=e),
                                                         skip_duplicates=True)
sel = dict(grp, target_interval_list_name="v1 target", filter_name="theta 5-11 Hz", filter_sampling_rate=1000)
lfp_v1.LFPSelection.insert1(sel, skip_duplicates=True)
lfp_v1.LFPV1.insert1(dict(sel, analysis_file_name="alpha_V1LFPAAAA1.nwb", interval_list_name="v1 lfp valid times",
                          lfp_object_id="v1-lfp", lfp_sampling_rate=1000.0), **DIRECT)
lfp_merge.LFPOutput._merge_insert([sel], part_name="LFPV1", skip_duplicates=True)
merge_id = (lfp_merge.LFPOutput.LFPV1 & sel).fetch1("merge_id")
bsel = dict(lfp_merge_id=merge_id, filter_name="theta 5-11 Hz", filter_sampling_rate=1000,
            nwb_file_name="alpha_.nwb", target_interval_list_name="v1 band target", lfp_band_sampling_rate=100)
band_v1.LFPBandSelection.insert1(bsel, skip_duplicates=True)
band_v1.LFPBandSelection.LFPBandElectrode.insert1(dict(bsel, lfp_electrode_group_name="lfp group",
                                                       electrode_group_name="0", electrode_id=0,
                                                       reference_elect_id=-1), skip_duplicates=True)
band_v1.LFPBandV1.insert1(dict(bsel, analysis_file_name="alpha_V1BANDAAA1.nwb",
                               interval_list_name="v1 band valid times", lfp_band_object_id="v1-band"), **DIRECT)

# the lab's past: every external row so far is old ...
conn = dj.conn()
for db in ("common_nwbfile",):
    for store in ("raw", "analysis"):
        conn.query(f"UPDATE `{db}`.`~external_{store}` SET `timestamp` = NOW() - INTERVAL {int(OLD_H)} HOUR")
# ... and one insert is in flight now: its file uploaded to the store, its AnalysisNwbfile row not yet in
inflight = Path(A.get_abs_path("beta_INFLIGHTAA1.nwb"))
inflight.write_bytes(b"in flight" * 10)
A()._ext_tbl.upload_filepath(str(inflight))
files["beta_INFLIGHTAA1.nwb"] = str(inflight)


def disk(rel, data, hours):
    p = Path(analysis_dir) / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    age(p, hours)


disk("beta/beta_ORPHANAAA1.nwb", b"x" * 50, OLD_H)  # written, never registered
disk("alpha/alpha_EMPTYAAAA1.nwb", b"", OLD_H)  # a name reservation (Spyglass touches one) never filled
disk("beta/beta_NEWAAAAAA1.nwb", b"y" * 30, 0.1)  # being written now
disk("alpha/notes.txt", b"lab notes", OLD_H)  # not an NWB file
disk("backup_2022/alpha_LFPAAAAAA1.nwb", Path(files["alpha_LFPAAAAAA1.nwb"]).read_bytes(), OLD_H)  # stray copy
# a stray copy at the flat (legacy) place of a file Spyglass tracks in its subfolder
disk("alpha_BANDAAAAA1.nwb", Path(files["alpha_BANDAAAAA1.nwb"]).read_bytes(), OLD_H)

# a paper's exports, logged by Spyglass itself while an analysis fetches (ExportSelection.Table)
from spyglass.common.common_usage import ExportSelection

es = ExportSelection()
es.start_export(os.environ["LAB_PAPER"], "fig1")
(sgc.LFPBand & {"nwb_file_name": "alpha_.nwb"}).fetch()
(sgc.IntervalList & {"interval_list_name": "orphan B1"}).fetch("valid_times")
es.stop_export()
es.start_export(os.environ["LAB_PAPER"], "fig2")
(sgc.Electrode & "electrode_id = 0").fetch("KEY")
(sgc.Raw & {"nwb_file_name": "beta_.nwb"}).fetch()
es.stop_export()
es.start_export(os.environ["LAB_PAPER"], "fig3")  # keyed by a uuid: Spyglass logs it as X'<hex>'
(band_v1.LFPBandSelection & {"lfp_merge_id": merge_id}).fetch()
(lfp_merge.LFPOutput & {"merge_id": merge_id}).fetch()
es.stop_export()

print(json.dumps(dict(analysis_dir=analysis_dir, raw_dir=raw_dir, files=files, merge_id=str(merge_id),
                      schemas=sorted(s for s in dj.list_schemas() if s.startswith(("common_", "lfp_"))),
                      import_s=t_import, build_s=time.time() - t0)))
"""

ASK = _PRELUDE + r"""
from spyglass.common._nwbfile_cleanup import CleanupPolicy
from spyglass.utils.dj_graph import RestrGraph


def keys(expr):
    return json.loads(json.dumps(expr.fetch("KEY"), default=str))


A = sgc.AnalysisNwbfile()
out = {}
# IntervalList.cleanup(dry_run=True) returns the rows it would delete
out["interval_orphans"] = keys(sgc.IntervalList().cleanup(dry_run=True))
# AnalysisNwbfile.cleanup deletes get_orphans() (common table, no custom tables registered)
out["analysis_orphans"] = keys(A.get_orphans())
out["custom_analysis_tables"] = [t.full_table_name for t in sgc.AnalysisRegistry().all_classes]
# cleanup_external(dry_run=True) returns unused(); Nwbfile.cleanup deletes the raw store's unused()
out["unused_external"] = {
    "analysis": sorted(A.cleanup_external(dry_run=True).fetch("filepath")),
    "raw": sorted(sgc.common_nwbfile.schema.external["raw"].unused().fetch("filepath")),
}
# the untracked-file plan AnalysisNwbfile.cleanup builds and executes; built here, never executed
plan = A._build_untracked_file_plan(list(sgc.AnalysisRegistry().all_classes),
                                    policy=CleanupPolicy(min_file_age_hours=float(os.environ["LAB_AGE_LIMIT_H"])))
out["file_plan"] = {
    "delete": sorted(str(p) for p in plan.files_to_delete),
    "untracked": sorted(str(p) for p in plan.untracked_files),
    "empty": sorted(str(p) for p in plan.empty_files),
    "deferred": sorted(str(p) for p in plan.deferred_recent_files),
    "tracked_paths": sorted(str(p) for p in plan.tracked_files),
}
out["export"] = {}
for case, leaves in json.loads(os.environ["LAB_EXPORT_CASES"]).items():
    t = time.time()
    g = RestrGraph(seed_table=A, direction="up", cascade=True, include_files=True,
                   leaves=[{"table_name": ".".join(f"`{p}`" for p in t.split(".", 1)), "restriction": r}
                           for t, r in leaves])
    out["export"][case] = {ft.full_table_name.replace("`", ""): keys(ft) for ft in g.restr_ft}
    # the analysis files the export ships (Export.make adds RestrGraph.file_paths)
    out.setdefault("export_files", {})[case] = sorted(str(Path(p).relative_to(analysis_dir)) for p in g.file_paths)
    out.setdefault("export_case_s", {})[case] = time.time() - t
from spyglass.common.common_usage import ExportSelection

for case, analysis_id in json.loads(os.environ["LAB_PAPER_CASES"]).items():
    t = time.time()
    key = {"paper_id": os.environ["LAB_PAPER"], **({"analysis_id": analysis_id} if analysis_id else {})}
    g = ExportSelection().get_restr_graph(key)  # what Export.make cascades for the paper
    out["export"][case] = {ft.full_table_name.replace("`", ""): keys(ft) for ft in g.restr_ft
                           if "~" not in ft.full_table_name}
    out["export_files"][case] = sorted(str(Path(p).relative_to(analysis_dir)) for p in g.file_paths)
    out["export_case_s"][case] = time.time() - t
out["import_s"] = t_import
out["ask_s"] = time.time() - t0
print(json.dumps(out))
"""


@dataclass
class SpyglassLab:
    """The built lab: where its files are, djtui's config for it, and Spyglass's answers."""

    server: Any
    base: Path
    analysis_dir: Path
    raw_dir: Path
    config: Path
    files: dict[str, str]
    merge_id: str
    schemas: list[str]
    spyglass: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    # -- djtui, as a lab runs it -------------------------------------------------------

    def djtui(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The ``djtui`` command (the console script beside this Python) with the lab's config; the
        password reaches it through ``database.password_env`` only."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "DJTUI_", "PYTHON"))}
        env.update(HOME=str(self.base / "home"), **{PASSWORD_ENV: self.server.password.reveal()})
        script = Path(sys.executable).with_name("djtui")
        cmd = [str(script)] if script.exists() else [sys.executable, "-m", "djtui"]
        t = time.perf_counter()
        res = subprocess.run([*cmd, "--config", str(self.config), *args], env=env, cwd=self.base,
                             capture_output=True, text=True, timeout=300)
        self.timings[f"djtui {' '.join(args[:2])}"] = self.timings.get(f"djtui {' '.join(args[:2])}", 0.0) + (
            time.perf_counter() - t)
        if check and res.returncode != 0:
            raise AssertionError(f"djtui {' '.join(args)} exited {res.returncode}:\n{res.stdout[-3000:]}\n"
                                 f"{res.stderr[-3000:]}")
        return res

    def djtui_json(self, *args: str) -> Any:
        return json.loads(self.djtui(*args, "--json").stdout)

    def scan(self, source: str) -> list[dict]:
        """The items of ``djtui orphans scan --source SOURCE --json``."""
        data = self.djtui_json("orphans", "scan", "--source", source)
        assert [s["name"] for s in data["sources"]] == [source], data["sources"]
        return data["items"]

    def rel(self, path: str | Path) -> str:
        return Path(path).relative_to(self.analysis_dir).as_posix()


def _djtui_config(server: Any, base: Path, analysis_dir: Path, raw_dir: Path) -> Path:
    text = f"""\
database:
  host: 127.0.0.1
  port: {server.port}
  user: {server.settings.user}
  password_env: {PASSWORD_ENV}
  use_datajoint_config: false
state_dir: {base}/djtui-state
# the stores Spyglass sets in dj.config (SpyglassConfig._dj_stores): filepath stores on its folders
stores:
  raw: {{protocol: file, location: {raw_dir}}}
  analysis: {{protocol: file, location: {analysis_dir}}}
orphans:
  tables: [common_interval.interval_list, common_nwbfile.analysis_nwbfile]
  grace_hours: 1
  min_file_age_hours: {AGE_LIMIT_H}
  directories:
    - {{path: {analysis_dir}, table: common_nwbfile.analysis_nwbfile, column: analysis_file_name}}
export:
  schema_prefixes: [{', '.join(SPYGLASS_PREFIXES)}]
"""
    path = base / "djtui.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def _tool_env(server: Any, base: Path) -> dict[str, str]:
    env = server_env(server, SPYGLASS_BASE_DIR=str(base / "spyglass"), HOME=str(base / "home"),
                     LAB_OLD_H=str(OLD_H), LAB_AGE_LIMIT_H=str(AGE_LIMIT_H),
                     LAB_EXPORT_CASES=json.dumps(EXPORT_CASES), LAB_PAPER=PAPER,
                     LAB_PAPER_CASES=json.dumps(PAPER_CASES))
    # no one's Spyglass/kachery/DLC folders leak in: the lab's base decides every folder
    return {k: v for k, v in env.items()
            if not k.startswith(("SPYGLASS_", "KACHERY_", "DLC_", "MOSEQ_")) or k == "SPYGLASS_BASE_DIR"}


def _in_lab(column: str) -> tuple[str, list[str]]:
    """A SQL condition (and its arguments) selecting the lab's schemas by ``column``."""
    return ("(" + " OR ".join([f"{column} LIKE %s"] * len(SPYGLASS_PREFIXES)) + ")",
            [p.replace("_", "\\_") + "%" for p in SPYGLASS_PREFIXES])


def _drop_schemas(server: Any) -> None:
    """Drop what Spyglass declared (its schema names are fixed: ``common_*``, ``lfp_*``), built or half built."""
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            cond, args = _in_lab("schema_name")
            cur.execute(f"SELECT schema_name FROM information_schema.schemata WHERE {cond}", args)
            for (db,) in cur.fetchall():
                cur.execute(f"DROP DATABASE `{db}`")
    finally:
        conn.close()


@pytest.fixture(scope="session")
def spyglass_lab(server, tmp_path_factory) -> Iterator[SpyglassLab]:
    """Build the lab with Spyglass once per session, then ask Spyglass its questions once."""
    base = tmp_path_factory.mktemp("spyglass_lab")
    (base / "home").mkdir()
    env = _tool_env(server, base)
    timings: dict[str, float] = {}
    answers: dict[str, Any] = {}
    try:
        t = time.perf_counter()
        built = run_tool("spyglass", BUILD, env=env, cwd=base)
        timings.update(build_wall_s=time.perf_counter() - t, build_in_tool_s=built["build_s"],
                       import_s=built["import_s"])
        lab = SpyglassLab(server=server, base=base, analysis_dir=Path(built["analysis_dir"]),
                          raw_dir=Path(built["raw_dir"]), config=Path(), files=built["files"],
                          merge_id=built["merge_id"], schemas=built["schemas"], timings=timings)
        lab.config = _djtui_config(server, base, lab.analysis_dir, lab.raw_dir)
        t = time.perf_counter()
        answers = lab.spyglass = run_tool("spyglass", ASK, env=env, cwd=base)
        timings.update(ask_wall_s=time.perf_counter() - t)
        yield lab
    finally:
        timings.update({f"restr_graph {c}": s for c, s in answers.get("export_case_s", {}).items()})
        print(f"\nspyglass lab timings (s): {json.dumps({k: round(v, 2) for k, v in timings.items()})}")
        _drop_schemas(server)
        shutil.rmtree(base, ignore_errors=True)


# -- the truth, from the server alone ------------------------------------------------------


def _text(v: Any) -> str:
    """A key value as text both tools agree on (a DataJoint ``uuid`` is BINARY(16) on the server)."""
    if isinstance(v, bytes | bytearray):
        return str(uuid.UUID(bytes=bytes(v))) if len(v) == 16 else bytes(v).decode()
    return str(v)


def key_tuple(values: Any) -> tuple[str, ...]:
    return tuple(_text(v) for v in values)


def primary_keys(conn: Any) -> dict[str, tuple[str, ...]]:
    """db.table -> its primary key columns, for every table of the lab's schemas."""
    with conn.cursor() as cur:
        cond, args = _in_lab("table_schema")
        cur.execute("SELECT table_schema, table_name, column_name FROM information_schema.key_column_usage "
                    f"WHERE constraint_name = 'PRIMARY' AND {cond} ORDER BY table_schema, table_name, ordinal_position",
                    args)
        out: dict[str, list[str]] = {}
        for s, t, c in cur.fetchall():
            out.setdefault(f"{s}.{t}", []).append(c)
    return {t: tuple(c) for t, c in out.items()}


def foreign_keys(conn: Any) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(child, parent, [(child column, parent column)]) for every foreign key of the lab's schemas."""
    with conn.cursor() as cur:
        cond, args = _in_lab("table_schema")
        cur.execute("SELECT table_schema, table_name, constraint_name, column_name, referenced_table_schema, "
                    "referenced_table_name, referenced_column_name FROM information_schema.key_column_usage "
                    f"WHERE referenced_table_name IS NOT NULL AND {cond} "
                    "ORDER BY table_schema, table_name, constraint_name, ordinal_position", args)
        fks: dict[tuple[str, str, str], list] = {}
        for s, t, c, col, rs, rt, rc in cur.fetchall():
            fks.setdefault((f"{s}.{t}", c, f"{rs}.{rt}"), []).append((col, rc))
    return [(child, parent, cols) for (child, _c, parent), cols in fks.items()]


def rows(conn: Any, table: str, columns: list[str]) -> list[tuple]:
    db, t = table.split(".", 1)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM `{db}`.`{t}`")
        return list(cur.fetchall())


def truth_orphan_rows(conn: Any, table: str) -> set[tuple[str, ...]]:
    """Keys of ``table``'s rows that no row of any table references through any foreign key."""
    pk = primary_keys(conn)[table]
    used: set[tuple[str, ...]] = set()
    for child, parent, cols in foreign_keys(conn):
        if parent != table:
            continue
        by_parent = dict((p, c) for c, p in cols)
        for r in rows(conn, child, [by_parent[c] for c in pk]):
            if None not in r:
                used.add(key_tuple(r))
    return {key_tuple(r) for r in rows(conn, table, list(pk))} - used


def master_of(full: str, tables: set[str]) -> str | None:
    """DataJoint's rule (``datajoint.utils.get_master``): ``master__part`` in the master's schema."""
    db, name = full.split(".", 1)
    cut = name.rfind("__")
    if cut <= 0 or not name[:cut].strip("_#~"):
        return None
    master = f"{db}.{name[:cut]}"
    return master if master in tables else None


def truth_export(conn: Any, leaves: list[tuple[str, str]]) -> dict[str, set[tuple[str, ...]]]:
    """The rows an export of ``leaves`` needs, per table: the leaves' rows, every row they reference
    through any foreign key (renamed or not, ``~external`` rows included), and with every master row
    all its part rows (a part belongs to its master by name), until nothing grows."""
    pks = primary_keys(conn)
    fks = foreign_keys(conn)
    tables = set(pks)
    data: dict[str, list[dict[str, Any]]] = {}

    def table_rows(t: str) -> list[dict[str, Any]]:
        if t not in data:
            db, name = t.split(".", 1)
            with conn.cursor() as cur:
                cur.execute(f"SELECT * FROM `{db}`.`{name}`")
                names = [d[0] for d in cur.description]
                data[t] = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        return data[t]

    keys: dict[str, set[tuple[str, ...]]] = {t: set() for t in tables}
    for t, restr in leaves:
        db, name = t.split(".", 1)
        with conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(f'`{c}`' for c in pks[t])} FROM `{db}`.`{name}` WHERE {restr}")
            keys[t] |= {key_tuple(r) for r in cur.fetchall()}
    parts = {t: m for t in tables if (m := master_of(t, tables))}
    grew = True
    while grew:
        grew = False
        for child, parent, cols in fks:
            if not keys.get(child) or parent not in keys:
                continue
            by_parent = dict((p, c) for c, p in cols)
            for r in table_rows(child):
                if key_tuple(r[c] for c in pks[child]) in keys[child]:
                    values = [r[by_parent[c]] for c in pks[parent]]
                    if None not in values and (k := key_tuple(values)) not in keys[parent]:
                        keys[parent].add(k)
                        grew = True
        for part, master in parts.items():
            if not keys[master]:
                continue
            mpk = pks[master]
            for r in table_rows(part):
                if key_tuple(r[c] for c in mpk) in keys[master] and (
                        k := key_tuple(r[c] for c in pks[part])) not in keys[part]:
                    keys[part].add(k)
                    grew = True
    return {t: k for t, k in keys.items() if k}


def paper_log(conn: Any, paper: str, analysis: str | None = None) -> list[tuple[str, str]]:
    """The (db.table, restriction) leaves Spyglass logged for a paper, read from its tables by SQL."""
    extra, args = (" AND e.analysis_id = %s", [paper, analysis]) if analysis else ("", [paper])
    with conn.cursor() as cur:
        cur.execute("SELECT t.table_name, t.restriction FROM common_usage.export_selection e "
                    "JOIN common_usage.export_selection__table t USING (export_id) "
                    f"WHERE e.paper_id = %s{extra} ORDER BY t.table_id", args)
        return [(name.replace("`", ""), restr) for name, restr in cur.fetchall()]


def djtui_export_keys(server: Any, leaves: list[tuple[str, str]] | None = None, *, paper: str | None = None,
                      analysis: str | None = None) -> dict[str, set[tuple[str, ...]]]:
    """The key sets of ``djtui export``'s cascade (the service ``export plan`` and ``export write``
    run), per table, for the tables it reaches with at least one row; the leaves given, or those
    djtui reads from Spyglass's export log for ``paper`` (``--paper``, ``--analysis``)."""
    from djtui.services.database import Database
    from djtui.services.export import ExportSession, load_graph, paper_leaves, parse_leaf

    db = Database(server.settings)
    try:
        graph = load_graph(db, SPYGLASS_PREFIXES)
        parsed = [parse_leaf(f"{t}:{r}") for t, r in leaves or []]
        if paper:
            parsed += paper_leaves(db, paper, analysis)
        with ExportSession(db, graph, parsed) as session:
            session.run()
            out = {t: {key_tuple(k) for k in session.keys(t)} for t in session.plan.tables}
    finally:
        db.close()
    return {t: k for t, k in out.items() if k}


def spyglass_keys(answer: list[dict], pk: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Spyglass's ``fetch('KEY')`` dicts as key tuples in the table's primary-key order."""
    return {tuple(str(d[c]) for c in pk) for d in answer}
