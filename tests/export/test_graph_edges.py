"""Graph edges that acceptance testing found broken: foreign keys out of the schema prefixes,
tables that reference themselves, key values given as lists, and stored files without a size."""

from __future__ import annotations

import pytest

from djtui.domain.cascade import Leaf
from djtui.errors import UserError
from djtui.services.export import (
    ExportSession,
    NeededFile,
    check_files,
    load_graph,
    parse_leaf,
    plan_export,
    verify_export,
    write_sql,
)


def _run(conn, *statements):
    with conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
    conn.commit()


def test_prefix_loads_the_ancestors_outside_it(backend_lab):
    """Spyglass splits modules over prefixes: `common_` tables are parents of everything; an
    export of a `demo_` table needs them, so the graph follows foreign keys out of the prefix.
    On MariaDB and on PostgreSQL (``backend_lab``)."""
    schema, db, q = backend_lab.prefix, backend_lab.db, backend_lab.dialect.table
    a, b, c = f"{schema}_cmn", f"{schema}_mid", f"{schema}_res"
    kind = "SCHEMA" if db.backend.name == "postgresql" else "DATABASE"
    _run(backend_lab.conn, f"CREATE {kind} {a}", f"CREATE {kind} {b}", f"CREATE {kind} {c}",
         f"CREATE TABLE {q(a, 'subject')} (subject_id int PRIMARY KEY)",
         f"CREATE TABLE {q(b, 'session')} (subject_id int, session_id int, PRIMARY KEY (subject_id, session_id), "
         f"FOREIGN KEY (subject_id) REFERENCES {q(a, 'subject')} (subject_id))",
         f"CREATE TABLE {q(c, 'result')} (subject_id int, session_id int, r int, "
         f"PRIMARY KEY (subject_id, session_id, r), "
         f"FOREIGN KEY (subject_id, session_id) REFERENCES {q(b, 'session')} (subject_id, session_id))",
         f"INSERT INTO {q(a, 'subject')} VALUES (1), (2)", f"INSERT INTO {q(b, 'session')} VALUES (1, 1), (2, 1)",
         f"INSERT INTO {q(c, 'result')} VALUES (1, 1, 5), (2, 1, 6)")
    graph = load_graph(db, [c])  # only the results' prefix: two rounds pull in the other two schemas
    assert {f"{a}.subject", f"{b}.session", f"{c}.result"} <= set(graph.nodes)
    result = plan_export(db, [Leaf(f"{c}.result", "r = 5")], graph=graph)
    assert result.counts == {f"{a}.subject": 1, f"{b}.session": 1, f"{c}.result": 1}


def test_an_unreadable_ancestor_is_named_as_such(server, admin_conn, schema, db):
    """A parent the export's user cannot see is not 'a table with no primary key'."""
    from djtui.config import Secret
    from djtui.services.database import ConnectionSettings, Database
    from tests.names import unique

    user, pw = unique("xp"), "Pw-9sd8f7!x"
    _run(admin_conn, f"CREATE DATABASE `{schema}`", f"CREATE DATABASE `{schema}_hidden`",
         f"CREATE TABLE `{schema}_hidden`.`subject` (subject_id int PRIMARY KEY)",
         f"CREATE TABLE `{schema}`.`session` (subject_id int, s int, PRIMARY KEY (subject_id, s), "
         f"FOREIGN KEY (subject_id) REFERENCES `{schema}_hidden`.`subject` (subject_id))",
         f"INSERT INTO `{schema}_hidden`.`subject` VALUES (1)", f"INSERT INTO `{schema}`.`session` VALUES (1, 1)",
         f"CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}'",
         f"GRANT SELECT, CREATE TEMPORARY TABLES ON `{schema}`.* TO '{user}'@'%'")
    try:
        settings = ConnectionSettings(host="127.0.0.1", port=server.port, user=user, password=Secret(pw))
        limited = Database(settings)
        try:
            graph = load_graph(limited, [schema])
            with pytest.raises(UserError) as info:
                plan_export(limited, [Leaf(f"{schema}.session", "")], graph=graph)
        finally:
            limited.close()
        assert "cannot read its definition" in str(info.value) and f"{schema}_hidden.subject" in str(info.value)
        assert "no primary key" not in str(info.value)
    finally:
        _run(admin_conn, f"DROP USER '{user}'@'%'")


def test_a_table_that_references_itself_exports_every_ancestor_row(admin_conn, schema, db, tmp_path):
    """Row 4's parent chain 3 -> 2 -> 1 must come along, and the rows must load (child before
    parent in key order: 2's parent is 7)."""
    _run(admin_conn, f"CREATE DATABASE `{schema}`",
         f"CREATE TABLE `{schema}`.`tree` (id int PRIMARY KEY, parent_id int NULL, "
         f"CONSTRAINT fk_p FOREIGN KEY (parent_id) REFERENCES `{schema}`.`tree` (id))",
         f"INSERT INTO `{schema}`.`tree` VALUES (7, NULL), (1, 7), (2, 1), (3, 2), (4, 3), (5, 1), (6, NULL)")
    graph = load_graph(db, [schema])
    leaves = [Leaf(f"{schema}.tree", "id = 4")]
    with ExportSession(db, graph, leaves) as session:
        assert session.plan.self_referencing == (f"{schema}.tree",)
        result = session.run()
        assert result.counts == {f"{schema}.tree": 5}  # 4, 3, 2, 1, 7
        assert session.keys(f"{schema}.tree") == {(4,), (3,), (2,), (1,), (7,)}
        write_sql(session, tmp_path / "out")
    checks = verify_export(tmp_path / "out", server_dir=tmp_path / "verify")
    assert [(c.table, c.rows) for c in checks] == [(f"{schema}.tree", 5)] and all(c.ok for c in checks)


@pytest.mark.parametrize("text, where_sql", [
    ('{"unit_id": [1, 2]}', "(`unit_id` IN (1, 2))"),
    ('[{"unit_id": 1}, {"unit_id": 2, "kind": "a"}]', "(`unit_id` = 1) OR (`unit_id` = 2 AND `kind` = 'a')"),
])
def test_key_values_lists(text, where_sql):
    assert parse_leaf(f"lab.unit:{text}").restriction == where_sql


@pytest.mark.parametrize("text, message", [
    ('{"unit_id": {"a": 1}}', "must be a number, a string or null"),
    ('{"unit_id": [[1]]}', "must be a number, a string or null"),
    ('{"unit_id": []}', "is empty"),
    ("{}", "at least one attribute"),
    ("[]", "is empty"),
])
def test_bad_key_values_are_clear_errors_naming_the_leaf(text, message):
    with pytest.raises(UserError) as info:
        parse_leaf(f"lab.unit:{text}")
    assert message in str(info.value) and "lab.unit" in str(info.value.where)


def test_a_stored_file_without_a_size_takes_the_store_size(tmp_path):
    from djtui.config import StoreSettings

    (tmp_path / "s" / "a").mkdir(parents=True)
    (tmp_path / "s" / "a" / "x.npy").write_bytes(b"z" * 128)
    store = StoreSettings(name="dj2", protocol="file", location=str(tmp_path / "s"))
    got = check_files([NeededFile("dj2", "a/x.npy", None, "lab.t"), NeededFile("dj2", "a/gone.npy", None, "lab.t")],
                      [store])
    assert [(f.path, f.size, f.exists) for f in got] == [("a/x.npy", 128, True), ("a/gone.npy", None, False)]


def test_plan_warns_about_a_leaf_that_selects_nothing(server, admin_conn, schema, tmp_path):
    import subprocess
    import sys

    from tests.export.conftest import config_text

    _run(admin_conn, f"CREATE DATABASE `{schema}`", f"CREATE TABLE `{schema}`.`t` (id int PRIMARY KEY)",
         f"INSERT INTO `{schema}`.`t` VALUES (1)")
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path))
    cfg.chmod(0o600)

    def plan(*args):
        return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "export", "plan", *args],
                              capture_output=True, text=True, timeout=120)

    run = plan("--leaf", f"{schema}.t:id = 1")
    assert run.returncode == 0 and "1 table, 1 row" in run.stdout and "warning" not in run.stderr
    run = plan("--leaf", f"{schema}.t:id = 1", "--leaf", f"{schema}.t:id = 99")
    assert run.returncode == 0 and "warning" not in run.stderr  # the table has rows: from leaf 1
    run = plan("--leaf", f"{schema}.t:id = 99")
    assert run.returncode == 0 and "1 table, 0 rows" in run.stdout
    assert "leaf 1" in run.stderr and "selects no rows" in run.stderr
    run = plan("--leaf", f"{schema}.t:id = 1", "--analysis", "fig1")
    assert run.returncode == 2 and "add --paper" in run.stderr
