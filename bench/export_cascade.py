"""Cascade from 3 leaves on a 150-table, 1M-row Spyglass-like graph: djtui vs dj.Diagram.trace per leaf.

Two graphs of the same shape are built: one with renamed foreign keys (as Spyglass has; trace
fails there) and one without (so trace can be timed). For each: djtui's time (graph load +
cascade + counts), DataJoint's (trace + counts per leaf), the ratio, and whether the key sets
are identical on the leaves where trace works.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import time
import warnings


def _leaves(tables, rng):
    from djtui.domain.cascade import Leaf

    deep = sorted((t for t in tables if len(t.pk) >= 3), key=lambda t: -len(t.pk))
    part = next(t for t in deep if "__" in t.name)
    others = [t for t in deep if t is not part]
    picks = [others[0], others[len(others) // 3], part]
    return [Leaf(t.full, f"MOD(`{t.pk[-1]}`, 100) = {rng.randint(0, 99)}") for t in picks]


def _compare(srv, db, dj, prefix: str, tables, leaves) -> None:
    from djtui.services.export import ExportSession, load_graph

    started = time.monotonic()
    graph = load_graph(db, [prefix])
    with ExportSession(db, graph, leaves) as session:
        result = session.run()
    ours = time.monotonic() - started
    total = sum(result.counts.values())
    print(f"  djtui: graph load + cascade + counts, 3 leaves, master/part completion: {ours:.2f} s "
          f"({len(result.counts)} tables, {total} rows)  target < 5 s: {'OK' if ours < 5 else 'MISSED'}")
    s = srv.settings
    djconn = dj.Connection(s.host, s.user, s.password.reveal(), port=s.port)
    for name in sorted({t.db for t in tables}):
        dj.Schema(name, connection=djconn, create_schema=False)
    working, dj_time, traces = [], 0.0, []
    for leaf in leaves:
        dbn, _, tn = leaf.table.partition(".")
        try:
            started = time.monotonic()
            djconn.dependencies.load()  # what trace needs; counted, as a per-leaf call would
            diagram = dj.Diagram.trace(dj.FreeTable(djconn, f"`{dbn}`.`{tn}`") & leaf.restriction)
            diagram.counts()
            dj_time += time.monotonic() - started
        except Exception as exc:
            print(f"  dj.Diagram.trace fails on {leaf.table}: {type(exc).__name__}: {str(exc)[:90]}")
            continue
        working.append(leaf)
        traces.append(diagram)
    if not working:
        print("  trace failed on every leaf: no speed comparison on this graph")
        djconn.close()
        return
    started = time.monotonic()
    with ExportSession(db, graph, working, complete_parts=False) as session:
        result = session.run()
        ours_same = time.monotonic() - started
        same = True
        for name in result.counts:
            dbn, _, tn = name.partition(".")
            pk = list(graph.nodes[name]["info"].primary_key)
            dj_keys: set[tuple] = set()
            for diagram in traces:
                with contextlib.suppress(KeyError, Exception):
                    dj_keys |= {tuple(r[c] for c in pk) for r in diagram[f"`{dbn}`.`{tn}`"].proj().to_dicts()}
            mine = session.keys(name)
            if dj_keys != mine:
                same = False
                print(f"  key sets differ at {name}: trace {len(dj_keys)} vs djtui {len(mine)}")
    ratio = dj_time / max(ours_same, 1e-9)
    print(f"  on the {len(working)} leaves where trace works (no part completion, trace's semantics): "
          f"djtui {ours_same:.2f} s vs trace+counts {dj_time:.2f} s = {ratio:.1f}x  "
          f"target >= 5x: {'OK' if ratio >= 5 else 'MISSED'}; identical key sets: {same}")
    djconn.close()


def main(argv: list[str]) -> int:
    from bench.gen_graph import build
    from djtui.services.database import Database
    from djtui.services.servers.mariadb import PrivateServer

    ap = argparse.ArgumentParser(prog="python -m bench export_cascade", description=__doc__)
    ap.add_argument("--tables", type=int, default=150)
    ap.add_argument("--rows", type=int, default=1_000_000)
    a = ap.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import datajoint as dj
    logging.getLogger("datajoint").setLevel(logging.ERROR)
    with PrivateServer(buffer_pool_mb=512) as srv:
        db = Database(srv.settings)
        for prefix, renamed in (("bx_", True), ("by_", False)):
            print(f"graph {prefix}*: {a.tables} tables, {a.rows} rows, renamed FKs: {renamed}")
            conn = srv.connect()
            tables = build(conn, prefix, a.tables, a.rows, renamed=renamed, log=lambda m: print("  " + m))
            conn.close()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _compare(srv, db, dj, prefix, tables, _leaves(tables, random.Random(3)))
        db.close()
    return 0
