"""Export writer fixes from the acceptance walk (docs: /work/briefs/out/B.md #1, #4, #12, #14, #15):
the docker bundle really loads once, column collations survive stripping, generated columns are not
INSERTed, every export lists its stored files, MariaDB-only types are named for a MySQL 8.0 bundle."""

from __future__ import annotations

import csv
import json
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from djtui.domain.cascade import Leaf
from djtui.services.export import (
    ExportSession,
    find_client,
    load_graph,
    strip_charset,
    verify_export,
    write_docker,
    write_script,
    write_sql,
)
from tests.export.conftest import config_text


def _lab(server, admin_conn, schema) -> uuid.UUID:
    """``cs`` has a case-sensitive key ('a' and 'A') and two generated columns; ``kid`` references it
    and two stored objects of store ``raw``; on MariaDB ``kid.u`` is a ``uuid`` column."""
    blob, other = uuid.uuid4(), uuid.uuid4()
    u_type = "uuid" if server.flavor.lower() == "mariadb" else "char(36)"
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema}` DEFAULT CHARSET=utf8mb4")
        cur.execute(f"CREATE TABLE `{schema}`.`cs` (name varchar(20) COLLATE utf8mb4_bin NOT NULL, v int NOT NULL, "
                    f"g int AS (v + 1) VIRTUAL, s int AS (v * 2) STORED, PRIMARY KEY (name))")
        cur.execute(f"CREATE TABLE `{schema}`.`~external_raw` (hash binary(16) NOT NULL, size bigint unsigned "
                    f"NOT NULL, attachment_name varchar(255) NULL, filepath varchar(1000) NULL, "
                    f"PRIMARY KEY (hash))")
        cur.execute(f"CREATE TABLE `{schema}`.`kid` (name varchar(20) COLLATE utf8mb4_bin NOT NULL, k int NOT NULL, "
                    f"u {u_type} NULL, data binary(16) NULL, PRIMARY KEY (name, k), "
                    f"FOREIGN KEY (name) REFERENCES `{schema}`.`cs` (name), "
                    f"FOREIGN KEY (data) REFERENCES `{schema}`.`~external_raw` (hash))")
        cur.executemany(f"INSERT INTO `{schema}`.`cs` (name, v) VALUES (%s, %s)", [("a", 1), ("A", 2)])
        cur.executemany(f"INSERT INTO `{schema}`.`~external_raw` VALUES (%s, %s, NULL, NULL)",
                        [(blob.bytes, 10), (other.bytes, 20)])
        cur.executemany(f"INSERT INTO `{schema}`.`kid` VALUES (%s, %s, %s, %s)",
                        [("a", 1, str(uuid.uuid4()), blob.bytes), ("A", 1, None, other.bytes)])
    admin_conn.commit()
    return blob


def _cfg(server, tmp_path, store: Path | None = None) -> Path:
    cfg = tmp_path / "djtui.yaml"
    text = config_text(server, tmp_path)
    if store is not None:
        text += f"stores:\n  raw:\n    protocol: file\n    location: {store}\n"
    cfg.write_text(text)
    cfg.chmod(0o600)
    return cfg


def _cli(cfg, *args):
    return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "export", *args],
                          capture_output=True, text=True, timeout=300)


def _session(db, schema, leaf="1"):
    return ExportSession(db, load_graph(db, [schema]), [Leaf(f"{schema}.kid", leaf)])


# ---------------------------------------------------------------------------
# B.md #1: db/load-once.sh, run the way the mysql:8.0 entrypoint runs init files

# docker-library/mysql 8.0 docker-entrypoint.sh: `set -eo pipefail`, docker_process_sql is a shell
# function, and docker_process_init_files runs an executable *.sh as a child but sources the others.
_ENTRYPOINT = r"""
set -eo pipefail
shopt -s nullglob
docker_process_sql() {
	if [ -n "$MYSQL_DATABASE" ]; then
		set -- --database="$MYSQL_DATABASE" "$@"
	fi
	"$CLIENT" --defaults-extra-file="$CNF" --comments "$@"
}
for f in "$INITDB"/*; do
	case "$f" in
		*.sh)
			if [ -x "$f" ]; then echo "entrypoint: running $f"; "$f"
			else echo "entrypoint: sourcing $f"; . "$f"; fi
			;;
	esac
done
echo "entrypoint: init done, options $-"
echo "entrypoint: later code still reads unset variables: [$MYSQL_ONETIME_PASSWORD]"
"""


def _entrypoint(server, bundle: Path, work: Path, *, executable: bool = False) -> tuple[subprocess.CompletedProcess,
                                                                                         Path]:
    """Install the bundle's script as the image does (paths moved into ``work``) and run the entrypoint."""
    initdb, datadir = work / "initdb", work / "varlib"
    initdb.mkdir(parents=True, exist_ok=True)
    datadir.mkdir(exist_ok=True)
    src = bundle / "db" / "load-once.sh"
    dst = initdb / "50-djtui-load-once.sh"
    dst.write_text(src.read_text().replace("/djtui/export.sql", str(bundle / "db" / "export.sql"))
                   .replace("/var/lib/mysql/", f"{datadir}/"))
    shutil.copymode(src, dst)
    if executable:
        dst.chmod(0o755)
    cnf = work / "client.cnf"
    cnf.write_text(f"[client]\nuser=djadmin\npassword=\"{server.password.reveal()}\"\nhost=127.0.0.1\n"
                   f"port={server.port}\nprotocol=TCP\n")
    cnf.chmod(0o600)
    entry = work / "entrypoint.sh"
    entry.write_text(f"CLIENT={find_client()}\nCNF={cnf}\nINITDB={initdb}\n" + _ENTRYPOINT)
    run = subprocess.run(["bash", str(entry)], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})
    return run, datadir / ".djtui-export-loaded"


def _drop(admin_conn, schema):
    with admin_conn.cursor() as cur:
        cur.execute(f"DROP DATABASE `{schema}`")


def _count(admin_conn, schema, table) -> int | None:
    with admin_conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                    (schema, table))
        if not cur.fetchone()[0]:
            return None
        cur.execute(f"SELECT COUNT(*) FROM `{schema}`.`{table}`")
        return int(cur.fetchone()[0])


def test_load_once_is_sourced_not_run(server, admin_conn, schema, db, tmp_path):
    _lab(server, admin_conn, schema)
    with _session(db, schema) as session:
        session.run()
        write_docker(session, tmp_path / "bundle")
    script = tmp_path / "bundle" / "db" / "load-once.sh"
    assert not script.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    text = script.read_text()
    assert "set -euo pipefail" in text and "docker_process_sql" in text
    # the marker is written only after a load that succeeded
    assert text.index("docker_process_sql --binary-mode") < text.index('> "$marker.part"')
    dockerfile = (tmp_path / "bundle" / "Dockerfile").read_text()
    assert "RUN chmod 0644 /docker-entrypoint-initdb.d/50-djtui-load-once.sh" in dockerfile
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_load_once_loads_when_the_entrypoint_sources_it(server, admin_conn, schema, db, tmp_path):
    _lab(server, admin_conn, schema)
    with _session(db, schema) as session:
        session.run()
        manifest = write_docker(session, tmp_path / "bundle")
    _drop(admin_conn, schema)
    run, marker = _entrypoint(server, tmp_path / "bundle", tmp_path / "sim")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "sourcing" in run.stdout and "djtui: export loaded" in run.stdout
    assert marker.is_file()
    opts = run.stdout.split("options ", 1)[1].split()[0]
    assert "u" not in opts and "e" in opts  # the sourced file leaves the entrypoint's shell as it was
    for t in manifest["tables"]:
        assert _count(admin_conn, schema, t["table"].split(".", 1)[1]) == t["rows"]
    # a second start never loads again (it would fail on CREATE TABLE)
    run, marker = _entrypoint(server, tmp_path / "bundle", tmp_path / "sim")
    assert run.returncode == 0 and "already loaded" in run.stdout, run.stdout + run.stderr


def test_failed_load_writes_no_marker(server, admin_conn, schema, db, tmp_path):
    _lab(server, admin_conn, schema)
    with _session(db, schema) as session:
        session.run()
        write_docker(session, tmp_path / "bundle")
    _drop(admin_conn, schema)
    sql = tmp_path / "bundle" / "db" / "export.sql"
    sql.write_text(sql.read_text() + "\nTHIS IS NOT SQL;\n")
    run, marker = _entrypoint(server, tmp_path / "bundle", tmp_path / "sim")
    assert run.returncode != 0 and not marker.exists(), run.stdout
    assert "FAILED" in run.stderr and "make clean" in run.stderr and "init done" not in run.stdout
    assert server.password.reveal() not in run.stdout + run.stderr


def test_load_once_run_as_a_child_fails_without_marker(server, admin_conn, schema, db, tmp_path):
    """B.md #1 itself: an executable script ran without docker_process_sql and marked an empty server loaded."""
    _lab(server, admin_conn, schema)
    with _session(db, schema) as session:
        session.run()
        write_docker(session, tmp_path / "bundle")
    _drop(admin_conn, schema)
    run, marker = _entrypoint(server, tmp_path / "bundle", tmp_path / "sim", executable=True)
    assert "running" in run.stdout
    assert run.returncode != 0 and not marker.exists(), run.stdout + run.stderr
    assert "must be sourced" in run.stderr


# ---------------------------------------------------------------------------
# B.md #4: only table and database defaults are stripped


def test_strip_charset_keeps_every_column_collation():
    ddl = ("CREATE TABLE `t` (\n  `k` varchar(20) COLLATE utf8mb4_bin NOT NULL,\n"
           "  `e` enum('x','y') CHARACTER SET latin1 COLLATE latin1_general_cs DEFAULT NULL,\n"
           "  `c` varchar(9) DEFAULT 'COLLATE=x',\n  PRIMARY KEY (`k`)\n"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_uca1400_ai_ci")
    out = strip_charset(ddl)
    # a bare COLLATE relied on the table default, which is gone: its character set is written out
    assert "`k` varchar(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL" in out
    assert "CHARACTER SET latin1 COLLATE latin1_general_cs" in out and "DEFAULT 'COLLATE=x'" in out
    assert out.endswith(") ENGINE=InnoDB")


def test_stripped_export_of_a_case_sensitive_key_loads(server, admin_conn, schema, db, tmp_path):
    _lab(server, admin_conn, schema)
    with _session(db, schema) as session:
        session.run()
        write_sql(session, tmp_path / "out", strip=True)
    sql = (tmp_path / "out" / "export.sql").read_text()
    assert "COLLATE utf8mb4_bin" in sql and "DEFAULT CHARSET=" not in sql
    checks = verify_export(tmp_path / "out", server_dir=tmp_path / "verify")  # 'a' and 'A' both load
    assert all(c.ok for c in checks) and [c.rows for c in checks] == [2, 2, 2], checks


def test_docker_strips_by_default_and_no_strip_charset_keeps(server, admin_conn, schema, tmp_path):
    _lab(server, admin_conn, schema)
    cfg = _cfg(server, tmp_path)
    leaf = f"{schema}.kid:1"
    run = _cli(cfg, "write", "--leaf", leaf, "--prefix", schema, "--format", "docker", "--out", str(tmp_path / "a"))
    assert run.returncode == 0, run.stderr
    sql = (tmp_path / "a" / "db" / "export.sql").read_text()
    assert "DEFAULT CHARSET=" not in sql and "COLLATE utf8mb4_bin" in sql
    run = _cli(cfg, "write", "--leaf", leaf, "--prefix", schema, "--format", "docker", "--no-strip-charset",
               "--out", str(tmp_path / "b"))
    assert run.returncode == 0, run.stderr
    assert "DEFAULT CHARSET=" in (tmp_path / "b" / "db" / "export.sql").read_text()


# ---------------------------------------------------------------------------
# B.md #14: generated columns


def test_generated_columns_are_not_inserted(server, admin_conn, schema, db, tmp_path):
    _lab(server, admin_conn, schema)
    with _session(db, schema) as session:
        session.run()
        manifest = write_sql(session, tmp_path / "out")
    with _session(db, schema) as session:
        session.run()
        script = write_script(session, tmp_path / "script")
    assert manifest["tables"] == script["tables"]  # mysqldump leaves them out too: same checksums
    sql_file = tmp_path / "out" / "export.sql"
    sql = sql_file.read_text()
    assert "INSERT INTO `cs` (`name`, `v`) VALUES" in sql
    # as MySQL 8 (and strict mode) would: a value for a generated column is an error, not a warning
    sql_file.write_text(sql.replace("SET SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO'",
                                    "SET SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO,STRICT_TRANS_TABLES'", 1))
    checks = verify_export(tmp_path / "out", server_dir=tmp_path / "verify")
    assert all(c.ok for c in checks), checks


# ---------------------------------------------------------------------------
# B.md #15 and #12: files.tsv in every export directory; MariaDB-only types in a MySQL 8.0 bundle


def _files_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.parametrize("fmt", ["sql", "script", "docker"])
def test_every_export_lists_its_stored_files(server, admin_conn, schema, tmp_path, fmt):
    blob = _lab(server, admin_conn, schema)
    store = tmp_path / "store"
    present = store / schema / blob.hex[:2] / blob.hex[2:4] / blob.hex
    present.parent.mkdir(parents=True)
    present.write_bytes(b"x" * 10)
    cfg = _cfg(server, tmp_path, store)
    out = tmp_path / "out"
    run = _cli(cfg, "write", "--leaf", f"{schema}.kid:1", "--prefix", schema, "--format", fmt, "--out", str(out))
    assert run.returncode == 0, run.stderr
    rows = _files_tsv(out / "files.tsv")
    assert {(r["store"], r["size"], r["exists"], r["table"]) for r in rows} == {
        ("raw", "10", "yes", f"{schema}.~external_raw"), ("raw", "20", "MISSING", f"{schema}.~external_raw")}
    assert f"{schema}/{blob.hex[:2]}/{blob.hex[2:4]}/{blob.hex}" in {r["path"] for r in rows}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stored_files"] == {"list": "files.tsv", "count": 2, "bytes": 30, "missing": 1,
                                        "not_checked": 0}
    assert "files.tsv" in manifest["files"]
    assert "stored files the rows reference: 2 (30 bytes, 1 MISSING)" in run.stdout
    if fmt == "docker":
        assert "`files.tsv` lists them" in (out / "README.md").read_text()
        assert "wrote" in run.stdout and ".env.example" not in run.stdout


def test_an_export_without_stored_files_has_an_empty_list(server, admin_conn, schema, db, tmp_path):
    _lab(server, admin_conn, schema)
    with ExportSession(db, load_graph(db, [schema]), [Leaf(f"{schema}.cs", "1")]) as session:
        session.run()
        manifest = write_sql(session, tmp_path / "out")
    assert _files_tsv(tmp_path / "out" / "files.tsv") == []
    assert manifest["stored_files"]["count"] == 0


def test_mariadb_only_types_are_named_for_a_mysql8_bundle(server, admin_conn, schema, tmp_path):
    if server.flavor.lower() != "mariadb":
        pytest.skip("the uuid column type exists only on MariaDB")
    _lab(server, admin_conn, schema)
    cfg = _cfg(server, tmp_path)
    run = _cli(cfg, "write", "--leaf", f"{schema}.kid:1", "--prefix", schema, "--format", "docker",
               "--out", str(tmp_path / "bundle"))
    assert run.returncode == 0, run.stderr
    assert "warning: MySQL 8.0 has no column type uuid" in run.stderr and f"{schema}.kid (uuid)" in run.stderr
    assert f"{schema}.cs (" not in run.stderr
    readme = (tmp_path / "bundle" / "README.md").read_text()
    assert "**Warning:** MySQL 8.0 has no column type uuid" in readme and f"{schema}.kid (uuid)" in readme
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert len(manifest["warnings"]) == 1
    run = _cli(cfg, "write", "--leaf", f"{schema}.kid:1", "--prefix", schema, "--format", "sql",
               "--out", str(tmp_path / "sql"))
    assert run.returncode == 0 and "warning" not in run.stderr, run.stderr
