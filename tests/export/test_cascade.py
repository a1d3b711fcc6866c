"""The cascade is exact: key sets on the server equal a brute-force row closure on random schemas."""

from __future__ import annotations

import random

import pytest

from djtui.domain.cascade import Leaf, master_of, plan_cascade
from djtui.services.export import ExportSession, load_graph, open_session
from tests.export import randgraph


def _leaf_rows(t: randgraph.RTable, mod: int, rem: int) -> set[tuple]:
    col = t.pk[-1]
    return {tuple(r[c] for c in t.pk) for r in t.rows if r[col] % mod == rem}


def _run_and_compare(db, tables, leaves_spec):
    by_name = {t.full: t for t in tables}
    leaves = [Leaf(name, f"{db.dialect.ident(by_name[name].pk[-1])} % {m} = {r}") for name, m, r in leaves_spec]
    leaf_rows: dict[str, set[tuple]] = {}
    for name, m, r in leaves_spec:
        leaf_rows.setdefault(name, set()).update(_leaf_rows(by_name[name], m, r))
    expected = randgraph.closure(tables, leaf_rows)
    prefixes = sorted({t.db for t in tables})
    graph = load_graph(db, prefixes)
    with open_session(db, graph, leaves) as session:
        result = session.run()
        for t in tables:
            got = session.keys(t.full) if t.full in session.plan.tables else set()
            assert got == expected[t.full], f"{t.full}: cascade {sorted(got)} != closure {sorted(expected[t.full])}"
            if t.full in session.plan.tables:
                assert result.counts[t.full] == len(expected[t.full])
    return result


@pytest.mark.parametrize("seed", range(6))
def test_cascade_equals_bruteforce_on_random_graphs(backend_lab, seed):
    """On MariaDB and on PostgreSQL (``backend_lab``): the same random schemas, the same closure."""
    rng = random.Random(seed)
    dbs = [f"{backend_lab.prefix}_a", f"{backend_lab.prefix}_b"]
    tables = randgraph.random_schema(rng, dbs, 12)
    randgraph.create(backend_lab.conn, tables, dbs, backend_lab.dialect)
    db = backend_lab.db
    assert any(len(t.fks) > 1 and t.fks[0][1] is t.fks[1][1] for t in tables) or seed > 2
    spec = []
    for _ in range(rng.randint(1, 4)):
        t = rng.choice(tables)
        spec.append((t.full, rng.randint(2, 3), rng.randint(0, 1)))
        if rng.random() < 0.4:  # a second leaf on the same table must not replace the first
            spec.append((t.full, 5, rng.randint(0, 4)))
    _run_and_compare(db, tables, spec)


def _fixed_schema(schema):
    """subject <- session (with a renamed second FK to subject) <- trial; session has parts."""
    s = randgraph.RTable(schema, "subject", ["c0"], ["v"])
    se = randgraph.RTable(schema, "session", ["c0", "c1"], ["v", "r1_0_c0"], identifying=True)
    se.fks = [(["c0"], s, ["c0"]), (["r1_0_c0"], s, ["c0"])]
    part = randgraph.RTable(schema, "session__probe", ["c0", "c1", "c2"], ["v", "r2_0_c0"],
                            master=se, identifying=True)
    other = randgraph.RTable(schema, "probe_type", ["c3"], ["v"])
    part.fks = [(["c0", "c1"], se, ["c0", "c1"]), (["r2_0_c0"], other, ["c3"])]
    s.rows = [{"c0": i, "v": "s"} for i in range(1, 5)]
    other.rows = [{"c3": i, "v": "p"} for i in range(1, 4)]
    se.rows = [{"c0": 1, "c1": 1, "v": "a", "r1_0_c0": 3}, {"c0": 1, "c1": 2, "v": "a", "r1_0_c0": None},
               {"c0": 2, "c1": 3, "v": "b", "r1_0_c0": 4}]
    part.rows = [{"c0": 1, "c1": 1, "c2": 1, "v": "x", "r2_0_c0": 2}, {"c0": 1, "c1": 1, "c2": 2, "v": "y",
                 "r2_0_c0": 3}, {"c0": 2, "c1": 3, "c2": 3, "v": "z", "r2_0_c0": 1}]
    return [s, other, se, part]


def test_renamed_fk_two_leaves_on_one_table_and_master_part(backend_lab):
    schema, db = backend_lab.prefix, backend_lab.db
    tables = _fixed_schema(schema)
    randgraph.create(backend_lab.conn, tables, [schema], backend_lab.dialect)
    # leaf on the part alone pulls its master, and the master pulls its other parts (c2=2 -> probe_type 3)
    graph = load_graph(db, [schema])
    leaves = [Leaf(f"{schema}.session__probe", "c2 = 1")]
    with open_session(db, graph, leaves) as session:
        session.run()
        assert session.keys(f"{schema}.session__probe") == {(1, 1, 1), (1, 1, 2)}
        assert session.keys(f"{schema}.probe_type") == {(2,), (3,)}
        # subject 1 through the plain FK and subject 3 through the renamed one
        assert session.keys(f"{schema}.subject") == {(1,), (3,)}
    # two leaves on one table: both kept
    spec = [(f"{schema}.session", 3, 1), (f"{schema}.session", 3, 0)]
    result = _run_and_compare(db, tables, spec)
    assert result.counts[f"{schema}.session"] == 2


def test_leaf_above_another_leaf_is_kept(backend_lab):
    schema, db = backend_lab.prefix, backend_lab.db
    tables = _fixed_schema(schema)
    randgraph.create(backend_lab.conn, tables, [schema], backend_lab.dialect)
    spec = [(f"{schema}.session", 3, 2), (f"{schema}.subject", 4, 2)]
    result = _run_and_compare(db, tables, spec)
    # subject 2 from its own leaf and subject 4 through session 3's renamed FK
    assert result.counts[f"{schema}.subject"] == 2


def test_master_of_follows_datajoint_naming():
    assert master_of("session__probe") == "session"
    assert master_of("_spike__unit") == "_spike"
    assert master_of("#ripple__times") == "#ripple"
    assert master_of("__curation__part") == "__curation"
    assert master_of("subject") is None
    assert master_of("__computed") is None


def test_unknown_leaf_table_is_refused(admin_conn, schema, db):
    from djtui.errors import UserError
    randgraph.create(admin_conn, _fixed_schema(schema), [schema])
    graph = load_graph(db, [schema])
    with pytest.raises(ValueError, match="no such table"):
        plan_cascade(graph, [Leaf(f"{schema}.nope")])
    with pytest.raises(UserError, match="leaf 1"):
        ExportSession(db, graph, [Leaf(f"{schema}.nope")])
