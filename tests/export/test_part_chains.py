"""A master's WHOLE parts are exported, whatever chain of foreign keys links a part to its master.

Spyglass's ``Probe.Electrode`` references ``Probe.Shank``, which references ``Probe``: the electrode
part reaches its master only through another part. A part belongs to its master by DataJoint's
naming (``master__part``, the master's tier prefix kept), so an exported probe carries every shank
and every electrode, also those nothing downstream references (issue 12, defect 3).
"""

from __future__ import annotations

import json
import subprocess
import sys

import networkx as nx
import pytest
from textual.widgets import DataTable, Input, OptionList

from djtui.config import parse_config
from djtui.domain.cascade import ForeignKey, Leaf, TableInfo, build_graph, plan_cascade
from djtui.services.export import ExportSession, load_graph
from tests.export.conftest import config_text

PROBES = {"A": 2, "B": 3}  # probe -> shanks; every shank has 3 electrodes, every electrode 2 contacts


def _make_probe_lab(conn, s: str) -> None:
    """The Spyglass shape with DataJoint names: ``probe`` and its parts, chained part to part, three deep."""
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{s}`")
        cur.execute(f"CREATE TABLE `{s}`.`#probe_type` (probe_type varchar(32) NOT NULL, PRIMARY KEY (probe_type))")
        cur.execute(f"CREATE TABLE `{s}`.`probe` (probe_id varchar(32) NOT NULL, probe_type varchar(32) NOT NULL, "
                    f"PRIMARY KEY (probe_id), FOREIGN KEY (probe_type) REFERENCES `{s}`.`#probe_type` (probe_type))")
        cur.execute(f"CREATE TABLE `{s}`.`probe__shank` (probe_id varchar(32) NOT NULL, probe_shank int NOT NULL, "
                    f"PRIMARY KEY (probe_id, probe_shank), "
                    f"FOREIGN KEY (probe_id) REFERENCES `{s}`.`probe` (probe_id))")
        # -> Probe.Shank only, NOT -> Probe
        cur.execute(f"CREATE TABLE `{s}`.`probe__electrode` (probe_id varchar(32) NOT NULL, "
                    f"probe_shank int NOT NULL, probe_electrode int NOT NULL, rel_x float, "
                    f"PRIMARY KEY (probe_id, probe_shank, probe_electrode), FOREIGN KEY (probe_id, probe_shank) "
                    f"REFERENCES `{s}`.`probe__shank` (probe_id, probe_shank))")
        # three deep: -> Probe.Electrode only
        cur.execute(f"CREATE TABLE `{s}`.`probe__contact` (probe_id varchar(32) NOT NULL, "
                    f"probe_shank int NOT NULL, probe_electrode int NOT NULL, contact int NOT NULL, "
                    f"PRIMARY KEY (probe_id, probe_shank, probe_electrode, contact), "
                    f"FOREIGN KEY (probe_id, probe_shank, probe_electrode) "
                    f"REFERENCES `{s}`.`probe__electrode` (probe_id, probe_shank, probe_electrode))")
        # downstream: an imported table that references some electrodes, a manual one the probe only
        cur.execute(f"CREATE TABLE `{s}`.`_lfp_electrode` (lfp_id int NOT NULL, probe_id varchar(32) NOT NULL, "
                    f"probe_shank int NOT NULL, probe_electrode int NOT NULL, "
                    f"PRIMARY KEY (lfp_id, probe_id, probe_shank, probe_electrode), "
                    f"FOREIGN KEY (probe_id, probe_shank, probe_electrode) "
                    f"REFERENCES `{s}`.`probe__electrode` (probe_id, probe_shank, probe_electrode))")
        cur.execute(f"CREATE TABLE `{s}`.`implant` (implant_id int NOT NULL, probe_id varchar(32) NOT NULL, "
                    f"PRIMARY KEY (implant_id), FOREIGN KEY (probe_id) REFERENCES `{s}`.`probe` (probe_id))")
        cur.execute(f"INSERT INTO `{s}`.`#probe_type` VALUES ('tetrode'), ('silicon')")
        cur.execute(f"INSERT INTO `{s}`.`probe` VALUES ('A', 'tetrode'), ('B', 'silicon')")
        for probe, shanks in PROBES.items():
            for sh in range(shanks):
                cur.execute(f"INSERT INTO `{s}`.`probe__shank` VALUES (%s, %s)", (probe, sh))
                for el in range(3):
                    cur.execute(f"INSERT INTO `{s}`.`probe__electrode` VALUES (%s, %s, %s, %s)",
                                (probe, sh, el, 0.5 * el))
                    cur.executemany(f"INSERT INTO `{s}`.`probe__contact` VALUES (%s, %s, %s, %s)",
                                    [(probe, sh, el, c) for c in range(2)])
        # only electrode 0 of shank 0 of each probe is used downstream
        cur.execute(f"INSERT INTO `{s}`.`_lfp_electrode` VALUES (1, 'A', 0, 0), (2, 'B', 0, 0)")
        cur.execute(f"INSERT INTO `{s}`.`implant` VALUES (10, 'A'), (11, 'B')")
    conn.commit()


def _expected_probe_a(s: str) -> dict[str, int]:
    return {f"{s}.#probe_type": 1, f"{s}.probe": 1, f"{s}.probe__shank": 2, f"{s}.probe__electrode": 6,
            f"{s}.probe__contact": 12}


def _cli(cfg, *args):
    return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "export", *args],
                          capture_output=True, text=True, timeout=300)


def test_part_chains_follow_naming_not_the_direct_foreign_key():
    """Pure: the electrode part's chain to its master goes through the shank part; a part of
    another master is completed through its own master's foreign key only."""
    from djtui.domain.cascade import part_chains

    pk = {"d.probe": ("p",), "d.probe__shank": ("p", "s"), "d.probe__electrode": ("p", "s", "e"),
          "d.probe__contact": ("p", "s", "e", "c"), "d.other": ("o",), "d.other__x": ("o", "p", "s", "e")}
    fks = [ForeignKey("f1", "d.probe__shank", "d.probe", (("p", "p"),)),
           ForeignKey("f2", "d.probe__electrode", "d.probe__shank", (("p", "p"), ("s", "s"))),
           ForeignKey("f3", "d.probe__contact", "d.probe__electrode", (("p", "p"), ("s", "s"), ("e", "e"))),
           ForeignKey("f4", "d.other__x", "d.other", (("o", "o"),)),
           ForeignKey("f5", "d.other__x", "d.probe__electrode", (("p", "p"), ("s", "s"), ("e", "e")))]
    g = build_graph([TableInfo(t, k) for t, k in pk.items()], fks)
    assert [[fk.name for fk in c] for c in part_chains(g, "d.probe__electrode")] == [["f1", "f2"]]
    assert [[fk.name for fk in c] for c in part_chains(g, "d.probe__contact")] == [["f1", "f2", "f3"]]
    assert [[fk.name for fk in c] for c in part_chains(g, "d.other__x")] == [["f4"]]
    assert part_chains(g, "d.probe") == []
    plan = plan_cascade(g, [Leaf("d.probe", "p = 1")])
    assert set(plan.tables) == {"d.probe", "d.probe__shank", "d.probe__electrode", "d.probe__contact"}
    assert plan.step("d.probe__contact").from_master == (tuple(fks[:3]),)
    assert nx.is_directed_acyclic_graph(g)


def test_part_chains_renamed_hops_other_routes_and_unlinked_parts():
    from djtui.domain.cascade import part_chains

    pk = {"d.#rig": ("r",), "d.#rig__port": ("h", "p"), "d.#rig__pin": ("hr", "pp", "n"),
          "d.#rig__note": ("x",), "d.notebook": ("x",), "d.#rig__loose": ("z",), "d.rig__fake": ("r",)}
    fks = [ForeignKey("a1", "d.#rig__port", "d.#rig", (("h", "r"),)),
           ForeignKey("a2", "d.#rig__pin", "d.#rig__port", (("hr", "h"), ("pp", "p"))),  # renamed hop
           ForeignKey("a3", "d.notebook", "d.#rig", (("r2", "r"),)),
           ForeignKey("a4", "d.#rig__note", "d.notebook", (("x", "x"),)),  # reaches its master through another table
           ForeignKey("a5", "d.rig__fake", "d.#rig", (("r", "r"),))]  # `rig__` is no part of `#rig`: tiers differ
    g = build_graph([TableInfo(t, k) for t, k in pk.items()], fks)
    assert [[fk.name for fk in c] for c in part_chains(g, "d.#rig__pin")] == [["a1", "a2"]]
    assert [[fk.name for fk in c] for c in part_chains(g, "d.#rig__note")] == [["a3", "a4"]]
    assert part_chains(g, "d.#rig__loose") == []  # nothing links it to its master: no rows can be chosen
    assert part_chains(g, "d.rig__fake") == []  # its master would be `d.rig`, which does not exist
    plan = plan_cascade(g, [Leaf("d.#rig", "r = 1")])
    assert set(plan.tables) == {"d.#rig", "d.#rig__port", "d.#rig__pin", "d.#rig__note", "d.notebook"}
    assert plan.step("d.notebook").from_master == ()
    assert [[fk.name for fk in c] for c in plan.step("d.#rig__note").from_master] == [["a3", "a4"]]
    # without completion (DataJoint's trace): the master alone
    assert plan_cascade(g, [Leaf("d.#rig", "r = 1")], complete_parts=False).tables == ("d.#rig",)


@pytest.mark.parametrize("leaf", ["_lfp_electrode:lfp_id = 1", "implant:implant_id = 10", "probe:probe_id = 'A'"])
def test_whole_parts_of_an_exported_probe(admin_conn, schema, db, leaf):
    _make_probe_lab(admin_conn, schema)
    graph = load_graph(db, [schema])
    table, _, restr = leaf.partition(":")
    with ExportSession(db, graph, [Leaf(f"{schema}.{table}", restr)]) as session:
        result = session.run()
        assert session.keys(f"{schema}.probe__shank") == {("A", 0), ("A", 1)}
        assert session.keys(f"{schema}.probe__electrode") == {("A", sh, el) for sh in range(2) for el in range(3)}
        assert session.keys(f"{schema}.probe__contact") == {
            ("A", sh, el, c) for sh in range(2) for el in range(3) for c in range(2)}
        for t, n in _expected_probe_a(schema).items():
            assert result.counts[t] == n, t
        sources = {c.table: c.sources for c in result.table_counts()}
        assert f"parts of {schema}.probe (through {schema}.probe__shank)" in sources[f"{schema}.probe__electrode"]


def test_cli_plan_write_verify_carry_every_part_row(server, admin_conn, schema, tmp_path):
    _make_probe_lab(admin_conn, schema)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path))
    cfg.chmod(0o600)
    leaf = f"{schema}._lfp_electrode:lfp_id = 1"
    out = _cli(cfg, "plan", "--leaf", leaf, "--prefix", schema, "--json")
    assert out.returncode == 0, out.stderr
    plan = {p["table"]: p for p in json.loads(out.stdout)}
    assert {t: p["rows"] for t, p in plan.items()} == {f"{schema}._lfp_electrode": 1, **_expected_probe_a(schema)}
    assert f"parts of {schema}.probe" in plan[f"{schema}.probe__electrode"]["restriction"]
    out = _cli(cfg, "write", "--leaf", leaf, "--prefix", schema, "--format", "sql", "--out", str(tmp_path / "x"))
    assert out.returncode == 0, out.stderr
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert {t["table"]: t["rows"] for t in manifest["tables"]} == {t: p["rows"] for t, p in plan.items()}
    sql = (tmp_path / "x" / "export.sql").read_text()
    electrodes = sql[sql.index("INSERT INTO `probe__electrode`"):]
    electrodes = electrodes[:electrodes.index(";")]
    assert electrodes.count("\n('A',") == 6 and "'B'" not in electrodes
    out = _cli(cfg, "verify", str(tmp_path / "x"), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["ok"] is True


def _make_rig_lab(conn, s: str) -> None:
    """A lookup master whose part references it through a renamed key, and a part of that part."""
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{s}`")
        cur.execute(f"CREATE TABLE `{s}`.`#rig` (rig_name varchar(16) NOT NULL, PRIMARY KEY (rig_name))")
        # -> Rig.proj(host_rig='rig_name')
        cur.execute(f"CREATE TABLE `{s}`.`#rig__port` (host_rig varchar(16) NOT NULL, port_no int NOT NULL, "
                    f"PRIMARY KEY (host_rig, port_no), FOREIGN KEY (host_rig) REFERENCES `{s}`.`#rig` (rig_name))")
        cur.execute(f"CREATE TABLE `{s}`.`#rig__pin` (host_rig varchar(16) NOT NULL, port_no int NOT NULL, "
                    f"pin int NOT NULL, PRIMARY KEY (host_rig, port_no, pin), FOREIGN KEY (host_rig, port_no) "
                    f"REFERENCES `{s}`.`#rig__port` (host_rig, port_no))")
        # a computed master with a renamed part key too: the tier prefix `__` is kept in the part's name
        cur.execute(f"CREATE TABLE `{s}`.`session` (session_id int NOT NULL, recording_rig varchar(16) NOT NULL, "
                    f"PRIMARY KEY (session_id), FOREIGN KEY (recording_rig) REFERENCES `{s}`.`#rig` (rig_name))")
        cur.execute(f"INSERT INTO `{s}`.`#rig` VALUES ('r1'), ('r2')")
        cur.executemany(f"INSERT INTO `{s}`.`#rig__port` VALUES (%s, %s)", [(r, p) for r in ("r1", "r2")
                                                                             for p in range(3)])
        cur.executemany(f"INSERT INTO `{s}`.`#rig__pin` VALUES (%s, %s, %s)",
                        [(r, p, n) for r in ("r1", "r2") for p in range(3) for n in range(4)])
        cur.execute(f"INSERT INTO `{s}`.`session` VALUES (1, 'r2'), (2, 'r1')")
    conn.commit()


def test_renamed_key_to_the_master_and_a_part_of_it(admin_conn, schema, db):
    _make_rig_lab(admin_conn, schema)
    graph = load_graph(db, [schema])
    with ExportSession(db, graph, [Leaf(f"{schema}.session", "session_id = 1")]) as session:
        result = session.run()
        assert session.keys(f"{schema}.#rig") == {("r2",)}
        assert session.keys(f"{schema}.#rig__port") == {("r2", p) for p in range(3)}
        assert session.keys(f"{schema}.#rig__pin") == {("r2", p, n) for p in range(3) for n in range(4)}
        assert result.counts[f"{schema}.#rig__pin"] == 12


async def test_export_screen_counts_the_parts(server, admin_conn, schema, tmp_path):
    from djtui.tui.app import DjtuiApp
    from djtui.tui.screens.export import ExportScreen
    from tests.export.test_screen import _settle

    _make_probe_lab(admin_conn, schema)
    cfg = parse_config(config_text(server, tmp_path) +
                       f"export:\n  schema_prefixes: [{schema}]\n  out_dir: {tmp_path}/exports\n")
    app = DjtuiApp(config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await pilot.press("4")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ExportScreen)
        opts = screen.query_one("#export-tables", OptionList)
        opts.focus()
        opts.highlighted = [opts.get_option_at_index(i).id for i in range(opts.option_count)].index(
            f"{schema}._lfp_electrode")
        await pilot.pause()
        screen.query_one("#export-restriction", Input).focus()
        await pilot.press(*"lfp_id = 1")
        await pilot.pause(0.6)
        await _settle(app, pilot)
        await pilot.press("enter")
        await _settle(app, pilot)
        counts = screen.query_one("#export-counts", DataTable)
        got = {str(counts.get_row_at(i)[1]): int(counts.get_row_at(i)[0]) for i in range(counts.row_count)}
        assert got == {f"{schema}._lfp_electrode": 1, **_expected_probe_a(schema)}
