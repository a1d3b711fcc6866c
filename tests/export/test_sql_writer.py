"""The SQL writer round trip: write, load into a fresh private server, compare counts and checksums."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from djtui.domain.cascade import Leaf
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.export import (
    DRIVER_ENV,
    ExportSession,
    driver_name,
    load_graph,
    parse_leaf,
    plan_export,
    strip_charset,
    verify_export,
    write_sql,
)
from tests.export.conftest import config_text

AWKWARD = ["plain", "it's \"quoted\"", "back\\slash", "new\nline\r\x1a", "ünïcødé ✓ 🧪", "", None]

try:
    import MySQLdb  # noqa: F401
    HAVE_MYSQLCLIENT = True
except ImportError:
    HAVE_MYSQLCLIENT = False
# both drivers write the same export; the C one comes with djtui where a mysqlclient-static wheel exists
DRIVERS = ["pymysql", pytest.param("mysqlclient", marks=pytest.mark.skipif(
    not HAVE_MYSQLCLIENT, reason="MySQLdb is not installed (no mysqlclient-static wheel here)"))]


def _make(conn, schema):
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema}` DEFAULT CHARSET=latin1 COLLATE latin1_swedish_ci")
        cur.execute(f"CREATE TABLE `{schema}`.`subject` (subject_id int NOT NULL, name varchar(40) "
                    f"CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, PRIMARY KEY (subject_id)) "
                    f"ENGINE=InnoDB DEFAULT CHARSET=latin1 COMMENT='keep COLLATE x and CHARSET=y here'")
        cur.execute(f"CREATE TABLE `{schema}`.`#rec` (subject_id int NOT NULL, rec_id int NOT NULL, "
                    f"data longblob, uid binary(16), ts datetime(3), d date, t time(6), "
                    f"price decimal(10,4), f float, x double, note text CHARACTER SET utf8mb4, "
                    f"kind enum('a','b'), meta json, PRIMARY KEY (subject_id, rec_id), "
                    f"FOREIGN KEY (subject_id) REFERENCES `{schema}`.`subject` (subject_id)) "
                    f"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci")
        cur.executemany(f"INSERT INTO `{schema}`.`subject` VALUES (%s, %s)",
                        [(i, AWKWARD[i % len(AWKWARD)]) for i in range(1, 8)])
        rows = []
        for i in range(1, 8):
            for j in range(1, 4):
                rows.append((i, j, bytes(range(256)) * j + b"'\\\x00" if j != 3 else None,
                             bytes([i, j] * 8), f"2024-0{j}-1{i} 12:34:56.789", f"2023-12-0{i}",
                             "-01:02:03.000004" if j == 2 else "838:59:59", "12.3456", 0.1 * i, 1e-300 * j,
                             AWKWARD[(i + j) % len(AWKWARD)], "a" if j % 2 else None,
                             None if j == 1 else json.dumps({"i": i, "s": AWKWARD[i % 6], "x": [1.5, None]})))
        cur.executemany(f"INSERT INTO `{schema}`.`#rec` VALUES ({', '.join(['%s'] * 13)})", rows)
    conn.commit()


def test_strip_charset_forms_but_not_inside_quotes():
    ddl = ("CREATE TABLE `a COLLATE b` (n varchar(3) CHARACTER SET latin1 COLLATE latin1_bin) "
           "ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci COMMENT='CHARSET=x COLLATE y'")
    # a column's own charset and collation change what its values mean: they stay (B.md #4)
    assert strip_charset(ddl) == ("CREATE TABLE `a COLLATE b` (n varchar(3) CHARACTER SET latin1 COLLATE latin1_bin) "
                                  "ENGINE=InnoDB COMMENT='CHARSET=x COLLATE y'")
    assert strip_charset("CREATE DATABASE `x` /*!40100 DEFAULT CHARACTER SET latin1 COLLATE latin1_swedish_ci */") \
        == "CREATE DATABASE `x` /*!40100 */"


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("strip, limit", [(False, None), (True, 2000)])
def test_sql_export_round_trip_through_verify(admin_conn, schema, db, tmp_path, strip, limit, driver, monkeypatch):
    """``limit`` makes the server cut most row groups, so pymysql's row-by-row fallback is exercised."""
    monkeypatch.setenv(DRIVER_ENV, driver)
    _make(admin_conn, schema)
    graph = load_graph(db, [schema])
    leaves = [Leaf(f"{schema}.#rec", "rec_id = 2 OR subject_id IN (6, 7)")]
    with ExportSession(db, graph, leaves) as session:
        assert driver_name(session.conn) == driver
        session.group_concat_limit = limit
        result = session.run()
        commandlog.clear()
        manifest = write_sql(session, tmp_path / "out", strip=strip, batch_rows=4)
        reads = [str(e.text) for e in commandlog.entries() if "CONCAT('('" in str(e.text)]
        refetched = [t for t in reads if "AS q WHERE (rn - 1) DIV" in t]
        assert bool(refetched) is bool(limit and driver == "pymysql")
        # every subject is exported: the table is scanned and each row probed in its key set;
        # part of #rec: read through its key set
        assert session.table_driven(f"{schema}.subject") and not session.table_driven(f"{schema}.#rec")
        subject_reads = [t for t in reads if f"`{schema}`.`subject`" in t]
        assert subject_reads and all(f"`{schema}`.`subject` AS t STRAIGHT_JOIN" in t for t in subject_reads)
        assert any(f"JOIN `{schema}`.`#rec`" in t for t in reads)
    assert result.counts == {f"{schema}.subject": 7, f"{schema}.#rec": 7 + 4}
    assert [t["table"] for t in manifest["tables"]] == [f"{schema}.subject", f"{schema}.#rec"]
    sql = (tmp_path / "out" / "export.sql").read_text()
    assert sql.count("INSERT INTO `#rec`") == 3  # 11 rows in batches of 4
    assert ("ENGINE=InnoDB DEFAULT CHARSET=" in sql) is not strip
    assert ("COLLATE=utf8mb4_unicode_ci" in sql) is not strip and "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" in sql
    assert "keep COLLATE x and CHARSET=y here" in sql
    checks = verify_export(tmp_path / "out", server_dir=tmp_path / "verify")
    assert [(c.table, c.rows) for c in checks] == [(f"{schema}.subject", 7), (f"{schema}.#rec", 11)]
    assert all(c.ok for c in checks), checks


def test_verify_notices_a_changed_export(admin_conn, schema, db, tmp_path):
    _make(admin_conn, schema)
    graph = load_graph(db, [schema])
    with ExportSession(db, graph, [Leaf(f"{schema}.#rec", "rec_id = 1")]) as session:
        session.run()
        write_sql(session, tmp_path / "out")
    sql = tmp_path / "out" / "export.sql"
    text = sql.read_bytes()
    assert b"'2024-01-13 12:34:56.789'" in text and b"\r" not in text
    sql.write_bytes(text.replace(b"'2024-01-13 12:34:56.789'", b"'2024-01-13 12:34:56.788'", 1))
    checks = verify_export(tmp_path / "out", server_dir=tmp_path / "verify")
    bad = [c for c in checks if not c.ok]
    assert [c.table for c in bad] == [f"{schema}.#rec"] and bad[0].rows == bad[0].expected_rows


@pytest.mark.parametrize("restriction, message", [
    ("rec_id = 1; DROP TABLE subject", "may not contain ';'"),
    ("rec_id = 1 -- x", "comments"),
    ("name = 'open", "unclosed"),
])
def test_restriction_refused_before_the_server(restriction, message):
    with pytest.raises(UserError, match=message):
        parse_leaf(f"lab.rec:{restriction}")


def test_semicolon_inside_a_string_is_fine():
    leaf = parse_leaf("lab.subject:name = 'a;b' OR name = \"it''s\"")
    assert leaf.table == "lab.subject" and "a;b" in leaf.restriction
    assert parse_leaf('lab.subject:{"subject_id": 3, "name": "o\'k"}').restriction == \
        "(`subject_id` = 3 AND `name` = 'o\\'k')"


def test_bad_and_writing_restrictions_name_the_leaf(admin_conn, schema, db):
    _make(admin_conn, schema)
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{schema}`.`victim` (n int)")
        cur.execute(f"CREATE FUNCTION `{schema}`.`sneaky`() RETURNS int MODIFIES SQL DATA "
                    f"BEGIN INSERT INTO `{schema}`.`victim` VALUES (1); RETURN 1; END")
    graph = load_graph(db, [schema])
    with pytest.raises(UserError, match=r"leaf 2 .*DROP") as err:
        plan_export(db, [Leaf(f"{schema}.subject", "subject_id = 1"),
                         Leaf(f"{schema}.#rec", "DROP TABLE subject")], graph=graph)
    assert err.value.where == "leaf 2"
    with pytest.raises(UserError, match="leaf 1") as err:
        plan_export(db, [Leaf(f"{schema}.subject", f"`{schema}`.sneaky() = 1")], graph=graph)
    assert "read-only" in str(err.value) or "READ ONLY" in str(err.value)
    with admin_conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{schema}`.`victim`")
        assert cur.fetchone()[0] == 0
        cur.execute(f"SELECT COUNT(*) FROM `{schema}`.`subject`")
        assert cur.fetchone()[0] == 7


def _cli(cfg, *args):
    return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "export", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_plan_write_verify(server, admin_conn, schema, tmp_path):
    _make(admin_conn, schema)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path))
    cfg.chmod(0o600)
    out = _cli(cfg, "plan", "--leaf", f"{schema}.#rec:rec_id = 3", "--leaf", f"{schema}.subject:subject_id = 1",
               "--prefix", schema, "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert {p["table"]: p["rows"] for p in plan} == {f"{schema}.subject": 7, f"{schema}.#rec": 7}
    out = _cli(cfg, "plan", "--leaf", f"{schema}.subject:nosuchcolumn = 1", "--prefix", schema)
    assert out.returncode == 2 and "leaf 1" in out.stderr and "nosuchcolumn" in out.stderr
    out = _cli(cfg, "plan", "--leaf", f"{schema}.subject:1=1; DELETE FROM subject")
    assert out.returncode == 2 and "';'" in out.stderr
    out = _cli(cfg, "write", "--leaf", f"{schema}.#rec:rec_id = 3", "--prefix", schema, "--format", "sql",
               "--out", str(tmp_path / "x"), "--strip-charset")
    assert out.returncode == 0, out.stderr
    out = _cli(cfg, "verify", str(tmp_path / "x"), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["ok"] is True
    out = _cli(cfg, "verify", str(tmp_path))
    assert out.returncode == 2 and "manifest.json" in out.stderr
    assert server.password.reveal() not in out.stdout + out.stderr


def test_dump_script_round_trip(server, admin_conn, schema, db, tmp_path):
    from djtui.services.export import write_script

    _make(admin_conn, schema)
    graph = load_graph(db, [schema])
    out = tmp_path / "script"
    with ExportSession(db, graph, [Leaf(f"{schema}.#rec", "rec_id IN (1, 3)")]) as session:
        session.run()
        manifest = write_script(session, out, chunk_keys=4)
    script = (out / "export.sh").read_text()
    assert server.password.reveal() not in script and "--password" not in script
    # 7 subjects in chunks of 4: two dumps, only the first with CREATE TABLE; no DROP anywhere
    subject_dumps = [ln for ln in script.splitlines() if ln.startswith("dump ") and " subject --where" in ln]
    assert len(subject_dumps) == 2 and "--no-create-info" not in subject_dumps[0]
    assert "--no-create-info" in subject_dumps[1] and "--skip-add-drop-table" in script
    assert [t["rows"] for t in manifest["tables"]] == [7, 14]
    cnf = tmp_path / "client.cnf"
    cnf.write_text(f"[client]\nuser=djadmin\npassword=\"{server.password.reveal()}\"\nhost=127.0.0.1\n"
                   f"port={server.port}\nprotocol=TCP\n")
    cnf.chmod(0o644)
    run = subprocess.run(["bash", str(out / "export.sh"), str(cnf)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "0600" in run.stderr
    cnf.chmod(0o600)
    run = subprocess.run(["bash", str(out / "export.sh"), str(cnf)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "DROP TABLE" not in (out / "export.sql").read_text()
    checks = verify_export(out, server_dir=tmp_path / "verify")
    assert all(c.ok for c in checks) and [c.rows for c in checks] == [7, 14], checks


def test_docker_bundle_files_and_sql(server, admin_conn, schema, tmp_path):
    import yaml

    _make(admin_conn, schema)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path))
    cfg.chmod(0o600)
    out = tmp_path / "bundle"
    run = _cli(cfg, "write", "--leaf", f"{schema}.#rec:rec_id = 2", "--prefix", schema, "--format", "docker",
               "--out", str(out))
    assert run.returncode == 0, run.stderr
    compose = yaml.safe_load((out / "docker-compose.yml").read_text())
    assert compose["services"]["db"]["build"]["dockerfile"] == "Dockerfile"
    assert "db_data:/var/lib/mysql" in compose["services"]["db"]["volumes"]
    assert compose["services"]["hub"]["profiles"] == ["hub"]
    assert (out / "Dockerfile").read_text().startswith("FROM mysql:8.0")
    load = (out / "db" / "load-once.sh").read_text()
    assert "marker" in load and 'if [ -e "$marker" ]' in load
    make = (out / "Makefile").read_text()
    assert all(f"\n{t}:" in "\n" + make for t in ("up", "down", "enter", "clean"))
    assert "MYSQL_ROOT_PASSWORD=" in (out / ".env.example").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "docker" and "db/export.sql" in manifest["files"]
    assert all((out / f).is_file() for f in manifest["files"])
    sql = (out / "db" / "export.sql").read_text()
    table_level = sql.replace("keep COLLATE x and CHARSET=y here", "")
    assert "CHARSET=" not in table_level and "COLLATE=" not in table_level and "DEFAULT CHARACTER SET" not in sql
    assert "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" in sql  # a column's collation stays (B.md #4)
    every = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert server.password.reveal() not in every
    run = _cli(cfg, "verify", str(out), "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert [t["rows"] for t in json.loads(run.stdout)["tables"]] == [7, 7]


@pytest.mark.parametrize("driver", DRIVERS)
def test_key_sets_that_outgrow_memory_move_to_disk(admin_conn, schema, db, tmp_path, driver, monkeypatch):
    """Key sets live in MEMORY tables (hash joins); one that fills its limit is copied to disk, same keys."""
    monkeypatch.setenv(DRIVER_ENV, driver)
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema}`")
        cur.execute(f"CREATE TABLE `{schema}`.parent (pid INT PRIMARY KEY, name VARCHAR(40) NOT NULL)")
        cur.execute(f"CREATE TABLE `{schema}`.child (pid INT, cid INT, note TEXT, PRIMARY KEY (pid, cid), "
                    f"FOREIGN KEY (pid) REFERENCES `{schema}`.parent (pid))")
        cur.executemany(f"INSERT INTO `{schema}`.parent VALUES (%s, %s)", [(p, f"p{p}") for p in range(400)])
        cur.executemany(f"INSERT INTO `{schema}`.child VALUES (%s, %s, %s)",
                        [(c % 400, c, f"n{c}") for c in range(4000)])
    admin_conn.commit()
    graph = load_graph(db, [schema])
    leaves = [Leaf(f"{schema}.child", "cid % 2 = 0 AND pid < 300")]
    with ExportSession(db, graph, leaves) as session:
        session.memory_limit = 16384  # the server's minimum: a few hundred keys
        result = session.run()
        assert session.key_table(f"{schema}.child").endswith("_disk")  # 1,500 keys did not fit
        assert not session.key_table(f"{schema}.parent").endswith("_disk")  # 150 did
        assert session.keys(f"{schema}.child") == {(c % 400, c) for c in range(4000) if c % 2 == 0 and c % 400 < 300}
        assert session.keys(f"{schema}.parent") == {(p,) for p in range(0, 300, 2)}
        write_sql(session, tmp_path / "out")
    assert result.counts == {f"{schema}.parent": 150, f"{schema}.child": 1500}
    checks = verify_export(tmp_path / "out", server_dir=tmp_path / "verify")
    assert [(c.table, c.rows) for c in checks] == [(f"{schema}.parent", 150), (f"{schema}.child", 1500)]
    assert all(c.ok for c in checks), checks


def test_only_the_largest_key_sets_live_in_memory(admin_conn, schema, db, monkeypatch):
    """The server's memory is bounded: at most KEY_MEMORY_TABLES key sets in MEMORY, the largest tables'."""
    from djtui.services.export import session as export_service
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema}`")
        cur.execute(f"CREATE TABLE `{schema}`.parent (pid INT PRIMARY KEY)")
        cur.execute(f"CREATE TABLE `{schema}`.child (pid INT, cid INT, PRIMARY KEY (pid, cid), "
                    f"FOREIGN KEY (pid) REFERENCES `{schema}`.parent (pid))")
        cur.execute(f"CREATE TABLE `{schema}`.note (pid INT, txt VARCHAR(20), PRIMARY KEY (pid, txt), "
                    f"FOREIGN KEY (pid) REFERENCES `{schema}`.parent (pid))")
        cur.executemany(f"INSERT INTO `{schema}`.parent VALUES (%s)", [(p,) for p in range(50)])
        cur.executemany(f"INSERT INTO `{schema}`.child VALUES (%s, %s)", [(c % 50, c) for c in range(2000)])
        cur.executemany(f"INSERT INTO `{schema}`.note VALUES (%s, %s)", [(n % 50, f"t{n}") for n in range(3000)])
        cur.execute(f"ANALYZE TABLE `{schema}`.parent, `{schema}`.child, `{schema}`.note")
        cur.fetchall()
    admin_conn.commit()
    monkeypatch.setattr(export_service, "KEY_MEMORY_TABLES", 1)
    graph = load_graph(db, [schema])
    with ExportSession(db, graph, [Leaf(f"{schema}.child", ""), Leaf(f"{schema}.note", "")]) as session:
        result = session.run()
        assert session._in_memory == {session.key_table(f"{schema}.note")}
    assert result.counts[f"{schema}.child"] == 2000 and result.counts[f"{schema}.parent"] == 50
    assert result.counts[f"{schema}.note"] == 3000


def test_numbers_load_back_bit_for_bit(admin_conn, schema, db, tmp_path):
    """FLOAT is the trap: the server prints it with six digits, so 16777216 reloads as 16777200
    (mysqldump does this). ``verify`` cannot see it (it reads the copy the same way), so this test
    compares the values themselves, NULLs and NOT NULL columns of every numeric kind included."""
    from djtui.services.export import load_sql
    from djtui.services.servers.mariadb import PrivateServer

    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema}`")
        cur.execute(f"CREATE TABLE `{schema}`.`num` (id int NOT NULL PRIMARY KEY, f float, fn float NOT NULL, "
                    f"d double, dn double NOT NULL, m decimal(30,10), b bit(5), bi bigint, "
                    f"u bigint unsigned NOT NULL, y year, t tinyint NOT NULL)")
        rows = [(1, 16777216, 1.17549435e-38, 0.1 + 0.2, -0.0, "-12345678901234567890.0123456789", 5,
                 -9223372036854775808, 18446744073709551615, 2024, -128),
                (2, 3.4028234e38, 0.3333333, 1e-300, 2.2250738585072014e-308, "0.0000000001", 0,
                 9223372036854775807, 0, 1901, 127),
                (3, None, 1.0000001, None, 1.0000000000000002, None, None, None, 7, None, 0)]
        cur.executemany(f"INSERT INTO `{schema}`.`num` VALUES ({', '.join(['%s'] * 11)})", rows)
    admin_conn.commit()
    read = (f"SELECT id, f + 0e0, fn + 0e0, d, dn, m, b + 0, bi, u, y, t FROM `{schema}`.`num` ORDER BY id")
    with admin_conn.cursor() as cur:
        cur.execute(read)
        original = cur.fetchall()
    graph = load_graph(db, [schema])
    with ExportSession(db, graph, [Leaf(f"{schema}.num", "")]) as session:
        session.run()
        write_sql(session, tmp_path / "out")
    with PrivateServer(tmp_path / "copy") as srv:
        load_sql(srv.settings, tmp_path / "out" / "export.sql")
        with srv.connect() as conn, conn.cursor() as cur:
            cur.execute(read)
            loaded = cur.fetchall()
            cur.execute(f"SELECT COUNT(*) FROM `{schema}`.`num` "
                        f"WHERE f = 16777216 AND fn = CAST(1.17549435e-38 AS FLOAT)")
            exact = cur.fetchone()[0]
    assert original[0][1] == 16777216.0 and exact == 1
    assert loaded == original
