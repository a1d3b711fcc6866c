"""DataJoint 2.3 on PostgreSQL (issue 15): ``dj.gc`` against djtui's store scan, and
``Diagram.trace`` against ``djtui export plan``, on the suite's private PostgreSQL.

DataJoint 2.3.5 (its own venv, with its ``postgres`` extra) declares the tables, writes every object
through its codecs (hash-addressed ``<blob@>``, schema-addressed ``<npy@>`` and ``<object@>`` folders
with their ``.manifest.json`` sidecars) on a store with the defaults and one with non-default
prefixes and subfolding, deletes rows, drops a whole schema and rolls back an upload a moment ago,
exactly as on MySQL (``test_dj23_stores.py``; the same scripts run here without the MariaDB
encoder). The ``datajoint.json`` DataJoint reads names the backend (``database.backend:
postgresql``) and the stores; djtui reads the same file.

The truth comes from the store and the ``jsonb`` columns alone. ``dj.gc`` agrees with it for the
schemas it is given and makes the two mistakes djtui must not copy: no grace age (the in-flight
upload is an orphan to it) and blindness to a dropped schema's objects.

``Diagram.trace(Result & restriction)`` is DataJoint's own answer to "which rows upstream does
this restriction need"; ``djtui export plan`` on the same leaf gives the same row counts for every
table the trace holds, and adds only the part tables of the exported masters (an export keeps a
master with its parts), whose counts DataJoint gives as well. Through a renamed foreign key whose
child also holds the original names, 2.3.5's trace raises; there the truth is the foreign keys'
column pairs read through DataJoint's rows, and djtui agrees with it.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from ._stores import by_reason, djtui_json, file_tree, write_djtui_config
from .test_dj23_stores import BUILD, GC, IN_FLIGHT, PRELUDE, covered
from .tools import run_tool, server_env

_MARIADB_ONLY = ("import pymysql\n",
                 "# MariaDB only: DataJoint 2.3.5 sees a codec's json column as longtext and hands pymysql a dict\n"
                 "conn._conn.encoders[dict] = lambda d, _m=None: \"'\" + pymysql.converters.escape_string("
                 "json.dumps(d)) + \"'\"\n")


def _on_pg(script: str) -> str:
    """A MariaDB store script of test_dj23_stores as it runs on PostgreSQL: no pymysql encoder."""
    assert script.startswith(PRELUDE)
    out = script
    for line in _MARIADB_ONLY:
        assert line in out, line
        out = out.replace(line, "")
    return out


TRACE = r"""
import json
import os

import datajoint as dj

p = os.environ["CF_PREFIX"]
schema = dj.Schema(f"{p}_lab")


@schema
class Subject(dj.Manual):
    definition = '''
    subject_id : int32
    ---
    species : varchar(32)
    '''


@schema
class Session(dj.Manual):
    definition = '''
    -> Subject
    session_id : int32
    ---
    note : varchar(64)
    '''

    class Channel(dj.Part):
        definition = '''
        -> master
        channel : int16
        ---
        gain : float64
        '''


@schema
class Method(dj.Lookup):
    definition = '''
    method : varchar(16)
    '''
    contents = [("fast",), ("slow",), ("unused",)]


@schema
class Result(dj.Manual):
    definition = '''
    -> Session
    -> Method
    ---
    score : float32
    '''


@schema
class Pairing(dj.Manual):
    definition = '''
    -> Result
    -> Session.proj(base_subject='subject_id', base_session='session_id')
    ---
    similarity : float64
    '''


Subject.insert([(i, "mouse") for i in range(1, 5)])
Session.insert([(s % 4 + 1, s, f"it's {s}") for s in range(12)])
Session.Channel.insert([(s % 4 + 1, s, c, 0.5 * c) for s in range(12) for c in range(s % 3 + 1)])
Result.insert([(s % 4 + 1, s, m, s / 10) for s in range(12) for m in ("fast", "slow") if (s + len(m)) % 3])
pairs = []
for (subj, sess, m) in zip(*Result.fetch("subject_id", "session_id", "method")):
    base = (sess * 5) % 12
    pairs.append((subj, sess, m, base % 4 + 1, base, ((sess * 7) % 10) / 10))
Pairing.insert(pairs)


def counted(trace):
    return {k.replace('"', ""): v for k, v in trace.counts().items()}


out = {}
# Result & restriction: DataJoint's own trace of what the restriction needs upstream
trace = dj.Diagram.trace(Result & "score > 0.5")
out["result"] = {"trace": counted(trace),
                 "parts": {f"{p}_lab.session__channel": len(Session.Channel & trace[Session].proj())}}
# Pairing & restriction reaches Session twice, once through a renamed foreign key; the truth from the
# foreign keys themselves, then what trace says
rows = (Pairing & "similarity > 0.5").to_dicts()
sessions = {(r["subject_id"], r["session_id"]) for r in rows} | {(r["base_subject"], r["base_session"]) for r in rows}
chans = [(r["subject_id"], r["session_id"]) for r in Session.Channel.to_dicts()]
out["pairing"] = {"truth": {f"{p}_lab.pairing": len(rows), f"{p}_lab.session": len(sessions),
                            f"{p}_lab.result": len({(r["subject_id"], r["session_id"], r["method"]) for r in rows}),
                            f"{p}_lab.#method": len({r["method"] for r in rows}),
                            f"{p}_lab.subject": len({s for s, _ in sessions})},
                  "parts": {f"{p}_lab.session__channel": sum(c in sessions for c in chans)}}
try:
    out["pairing"]["trace"] = counted(dj.Diagram.trace(Pairing & "similarity > 0.5"))
except dj.DataJointError as exc:
    out["pairing"]["trace_error"] = str(exc)
print(json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def pg_lab23(pg_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("dj23pg")
    schema, dropped = f"cf23pg_{os.getpid()}", f"cf23pg_{os.getpid()}_old"
    work, home = root / "work", root / "home"
    stores = {"main": root / "store_main", "deep": root / "store_deep"}
    for d in (work / ".git", home, root / "src", *stores.values()):
        d.mkdir(parents=True)
    (work / "datajoint.json").write_text(json.dumps({
        "database": {"backend": "postgresql", "host": "127.0.0.1", "port": pg_server.port,
                     "user": pg_server.settings.user, "name": pg_server.settings.dbname, "use_tls": False},
        "stores": {
            "default": "main",
            "main": {"protocol": "file", "location": str(stores["main"])},
            "deep": {"protocol": "file", "location": str(stores["deep"]), "hash_prefix": "blobs",
                     "schema_prefix": "objects", "subfolding": [2, 3]},
        }}, indent=2))
    env = server_env(pg_server, CF_SCHEMA=schema, CF_DROPPED=dropped, CF_SRC=str(root / "src"))
    run_tool("dj23pg", _on_pg(BUILD), env=env, cwd=work)
    old = time.time() - 3 * 3600
    before = {}
    for name, loc in stores.items():
        for p in loc.rglob("*"):
            os.utime(p, (old, old), follow_symlinks=False)
        before[name] = set(file_tree(loc))
    run_tool("dj23pg", _on_pg(IN_FLIGHT), env=env, cwd=work)
    config = write_djtui_config(pg_server, root, "orphans:\n  grace_hours: 1\n  max_share: 0.7\n")
    in_flight = {f"{name}/{p}" for name in stores for p in set(file_tree(stores[name])) - before[name]}
    lab = {"schema": schema, "dropped": dropped, "work": work, "home": home, "stores": stores, "config": config,
           "env": env, "in_flight": in_flight, "root": root}
    yield lab
    conn = pg_server.connect()
    try:
        with conn.cursor() as cur:
            for s in (schema, dropped):
                cur.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
    finally:
        conn.close()


def pg_json_paths(pg_server, store: str) -> set[str]:
    """Every ``path`` a DataJoint-declared jsonb column names for ``store``, read with plain SQL."""
    out: set[str] = set()
    conn = pg_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT n.nspname, c.relname, a.attname FROM pg_attribute a "
                        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relkind = 'r' AND a.attnum > 0 AND col_description(c.oid, a.attnum) LIKE ':<%%@%%>%%'")
            for s, t, c in cur.fetchall():
                cur.execute(f'SELECT "{c}"::text FROM "{s}"."{t}" WHERE "{c}" IS NOT NULL')
                for (v,) in cur.fetchall():
                    d = json.loads(v)
                    if d.get("store") == store and d.get("path"):
                        out.add(d["path"].strip("/"))
    finally:
        conn.close()
    return out


def test_pg_store_scan_agrees_with_dj_gc_and_the_truth(pg_lab23, pg_server):
    lab = pg_lab23
    gc = run_tool("dj23pg", _on_pg(GC), env=lab["env"], cwd=lab["work"])
    assert all(gc["fetch"].values()) and len(gc["fetch"]) == 6  # DataJoint reads every live value back
    for store in ("main", "deep"):
        refs = pg_json_paths(pg_server, store)
        files = file_tree(lab["stores"][store])
        young = {p for p in files if f"{store}/{p}" in lab["in_flight"]}
        orphans = {p for p in files if not covered(p, refs)}
        dropped = {p for p in files if f"/{lab['dropped']}/" in f"/{p}"}
        assert refs and young and young <= orphans and dropped and dropped <= orphans
        assert sum(p.endswith(".manifest.json") and covered(p, refs) for p in files) == 2
        assert gc[store]["deleted"] == 0 and not gc[store]["scan_errors"]
        # dj.gc: right about the schema it is given; no grace age, blind to the dropped schema
        assert set(gc[store]["orphans"]) == (orphans - dropped) | young
        got = djtui_json(lab["config"], "orphans", "scan", "--source", f"store:{store}", cwd=lab["work"],
                         home=lab["home"])
        found = by_reason(got["items"])
        untracked = found.pop("untracked-object", set())
        assert not found, found
        assert (sorted(untracked - (orphans - young)), sorted((orphans - young) - untracked)) == ([], []), \
            f"{store}: (called orphans but live or young, orphans missed)"
    # quarantine, then DataJoint still reads everything and dj.gc sees only the in-flight upload
    before = {s: file_tree(lab["stores"][s]) for s in ("main", "deep")}
    batches = {}
    for store in ("main", "deep"):
        done = djtui_json(lab["config"], "orphans", "quarantine", "--source", f"store:{store}", "--confirm",
                          "QUARANTINE", cwd=lab["work"], home=lab["home"])
        batches[store] = done["batch"]
        assert done["files"] > 0 and done["skipped"] == 0
    gc = run_tool("dj23pg", _on_pg(GC), env=lab["env"], cwd=lab["work"])
    assert all(gc["fetch"].values()) and len(gc["fetch"]) == 6
    for store in ("main", "deep"):
        young = {p for p in before[store] if f"{store}/{p}" in lab["in_flight"]}
        assert set(gc[store]["orphans"]) == young
        djtui_json(lab["config"], "orphans", "restore", batches[store], cwd=lab["work"], home=lab["home"])
        assert file_tree(lab["stores"][store]) == before[store]


def test_export_plan_agrees_with_diagram_trace(pg_server, tmp_path):
    prefix = f"cftr_{os.getpid()}"
    work = tmp_path / "work"
    (work / ".git").mkdir(parents=True)
    (work / "datajoint.json").write_text(json.dumps({"database": {
        "backend": "postgresql", "host": "127.0.0.1", "port": pg_server.port, "user": pg_server.settings.user,
        "name": pg_server.settings.dbname, "use_tls": False}}))
    env = server_env(pg_server, CF_PREFIX=prefix)
    try:
        told = run_tool("dj23pg", TRACE, env=env, cwd=work)
        config = write_djtui_config(pg_server, tmp_path)

        def plan(leaf: str) -> dict[str, int]:
            rows = djtui_json(config, "export", "plan", "--prefix", prefix, "--leaf", f"{prefix}_lab.{leaf}",
                              cwd=work, home=tmp_path / "home")
            return {r["table"]: r["rows"] for r in rows}

        ours = plan("result:score > 0.5")
        trace = told["result"]["trace"]
        assert len(trace) == 4 and all(n > 0 for n in trace.values())
        # every table the trace holds, with DataJoint's count; beyond it only the exported masters' parts
        assert {t: ours.get(t) for t in trace} == trace
        assert {t: n for t, n in ours.items() if t not in trace} == told["result"]["parts"]

        # through a renamed foreign key whose child keeps the original name too (Pairing has subject_id and
        # base_subject), DataJoint 2.3.5's trace fails ("Attribute `subject_id` already exists"): its upward
        # rule projects the child's foreign-key columns onto names the child already holds. djtui follows
        # the foreign keys' column pairs and gives what the foreign keys say
        told_p = told["pairing"]
        ours = plan("pairing:similarity > 0.5")
        assert {t: ours.get(t) for t in told_p["truth"]} == told_p["truth"]
        assert {t: n for t, n in ours.items() if t not in told_p["truth"]} == told_p["parts"]
        assert told_p["truth"][f"{prefix}_lab.session"] > told_p["truth"][f"{prefix}_lab.result"] / 2
        if "trace" in told_p:  # a DataJoint that traces it must agree
            assert told_p["trace"] == told_p["truth"]
        else:
            assert "already exists" in told_p["trace_error"]
    finally:
        conn = pg_server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP SCHEMA IF EXISTS "{prefix}_lab" CASCADE')
        finally:
            conn.close()
