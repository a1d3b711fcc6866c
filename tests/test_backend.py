"""The Backend protocol, MySQL/MariaDB: catalogs, server facts, grant dialect and dump tools,
asked of the suite's private server (real tables, real foreign keys, real programs)."""

from __future__ import annotations

import stat
import subprocess

import pytest

from djtui.services.backends import Backend, Column, ForeignKey
from djtui.services.backends.mysql import MySQLBackend
from djtui.services.database import Database


@pytest.fixture
def db(server):
    d = Database(server.settings)
    yield d
    d.close()


@pytest.fixture
def lab(admin_conn, schema_name):
    """Two schemas: a parent with a two-column key, a child with a renamed foreign key across schemas."""
    a, b = f"{schema_name}_a", f"{schema_name}_b"
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{a}`")
        cur.execute(f"CREATE DATABASE `{b}`")
        cur.execute(f"CREATE TABLE `{a}`.`subject` (lab VARCHAR(8), subject_id INT, note VARCHAR(20) "
                    f"COMMENT 'free text', PRIMARY KEY (lab, subject_id)) ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{b}`.`pairing` (lab VARCHAR(8), left_id INT, right_id INT, "
                    f"score DOUBLE NULL, PRIMARY KEY (lab, left_id, right_id), "
                    f"CONSTRAINT `fk_left` FOREIGN KEY (lab, left_id) REFERENCES `{a}`.`subject` (lab, subject_id), "
                    f"CONSTRAINT `fk_right` FOREIGN KEY (lab, right_id) REFERENCES `{a}`.`subject` (lab, subject_id)"
                    f") ENGINE=InnoDB")
        cur.execute(f"CREATE TABLE `{b}`.`~external_raw` (hash CHAR(32) PRIMARY KEY) ENGINE=InnoDB")
        cur.execute(f"CREATE VIEW `{b}`.`v` AS SELECT 1 AS x")
        cur.execute(f"INSERT INTO `{a}`.`subject` VALUES ('x', 1, 'n'), ('x', 2, NULL), ('x', 3, NULL)")
        cur.execute(f"ANALYZE TABLE `{a}`.`subject`")
        cur.fetchall()
    yield a, b
    with admin_conn.cursor() as cur:
        cur.execute(f"DROP DATABASE `{b}`")  # the child first: the schema_name fixture drops in name order


def test_database_hands_out_its_backend_and_dialect(db):
    backend = db.backend
    assert isinstance(backend, MySQLBackend)
    assert backend is db.backend  # one per database
    assert db.dialect is backend.dialect
    assert backend.dialect.ident("a`b") == "`a``b`"
    must_have: Backend = backend  # satisfies the protocol (type-checked)
    assert must_have.name == "mysql"


def test_the_mysql_backend_has_every_member_of_the_protocol(db):
    """What a second backend (PostgreSQL, issue 15) must provide: the protocol's members, each one."""
    import inspect
    members = {n for n in dir(Backend) if not n.startswith("_")} | set(Backend.__annotations__)
    assert {"tables", "foreign_keys_to", "dump_tools", "credentials_file", "open", "abort"} <= members
    be = db.backend
    for name in sorted(members):
        assert hasattr(be, name), name
        proto = getattr(Backend, name, None)
        if callable(proto):
            want = [p for p in inspect.signature(proto).parameters if p != "self"]
            have = list(inspect.signature(getattr(be, name)).parameters)
            assert have[:len(want)] == want, (name, want, have)


def test_schemas_leave_out_the_servers_own(db, lab):
    a, b = lab
    names = db.backend.schemas()
    assert a in names and b in names
    assert not set(names) & {"mysql", "information_schema", "performance_schema", "sys"}
    assert names == sorted(names)
    assert db.schemas() == names


def test_tables_are_base_tables_only_and_filter_by_like(db, lab):
    a, b = lab
    assert db.backend.tables([a, b]) == [(a, "subject"), (b, "pairing"), (b, "~external_raw")]
    assert db.backend.tables([b], like="~external\\_%") == [(b, "~external_raw")]
    assert db.backend.tables([]) == []
    assert (a, "subject") in db.backend.tables()
    assert db.backend.table_exists(a, "subject")
    assert not db.backend.table_exists(a, "nope")


def test_columns_in_declared_order_with_types_and_comments(db, lab):
    a, _b = lab
    cols = db.backend.columns(a, "subject")
    assert [c.name for c in cols] == ["lab", "subject_id", "note"]
    assert cols[0] == Column("lab", "varchar", "varchar(8)", False, "", "")
    assert cols[2].nullable and cols[2].comment == "free text"
    assert cols[1].data_type == "int" and not cols[1].generated
    assert db.backend.columns(a, "missing") == []


def test_primary_keys_in_key_order(db, lab):
    a, b = lab
    assert db.backend.primary_key(b, "pairing") == ["lab", "left_id", "right_id"]
    assert db.backend.primary_key(a, "missing") == []
    assert db.backend.primary_keys([a, b]) == {
        (a, "subject"): ["lab", "subject_id"],
        (b, "pairing"): ["lab", "left_id", "right_id"],
        (b, "~external_raw"): ["hash"]}


def test_foreign_keys_with_renamed_columns_across_schemas(db, lab):
    a, b = lab
    left = ForeignKey("fk_left", b, "pairing", a, "subject", (("lab", "lab"), ("left_id", "subject_id")))
    right = ForeignKey("fk_right", b, "pairing", a, "subject", (("lab", "lab"), ("right_id", "subject_id")))
    assert db.backend.foreign_keys([b]) == [left, right]
    assert db.backend.foreign_keys([a]) == []  # declared in b, though they point into a
    assert db.backend.foreign_keys_to(a, "subject") == [left, right]
    assert db.backend.foreign_keys_from(b, "pairing") == [left, right]
    assert db.backend.foreign_keys_from(a, "subject") == []
    assert left.child == (b, "pairing") and left.parent == (a, "subject")
    every = db.backend.foreign_keys()
    assert left in every and right in every


def test_row_estimates(db, lab):
    a, b = lab
    est = db.backend.row_estimates([a, b])
    assert set(est) == {(a, "subject"), (b, "pairing"), (b, "~external_raw")}
    assert est[(a, "subject")] == 3  # analyzed: InnoDB's estimate is exact for a table this small
    assert db.backend.row_estimate(a, "subject") == 3
    assert db.backend.row_estimate(a, "missing") == 0


def test_server_facts_and_time_limit(db, server):
    info = db.backend.server_info()
    assert info.flavor == server.flavor and info.version_tuple >= (5,)
    version = db.query("SELECT VERSION()")[0][0]
    sql = db.backend.statement_limit_sql(version, 2.5)
    db.query(sql)  # the server accepts it
    assert ("max_statement_time" in sql) == (server.flavor == "MariaDB")
    import pymysql
    if server.flavor == "MariaDB":
        with pytest.raises(pymysql.err.OperationalError) as caught, db.cursor() as cur:
            cur.execute("SET SESSION max_statement_time = 0.2")
            try:
                cur.execute("SELECT SLEEP(2)")
            finally:
                cur.execute(sql)
        assert db.backend.is_timeout(caught.value)
    assert not db.backend.is_timeout(pymysql.err.OperationalError(1045, "denied"))


def test_grant_dialect_matches_the_server(db, server):
    d = db.backend.grant_dialect()
    assert d.flavor == server.flavor and d.version == db.server_info().version_tuple
    assert d.grant_role("dj_user", "ann", "%") in (
        "GRANT `dj_user` TO 'ann'@'%'", "GRANT 'dj_user' TO 'ann'@'%'")
    assert db.backend.grant_dialect(partial_revokes=True).partial_revokes


def test_dump_tools_read_the_password_from_a_private_file(db, lab, server):
    a, _b = lab
    tools = db.backend.dump_tools()
    with db.backend.credentials_file(server.settings) as cnf:
        assert stat.S_IMODE(cnf.stat().st_mode) == 0o600
        assert stat.S_IMODE(cnf.parent.stat().st_mode) == 0o700
        argv = db.backend.tool_argv(tools.dump, cnf)
        assert server.settings.password.reveal() not in " ".join(argv)
        out = subprocess.run([*argv, "--no-data", a, "subject"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "CREATE TABLE `subject`" in out.stdout
        client = subprocess.run([*db.backend.tool_argv(tools.client, cnf), "--batch", "-N", "-e",
                                 f"SELECT COUNT(*) FROM `{a}`.`subject`"], capture_output=True, text=True, timeout=60)
        assert client.stdout.strip() == "3", client.stderr
    assert not cnf.exists() and not cnf.parent.exists()


def test_account_catalog_tells_roles_from_users_and_who_holds_what(db, server, admin_conn, schema_name):
    role, user = f"r_{schema_name}", f"u_{schema_name}"
    mariadb = server.flavor == "MariaDB"
    role_sql = f"`{role}`" if mariadb else f"'{role}'"
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {role_sql}")
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-{schema_name}-X1'")
        cur.execute(f"GRANT {role_sql} TO '{user}'@'%'")
        cur.execute(f"SET DEFAULT ROLE {role_sql} FOR '{user}'@'%'" if mariadb
                    else f"SET DEFAULT ROLE ALL TO '{user}'@'%'")
        cur.execute(f"GRANT SELECT ON `{schema_name}\\_%`.* TO {role_sql}")
        cur.execute(f"ALTER USER '{user}'@'%' ACCOUNT LOCK")
    try:
        be = db.backend
        cat = be.account_catalog(frozenset({role}))
        assert role in cat.roles
        assert (user, "%") in cat.accounts and not any(u == role for u, _h in cat.accounts)
        assert (role, False) in cat.held[(user, "%")]
        assert cat.defaults[(user, "%")] == (role,)
        assert be.user_hosts(user) == ["%"]
        assert (user, "%") in be.locked_accounts()
        d = be.grant_dialect()
        lines = be.show_grants(d.role(role))
        assert any("SELECT" in line and f"{schema_name}\\_%" in line for line in lines), lines
        if mariadb:  # the creator holds ADMIN OPTION on a MariaDB role
            assert be.role_admins(role) == [db.server_info().current_user]
    finally:
        with admin_conn.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")
            cur.execute(f"DROP ROLE {role_sql}")


def test_driver_connection_opens_late_limits_its_statements_and_aborts(db, server):
    be = db.backend
    conn = be.open(server.settings)
    assert not conn.open  # nothing on the network yet: Database registers it first, so a wait can be ended
    be.establish(conn)
    try:
        be.limit_session(conn, 7)
        var = "max_statement_time" if server.flavor == "MariaDB" else "max_execution_time"
        with be.cursor(conn, dict_rows=True) as cur:
            cur.execute(f"SELECT @@SESSION.{var} AS v")
            value = float(cur.fetchone()["v"])
        assert value == (7 if server.flavor == "MariaDB" else 7000)
        be.abort(conn)
        with pytest.raises(be.transient_errors) as lost, be.cursor(conn) as cur:
            cur.execute("SELECT 1")
        assert be.connection_lost(lost.value), lost.value
        assert isinstance(lost.value, be.driver_error)
    finally:
        if conn.open:
            conn.close()


@pytest.mark.parametrize(("extra", "generated"), [
    ("VIRTUAL GENERATED", True), ("STORED GENERATED", True), ("PERSISTENT GENERATED", True),
    ("DEFAULT_GENERATED", False),  # MySQL 8: a column with a DEFAULT expression holds its own value
    ("DEFAULT_GENERATED on update CURRENT_TIMESTAMP", False), ("auto_increment", False), ("", False),
])
def test_a_generated_column_is_one_the_server_computes(extra, generated):
    """Export leaves generated columns out and row quarantine restores around them: a MySQL 8 column
    with a DEFAULT expression must be neither (it would be lost)."""
    col = Column("c", "datetime", "datetime", False, extra, "")
    assert col.generated is generated
