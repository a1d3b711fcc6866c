"""Hostile identifiers: participant ids, dates, user and module names, export restrictions.

Each is refused with exit 2 before anything runs, and the proof that nothing changed is taken
from the real thing: the files on disk (byte snapshots), the grant tables of the private server,
and ``CHECKSUM TABLE`` of the data an export restriction could have touched.
"""

from __future__ import annotations

import os
from pathlib import Path

import pymysql
import pytest

from djtui.cli import main
from djtui.domain import grants as g
from djtui.domain.sessions import parse_date, validate_participant
from djtui.errors import UserError
from reliability._r2_tree import checksum_schemas, snapshot

# ---------------------------------------------------------------------------
# participant ids and dates through every session command

BAD_PIDS = {
    "dotdot": "..",
    "dotdot-inside": "p1..",
    "slash": "p001/../..",
    "abs": "/etc",
    "backslash": "p\\1",
    "nul": "p001\x00x",
    "newline-end": "p001\n",
    "newline-mid": "p0\n01",
    "space": "p 001",
    "quote": "p'001",
    "dollar": "p$(id)",
    "non-utf8": os.fsdecode(b"p\xe9001"),
    "empty": "",
    "dash-first": "-rf",
    "long-51": "p" * 51,
    "long-10k": "p" * 10_000,
}
BAD_DATES = {"feb30": "20230230", "month13": "2023-13-01", "zero": "0", "day0": "20230100",
             "short": "2023", "words": "yesterday", "traversal": "../20250104", "nl": "20250104\n1",
             "long": "2" * 10_000}


def _session_config(root: Path) -> Path:
    cfg = root / "lab.yaml"
    cfg.write_text(f"""\
backup:
  source:
    base_path: {root}/src
  destinations:
    - name: net
      base_path: {root}/dst
      path_structure: "{{session_date}}/{{participant_id}}"
database:
  host: 127.0.0.1
  port: 1
  user: nobody
  use_datajoint_config: false
  connect_timeout: 1
state_dir: {root}/state
audit_log: {root}/state/audit.jsonl
""")
    cfg.chmod(0o600)
    return cfg


@pytest.fixture
def session_tree(tmp_path: Path) -> Path:
    """A source, a backup, and decoys where a traversal would land (siblings and parents of the base)."""
    for d in ("src/p001/20250104", "dst/20250104/p001", "20250104", "src/20250104", "etc"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
        (tmp_path / d / "cam0.mp4").write_bytes(b"video" * 100)
    return tmp_path


def run(argv: list[str]) -> int:
    """``main`` as the shell would see it: argparse's own refusals exit 2 through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _argvs(pid: str, date: str) -> list[list[str]]:
    return [["status", pid, date], ["verify", pid, date], ["sync", pid, date], ["sync", pid, date, "--dry-run"],
            ["delete", pid, date, "--dry-run"], ["delete", pid, date, "--confirm", "DELETE"]]


@pytest.mark.parametrize("pid", BAD_PIDS.values(), ids=BAD_PIDS.keys())
def test_bad_participant_ids_exit_2_in_every_session_command(session_tree: Path, capsys, pid: str):
    cfg = _session_config(session_tree)
    before = snapshot(session_tree)
    for argv in _argvs(pid, "20250104"):
        code = run(["--config", str(cfg), *argv])
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert ("participant id" in err and "hint:" in err) or "usage:" in err, err
        assert "Traceback" not in err
    assert snapshot(session_tree) == before
    assert not (session_tree / "state").exists()


@pytest.mark.parametrize("date", BAD_DATES.values(), ids=BAD_DATES.keys())
def test_impossible_dates_exit_2_in_every_command(session_tree: Path, capsys, date: str):
    cfg = _session_config(session_tree)
    before = snapshot(session_tree)
    argvs = [*_argvs("p001", date), ["batch", date], ["batch", "20250101", date],
             ["status-range", "--start-date", date], ["status-range", "--end-date", date],
             ["bulk-delete", "--start-date", date, "--confirm", "DELETE ALL"]]
    for argv in argvs:
        code = run(["--config", str(cfg), *argv])
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert "date" in err and "hint:" in err, err
    assert snapshot(session_tree) == before


def test_trailing_newline_is_refused_in_every_name_validator():
    """`$` in a Python regex matches before a final newline: each validator must anchor with \\Z."""
    for fn in (validate_participant, g.validate_user_name, g.validate_module_name, g.validate_host):
        with pytest.raises(UserError):
            fn({validate_participant: "p001", g.validate_host: "%"}.get(fn, "abc") + "\n")
    assert parse_date(" 20250104 ").isoformat() == "2025-01-04"  # surrounding spaces are typing, not attack


# ---------------------------------------------------------------------------
# user and module names: the server's grant tables are unchanged


@pytest.fixture(scope="module")
def acct_cfg(server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("r2_acct")
    cfg = tmp / "djtui.yaml"
    cfg.write_text(f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
                   f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
                   f"state_dir: {tmp}/state\n")
    cfg.chmod(0o600)
    return cfg


def _grant_state(server) -> dict[str, list]:
    conn = server.connect()
    try:
        out = {}
        with conn.cursor() as cur:
            for table in ("user", "db", "tables_priv", "roles_mapping", "global_priv"):
                cur.execute(f"SELECT * FROM mysql.`{table}`")
                out[table] = sorted(map(repr, cur.fetchall()))
            cur.execute("SELECT schema_name FROM information_schema.schemata")
            out["schemata"] = sorted(r[0] for r in cur.fetchall())
        return out
    finally:
        conn.close()


def _usable_host(name: str) -> bool:
    from djtui.domain.grants import validate_host
    from djtui.errors import UserError
    try:
        validate_host(name)
    except UserError:
        return False
    return True


HOSTILE_NAMES = {
    "quote": "o'brien", "quote-drop": "x'; DROP USER djadmin; --", "backtick": "a`b", "backtick-close": "x`.* TO `y",
    "percent": "wild%", "underscore-wild": "_", "space": "x y", "newline-end": "alice\n", "nul": "al\x00ice",
    "dot": "a.b", "at": "bob@%", "dash": "a-b", "non-ascii": "jürgen", "long": "u" * 10_000, "empty": "",
}


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_hostile_user_and_module_names_exit_2_and_grants_unchanged(server, acct_cfg: Path, capsys, name: str):
    before = _grant_state(server)
    for argv in (["users", "add", name, "--role", "user"], ["users", "add", name, "--role", "guest", "--dry-run"],
                 ["users", "reset-password", name], ["roles", "add-module", name],
                 ["users", "add", "okname", "--role", "guest", "--host", name or "x'"]):
        if argv[:2] == ["roles", "add-module"] and name == "_":
            continue  # `_` alone is a fine (if odd) literal prefix: it is escaped to `\_\_%`
        if "--host" in argv and _usable_host(name):
            continue  # `wild%`, `_`, `a.b`, `a-b` are real host patterns, as MySQL defines them
        code = run(["--config", str(acct_cfg), *argv])
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert "hint:" in err or "does not exist" in err or "no user" in err, (argv, err)
    assert _grant_state(server) == before


# The `_` wildcard with a real user connecting: tests/accounts/test_accounts_live.py
# ::test_add_module_with_underscore (module `mod_N` does not grant `modQN`) and
# ::test_underscore_in_user_name_is_literal (user `collab_N` does not own `collabXN_z`).


# ---------------------------------------------------------------------------
# export restrictions: refused before the server, or stopped by the read-only transaction


@pytest.fixture
def export_lab(server, schema_name, tmp_path):
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{schema_name}`")
            cur.execute(f"CREATE TABLE `{schema_name}`.subject (subject_id int PRIMARY KEY, name varchar(40))")
            cur.execute(f"CREATE TABLE `{schema_name}`.session (subject_id int, session_id int, "
                        f"PRIMARY KEY (subject_id, session_id), "
                        f"FOREIGN KEY (subject_id) REFERENCES `{schema_name}`.subject (subject_id))")
            cur.execute(f"CREATE TABLE `{schema_name}`.victim (n int)")
            cur.executemany(f"INSERT INTO `{schema_name}`.subject VALUES (%s, %s)", [(i, f"s{i}") for i in range(5)])
            cur.executemany(f"INSERT INTO `{schema_name}`.session VALUES (%s, %s)",
                            [(i % 5, i) for i in range(20)])
            cur.execute(f"CREATE FUNCTION `{schema_name}`.sneaky() RETURNS int MODIFIES SQL DATA "
                        f"BEGIN INSERT INTO `{schema_name}`.victim VALUES (1); RETURN 1; END")
        conn.commit()
    finally:
        conn.close()
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
                   f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
                   f"state_dir: {tmp_path}/state\n")
    cfg.chmod(0o600)
    return schema_name, cfg


def _restrictions(s: str, outfile: str) -> dict[str, tuple[str, str]]:
    """id -> (restriction, words the error must hold)."""
    return {
        "semicolon-drop": ("session_id = 1; DROP TABLE subject", "';'"),
        "semicolon-end": ("session_id = 1;", "';'"),
        "drop-bare": ("DROP TABLE subject", "leaf 1"),
        "dash-comment": ("session_id = 1 -- ' OR 1=1", "comments"),
        "dash-comment-nospace": ("session_id = 1 --", "comments"),
        "block-comment": ("session_id = 1 /* x */ OR 1=1", "comments"),
        "versioned-comment": ("session_id = 1 /*!50000 OR 1=1 */", "comments"),
        "hash-comment": ("session_id = 1 # x", "comments"),
        "close-paren-delete": (f"1=1); DELETE FROM `{s}`.victim; SELECT (1", "parenthesis"),
        "close-paren-union": (f"1=1) UNION SELECT 1, 1 FROM `{s}`.subject WHERE (1", "parenthesis"),
        "into-outfile": (f"1=1 INTO OUTFILE '{outfile}'", "leaf 1"),
        "into-dumpfile": (f"1=1 INTO DUMPFILE '{outfile}'", "leaf 1"),
        "writing-function": (f"`{s}`.sneaky() = 1", "leaf 1"),
        "for-update": ("1=1 FOR UPDATE", "leaf 1"),
        "unclosed-quote": ("name = 'x", "unclosed"),
        "unclosed-backtick": ("`name = 1", "unclosed"),
        "unknown-column": ("nosuchcolumn = 1", "nosuchcolumn"),
        "open-paren": ("(session_id = 1", "unbalanced"),
        "paren-in-string-is-data": ("name = ')' AND nosuch = 1", "nosuch"),
        "nul": ("session_id = 1\x00; DROP TABLE subject", "';'"),
    }


def test_hostile_restrictions_exit_2_and_the_database_is_unchanged(server, export_lab, tmp_path, capsys):
    schema, cfg = export_lab
    outfile = str(tmp_path / "leak.txt")
    conn = server.connect()
    try:
        before = checksum_schemas(conn, [schema])
        failures = []
        for ident, (restr, words) in _restrictions(schema, outfile).items():
            for cmd in ("plan", "write"):
                argv = ["--config", str(cfg), "export", cmd, "--leaf", f"{schema}.session:{restr}", "--prefix", schema]
                if cmd == "write":
                    argv += ["--out", str(tmp_path / f"out-{len(failures)}")]
                code = run(argv)
                err = capsys.readouterr().err
                if code != 2 or words not in err or "Traceback" in err:
                    failures.append((ident, cmd, code, err[-300:]))
        assert failures == []
        conn.commit()  # a fresh snapshot for the checksums
        assert checksum_schemas(conn, [schema]) == before
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{schema}`.victim")
            assert cur.fetchone()[0] == 0
        assert not os.path.exists(outfile)
        assert not any(p.name.startswith("out-") for p in tmp_path.iterdir())  # no half-written export
    finally:
        conn.close()


def test_a_restriction_cannot_write_even_as_a_subquery(server, export_lab, capsys):
    """A subquery cannot hold INSERT/DELETE in MySQL; the read-only transaction is the belt to that brace."""
    schema, cfg = export_lab
    conn = server.connect()
    try:
        before = checksum_schemas(conn, [schema])
        for restr in (f"subject_id IN (SELECT subject_id FROM `{schema}`.subject)",  # a legit read: allowed
                      f"subject_id IN (DELETE FROM `{schema}`.subject)",
                      f"subject_id = (SELECT `{schema}`.sneaky())"):
            code = run(["--config", str(cfg), "export", "plan", "--leaf", f"{schema}.session:{restr}",
                         "--prefix", schema, "--json"])
            err = capsys.readouterr().err
            assert code == (0 if "IN (SELECT" in restr else 2), (restr, err)
        conn.commit()
        assert checksum_schemas(conn, [schema]) == before
    finally:
        conn.close()


def test_the_server_refuses_writes_inside_djtui_s_read_only_transaction(server, export_lab):
    """The guarantee itself, checked on this server: START TRANSACTION READ ONLY stops a write."""
    schema, _cfg = export_lab
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION READ ONLY")
            with pytest.raises(pymysql.err.MySQLError):
                cur.execute(f"INSERT INTO `{schema}`.victim VALUES (2)")
            conn.rollback()
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# hostile schema, table and column names through db.dialect and db.backend, on MariaDB and PostgreSQL


HOSTILE_IDENTS = {
    "double-quote": 'a"b', "double-quote-close": 'x"; DROP SCHEMA y; --', "backtick": "a`b",
    "single-quote": "o'brien", "backslash": "a\\b", "backslash-end": "ab\\", "backslash-quote": "a\\'b",
    "dot": "a.b", "unicode": "jürgen_ü_猫", "space": "x y", "semicolon": "x; SELECT 1", "like-wild": "a%_b",
    "dollar": "$x$", "upper": "MiXeD",
}


def _make_schema(db_server, conn, dialect, schema: str) -> None:
    with conn.cursor() as cur:
        kind = "SCHEMA" if db_server.backend == "postgresql" else "DATABASE"
        cur.execute(f"CREATE {kind} {dialect.ident(schema)}")
    conn.commit()


def _drop_schemas(db_server, prefix: str) -> None:
    from djtui.services.database import Database

    db = Database(db_server.settings)
    try:
        d = db.dialect
        for s in [s for s in db.schemas() if s.startswith(prefix)]:
            db.query(f"DROP SCHEMA {d.ident(s)} CASCADE" if db_server.backend == "postgresql"
                     else f"DROP DATABASE {d.ident(s)}")
    finally:
        db.close()


def test_hostile_identifiers_go_through_the_dialect_and_the_catalogs(db_server):
    """Each name is a schema, a table and a column; a child table's foreign key points at it. The server
    holds exactly the names written (read back from its catalogs), the rows hold the value written as a
    literal, and nothing else was created or dropped."""
    from djtui.services.database import Database

    prefix = f"hid{os.getpid()}_"
    db = Database(db_server.settings)
    d, be = db.dialect, db.backend
    conn = db_server.connect()
    try:
        before = [s for s in db.schemas() if not s.startswith(prefix)]
        for i, name in enumerate(HOSTILE_IDENTS.values()):
            schema, child = f"{prefix}{i}{name}", f"{name}_c"
            _make_schema(db_server, conn, d, schema)
            db.query(f"CREATE TABLE {d.table(schema, name)} (id int PRIMARY KEY, {d.ident(name)} varchar(40))")
            db.query(f"CREATE TABLE {d.table(schema, child)} (id int PRIMARY KEY, pid int, "
                     f"FOREIGN KEY (pid) REFERENCES {d.table(schema, name)} (id))")
            db.query(f"INSERT INTO {d.table(schema, name)} VALUES (1, {d.literal(name)})")
            assert schema in db.schemas(), name
            assert be.tables([schema]) == sorted([(schema, name), (schema, child)]), name
            assert be.table_exists(schema, name) and not be.table_exists(schema, name + "x")
            assert [c.name for c in be.columns(schema, name)] == ["id", name]
            assert be.primary_key(schema, name) == ["id"]
            (fk,) = be.foreign_keys([schema])
            assert (fk.child, fk.parent, fk.columns) == ((schema, child), (schema, name), (("pid", "id"),))
            assert [f.child for f in be.foreign_keys_to(schema, name)] == [(schema, child)]
            assert db.query(f"SELECT {d.ident(name)} FROM {d.table(schema, name)}") == [(name,)]
            assert db.query(f"SELECT {d.literal(name)}") == [(name,)]
        assert [s for s in db.schemas() if not s.startswith(prefix)] == before
        for value in ("\\'; SELECT 1; --", "a\\", "'", "\\\\'", "E'x'", "$$x$$", "猫\\n"):
            assert db.query(f"SELECT {d.literal(value)}") == [(value,)], value
    finally:
        conn.close()
        db.close()
        _drop_schemas(db_server, prefix)
