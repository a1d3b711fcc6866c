"""The PostgreSQL grant dialect as text, and its SCRAM verifier against libpq's own (PQencryptPasswordConn)."""

from __future__ import annotations

import psycopg2.extensions
import pytest

from djtui.domain import grants as g
from djtui.domain.dialects import postgres_grants as pg
from djtui.services.servers.postgres import PrivatePostgres


@pytest.mark.parametrize("password", ["plain-Pass-123", "wïth ünïcödé\u00a0space", "quote'colon:back\\slash"])
def test_scram_verifier_equals_libpq_with_the_same_salt(pg_server: PrivatePostgres, password: str) -> None:
    conn = pg_server.connect()
    try:
        theirs = psycopg2.extensions.encrypt_password(password, "alice", conn, "scram-sha-256")
    finally:
        conn.close()
    head, _, _keys = theirs.partition("$4096:")
    salt = __import__("base64").b64decode(_keys.split("$")[0])
    assert head == "SCRAM-SHA-256"
    assert pg.scram_verifier(password, salt=salt) == theirs
    assert pg.scram_verifier(password) != pg.scram_verifier(password)  # a fresh salt each time


def test_statements_quote_and_hide_the_password() -> None:
    d = pg.PostgresGrants("PostgreSQL", (15, 4))
    assert d.create_user('we"ird', "%", None) == 'CREATE ROLE "we""ird" LOGIN INHERIT PASSWORD \'****\''
    st = g.Statement(d.alter_password("bob"), password=d.password_parameter("secret-123"))
    sql, args = st.executable()
    assert sql == 'ALTER ROLE "bob" PASSWORD %s' and args[0].startswith("SCRAM-SHA-256$4096:")
    assert "secret-123" not in repr(st)
    assert d.lock("bob") == 'ALTER ROLE "bob" NOLOGIN' and d.lock("bob", locked=False) == 'ALTER ROLE "bob" LOGIN'
    assert d.account("bob", "%") == '"bob"'
    assert pg.grant_sql(pg.on_future("TABLES", "bob", "common_x"), "SELECT", '"dj_guest"') == (
        'ALTER DEFAULT PRIVILEGES FOR ROLE "bob" IN SCHEMA "common_x" GRANT SELECT ON TABLES TO "dj_guest"')
    assert pg.grant_sql(pg.on_future("SCHEMAS", "bob"), "USAGE", '"dj_guest"', revoke=True) == (
        'ALTER DEFAULT PRIVILEGES FOR ROLE "bob" REVOKE USAGE ON SCHEMAS FROM "dj_guest"')


def _objs() -> pg.PgObjects:
    return pg.PgObjects("lab", {"common_a": "admin", "alice_x": "alice", "alice_y": "admin", "ephys_rec": "admin"},
                        {"common_a": (("t1", "bob"), ("t2", "admin")), "alice_y": (("t", "admin"),)},
                        ("alice", "bob"))


def test_role_definitions_mean_what_they_mean_on_mysql() -> None:
    objs = _objs()
    guest = pg.role_expected("guest", objs, scope="lab", modules=("common",))
    assert pg.Priv('SCHEMA "ephys_rec"', "USAGE") in guest
    assert pg.Priv('TABLE "common_a"."t1"', "SELECT") in guest
    assert not any(p.name in ("INSERT", "CREATE") for p in guest)
    assert pg.Priv('FUTURE TABLES OF "bob"', "SELECT") in guest
    user = pg.role_expected("user", objs, scope="lab", modules=("common",), user_can_create=False)
    assert pg.Priv('TABLE "common_a"."t2"', "INSERT") in user
    assert pg.Priv('SCHEMA "common_a"', "CREATE") not in user  # user_can_create: false
    assert pg.Priv('FUTURE TABLES OF "alice" IN SCHEMA "common_a"', "DELETE") in user
    assert not any(p.name == "INSERT" and "ephys" in p.on for p in user)
    listed = pg.role_expected("collab", objs, scope=("ephys",), modules=("common",))
    assert {p.on for p in listed if p.name == "USAGE"} == {'SCHEMA "common_a"', 'SCHEMA "ephys_rec"'}
    assert pg.Priv('FUTURE TABLES OF "bob" IN SCHEMA "ephys_rec"', "SELECT") in listed
    own = pg.user_expected("collab", "alice", objs)
    assert pg.Priv('DATABASE "lab"', "CREATE") in own
    assert pg.Priv('SCHEMA "alice_y"', "CREATE") in own  # made by an admin for her
    assert not any("alice_x" in p.on for p in own)  # hers: the owner holds everything already
    assert pg.user_expected("guest", "alice", objs) == frozenset()


def test_fold_and_fix_order() -> None:
    objs = _objs()
    missing = pg.fold({pg.Priv('TABLE "common_a"."t1"', "SELECT"), pg.Priv('TABLE "common_a"."t2"', "SELECT"),
                       pg.Priv('TABLE "alice_y"."t"', "SELECT")}, objs)
    assert missing == {pg.Priv('ALL TABLES IN SCHEMA "common_a"', "SELECT"), pg.Priv('TABLE "alice_y"."t"', "SELECT")}
    stmts = pg.fix_statements("dj_guest", (), missing, ("dj_user",), {pg.Priv('SCHEMA "ephys_rec"', "GRANT OPTION")})
    assert [s for s, _ in stmts] == [
        'GRANT SELECT ON ALL TABLES IN SCHEMA "common_a" TO "dj_guest"',
        'GRANT SELECT ON TABLE "alice_y"."t" TO "dj_guest"',
        'REVOKE "dj_user" FROM "dj_guest"',
        'REVOKE GRANT OPTION FOR ALL PRIVILEGES ON SCHEMA "ephys_rec" FROM "dj_guest"']
