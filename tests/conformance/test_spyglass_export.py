"""Spyglass's ``RestrGraph`` against ``djtui export plan`` on the same leaves, table by table, key by key.

For each case of ``EXPORT_CASES`` both tools cascade the same leaves (a table and a SQL restriction)
up to every ancestor. djtui is held to the truth computed from the server's foreign keys (renamed or
not, ``~external`` rows included) and DataJoint's master/part naming (with a master row, all its part
rows), and Spyglass is compared with the same truth on the tables it exports (it leaves the
``~external`` tables to its file list). ``export plan --json`` gives the tables and their row
counts; the keys come from the same cascade service the command runs.
"""

from __future__ import annotations

import re

import pytest

from .spyglass_lab import (
    EXPORT_CASES,
    PAPER,
    PAPER_CASES,
    PAPER_TABLES,
    SpyglassLab,
    djtui_export_keys,
    key_tuple,
    paper_log,
    primary_keys,
    spyglass_keys,
    truth_export,
)


def _diff(name: str, got: dict[str, set], want: dict[str, set]) -> str:
    lines = []
    for t in sorted(set(got) | set(want)):
        g, w = got.get(t, set()), want.get(t, set())
        if g != w:
            lines.append(f"  {t}: {name} lacks {sorted(w - g)}, has extra {sorted(g - w)}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def truths(spyglass_lab: SpyglassLab) -> dict[str, dict[str, set]]:
    conn = spyglass_lab.server.connect()
    try:
        return {case: truth_export(conn, leaves) for case, leaves in EXPORT_CASES.items()}
    finally:
        conn.close()


def test_the_lab_holds_what_the_cases_need(truths):
    band = truths["lfp_band_v0"]
    # a master's parts are all there, even a part (Probe.Electrode) whose foreign key reaches the master
    # through another part (Probe.Shank) and whose shank-1 rows nothing downstream references
    assert band["common_device.probe__electrode"] == {("probe1", "0", "0"), ("probe1", "0", "1"),
                                                      ("probe1", "1", "2"), ("probe1", "1", "3")}
    # the parent reached only through a renamed foreign key (target_interval_list_name)
    assert ("alpha_.nwb", "target A") in band["common_interval.interval_list"]
    assert "lfp_merge.l_f_p_output" in truths["lfp_band_v1"]  # reached through lfp_merge_id -> merge_id


@pytest.mark.parametrize("case", sorted(EXPORT_CASES))
def test_export_plan_against_restr_graph(case: str, spyglass_lab: SpyglassLab, truths, admin_conn):
    leaves = EXPORT_CASES[case]
    truth = truths[case]

    pks = primary_keys(admin_conn)
    sg = {t: spyglass_keys(k, pks[t]) for t, k in spyglass_lab.spyglass["export"][case].items()}
    sg_truth = {t: k for t, k in truth.items() if not t.split(".", 1)[1].startswith("~")}
    # Spyglass 0.6.0's RestrGraph is right on every case here: it follows renamed foreign keys through
    # their alias nodes (attr_map), crosses merge tables, and adds a master's parts by the master's key.
    assert sg == sg_truth, f"Spyglass's RestrGraph for {case} is not the truth:\n{_diff('Spyglass', sg, sg_truth)}"

    args = [a for t, r in leaves for a in ("--leaf", f"{t}:{r}")]
    plan = spyglass_lab.djtui_json("export", "plan", *args)
    counts = {p["table"]: p["rows"] for p in plan if p["rows"]}
    keys = djtui_export_keys(spyglass_lab.server, leaves)
    assert {t: len(k) for t, k in keys.items()} == counts, "export plan and its cascade disagree"
    assert keys == truth, f"djtui's export of {case} is not the truth:\n{_diff('djtui', keys, truth)}"


@pytest.mark.parametrize("case", sorted(EXPORT_CASES))
def test_export_files_against_restr_graph(case: str, spyglass_lab: SpyglassLab, truths, admin_conn):
    """The stored files an export needs: the ``~external_raw``/``~external_analysis`` rows of the truth, by
    their filepath; ``djtui export files`` lists them, ``RestrGraph.file_paths`` the analysis ones."""
    truth: dict[str, set[str]] = {}
    with admin_conn.cursor() as cur:
        for store in ("raw", "analysis"):
            hashes = truths[case].get(f"common_nwbfile.~external_{store}", set())
            cur.execute(f"SELECT hash, filepath FROM `common_nwbfile`.`~external_{store}`")
            truth[store] = {fp for h, fp in cur.fetchall() if key_tuple([h]) in hashes}
            assert len(truth[store]) == len(hashes)

    args = [a for t, r in EXPORT_CASES[case] for a in ("--leaf", f"{t}:{r}")]
    listed = spyglass_lab.djtui_json("export", "files", *args)
    got = {store: {f["path"] for f in listed["files"] if f["store"] == store} for store in ("raw", "analysis")}
    assert all(f["exists"] and not f["problem"] for f in listed["files"]), listed
    assert got == truth

    # Spyglass lists the analysis files (raw files come from Export's own log, not from the graph)
    assert set(spyglass_lab.spyglass["export_files"][case]) == truth["analysis"]


@pytest.mark.parametrize("case", sorted(PAPER_CASES))
def test_paper_export_from_spyglass_log(case: str, spyglass_lab: SpyglassLab, admin_conn):
    """A paper's exports as Spyglass logged them (``ExportSelection.start_export``, fetches, ``stop_export``):
    ``djtui export plan --paper`` reads the same log as ``ExportSelection.get_restr_graph``."""
    analysis = PAPER_CASES[case]
    leaves = paper_log(admin_conn, PAPER, analysis)
    assert {t for t, _ in leaves} == (PAPER_TABLES[analysis] if analysis else set().union(*PAPER_TABLES.values()))
    if analysis == "fig3":
        assert all(re.search(r"merge_id\s*=\s*X'[0-9a-f]{32}'", r) for _, r in leaves), leaves
    truth = truth_export(admin_conn, leaves)

    pks = primary_keys(admin_conn)
    sg = {t: spyglass_keys(k, pks[t]) for t, k in spyglass_lab.spyglass["export"][case].items()}
    sg_truth = {t: k for t, k in truth.items() if not t.split(".", 1)[1].startswith("~")}
    assert sg == sg_truth, f"Spyglass's paper graph is not the truth:\n{_diff('Spyglass', sg, sg_truth)}"

    args = ["--paper", PAPER, *(["--analysis", analysis] if analysis else [])]
    plan = spyglass_lab.djtui_json("export", "plan", *args)
    counts = {p["table"]: p["rows"] for p in plan if p["rows"]}
    keys = djtui_export_keys(spyglass_lab.server, paper=PAPER, analysis=analysis)
    assert {t: len(k) for t, k in keys.items()} == counts, "export plan and its cascade disagree"
    assert keys == truth, f"djtui's export of the paper is not the truth:\n{_diff('djtui', keys, truth)}"
