"""Accounts on PostgreSQL (issue 15): roles, users made through the CLI, proven by logging in with `psql`;
two-way drift read from the catalogs and compared with PostgreSQL's own privilege functions."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from djtui.cli import main
from djtui.config import AccountSettings
from djtui.domain import grants as g
from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog
from djtui.services.accounts import AccountsService
from djtui.services.servers.postgres import PrivatePostgres

from .conftest import unique
from .pg import PgLab, pg_lab

KINDS = ("guest", "collab", "user", "admin")


@pytest.fixture(scope="module")
def lab(pg_server: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgLab]:
    """A database with a shared module schema and a lab schema, each with a table, roles initialised."""
    tmp = tmp_path_factory.mktemp("pg_acct")
    with pg_lab(pg_server, tmp, unique("acct_")) as lab:
        lab.sql("CREATE SCHEMA common_acct", "CREATE TABLE common_acct.t (id int PRIMARY KEY)",
                "INSERT INTO common_acct.t VALUES (1)", "CREATE TABLE common_acct.serials (id serial PRIMARY KEY)",
                "CREATE SCHEMA ephys_lab",
                "CREATE TABLE ephys_lab.session (id int PRIMARY KEY)", "INSERT INTO ephys_lab.session VALUES (7)")
        assert run(lab, "roles", "init") == 0
        yield lab


@pytest.fixture(scope="module")
def service(lab: PgLab) -> Iterator[AccountsService]:
    db = lab.database()
    try:
        yield AccountsService(db, AccountSettings())
    finally:
        db.close()


def run(lab: PgLab, *argv: str, stdin: str | None = None) -> int:
    if stdin is None:
        return main(["--config", str(lab.cfg), *argv])
    import sys
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return main(["--config", str(lab.cfg), *argv])
    finally:
        sys.stdin = old


def add_user(lab: PgLab, kind: str, password: str) -> str:
    name = unique(f"pg{kind}_")
    lab.users.append(name)
    assert run(lab, "users", "add", name, "--role", kind, "--password-stdin", stdin=password + "\n") == 0
    return name


def ok(lab: PgLab, user: str, pw: str, sql: str) -> bool:
    res = lab.psql(user, pw, sql)
    if res.returncode != 0:
        assert "permission denied" in res.stderr or "must be owner" in res.stderr, res.stderr
    return res.returncode == 0


@pytest.fixture(scope="module")
def users(lab: PgLab) -> dict[str, tuple[str, str]]:
    out = {}
    for n, kind in enumerate(KINDS):
        pw = f"Pw-{kind}-{n}:x\\y'z"  # a colon, a backslash and a quote: .pgpass escaping and SQL quoting
        out[kind] = (add_user(lab, kind, pw), pw)
    return out


def test_guest_made_by_the_cli_reads_and_is_refused_a_write(lab: PgLab, users) -> None:
    name, pw = users["guest"]
    res = lab.psql(name, pw, "SELECT id FROM ephys_lab.session")
    assert res.returncode == 0 and res.stdout.strip() == "7", res.stderr
    res = lab.psql(name, pw, "INSERT INTO ephys_lab.session VALUES (8)")
    assert res.returncode != 0 and "permission denied for table session" in res.stderr
    assert not ok(lab, name, pw, "INSERT INTO common_acct.t VALUES (8)")
    assert not ok(lab, name, pw, f"CREATE SCHEMA {name}_x")  # a guest has no schemas of its own
    assert lab.sql("SELECT count(*) FROM ephys_lab.session") == [(1,)]


def test_each_role_can_do_what_it_may_and_no_more(lab: PgLab, users) -> None:
    collab, cpw = users["collab"]
    user, upw = users["user"]
    admin, apw = users["admin"]
    # collab: reads, writes nothing shared, makes and fills its own schemas
    assert ok(lab, collab, cpw, "SELECT * FROM common_acct.t")
    assert not ok(lab, collab, cpw, "INSERT INTO common_acct.t VALUES (2)")
    assert not ok(lab, collab, cpw, "CREATE TABLE common_acct.c (id int)")
    assert ok(lab, collab, cpw, f"CREATE SCHEMA {collab}_x; CREATE TABLE {collab}_x.t (id int); "
                                f"INSERT INTO {collab}_x.t VALUES (1)")
    # user: writes and creates in the shared module, only reads the lab's other schemas
    assert ok(lab, user, upw, "INSERT INTO common_acct.t VALUES (3); DELETE FROM common_acct.t WHERE id = 3")
    assert ok(lab, user, upw, "CREATE TABLE common_acct.made_by_user (id int); "
                              "INSERT INTO common_acct.made_by_user VALUES (5)")
    # a `serial` column: inserting needs USAGE on its sequence, for the admin's table and the user's own
    assert ok(lab, user, upw, "INSERT INTO common_acct.serials DEFAULT VALUES")
    assert not ok(lab, collab, cpw, "INSERT INTO common_acct.serials DEFAULT VALUES")
    assert ok(lab, user, upw, "CREATE TABLE common_acct.user_serials (id serial PRIMARY KEY)")
    assert not ok(lab, user, upw, "INSERT INTO ephys_lab.session VALUES (9)")
    assert not ok(lab, user, upw, "CREATE TABLE ephys_lab.x (id int)")
    assert ok(lab, user, upw, f"CREATE SCHEMA {user}_y; CREATE TABLE {user}_y.t (id int)")
    # admin: writes and creates everywhere
    assert ok(lab, admin, apw, "INSERT INTO ephys_lab.session VALUES (10); DELETE FROM ephys_lab.session WHERE id = 10")
    assert ok(lab, admin, apw, "CREATE TABLE ephys_lab.by_admin (id int)")
    # default privileges: what the user and the collab created later is readable by the guest, writable by
    # the admin, and the guest still cannot write it
    guest, gpw = users["guest"]
    res = lab.psql(guest, gpw, "SELECT id FROM common_acct.made_by_user")
    assert res.returncode == 0 and res.stdout.strip() == "5", res.stderr
    assert ok(lab, guest, gpw, f"SELECT * FROM {collab}_x.t")
    assert not ok(lab, guest, gpw, "INSERT INTO common_acct.made_by_user VALUES (6)")
    assert ok(lab, admin, apw, "INSERT INTO common_acct.made_by_user VALUES (6)")
    assert ok(lab, admin, apw, f"INSERT INTO {collab}_x.t VALUES (2)")
    assert ok(lab, admin, apw, "INSERT INTO common_acct.user_serials DEFAULT VALUES")
    assert not ok(lab, collab, cpw, "DROP TABLE common_acct.made_by_user")  # only the owner drops


def test_check_matches_postgres_privilege_functions_and_is_clean(lab: PgLab, service: AccountsService,
                                                                  users, capsys) -> None:
    assert run(lab, "users", "check") == 0, capsys.readouterr().out
    state = service.read()
    assert not state.drift
    # what PostgreSQL itself says, role by role, on every table and schema of the lab
    rows = lab.sql("SELECT n.nspname, c.relname, "
                   "has_schema_privilege('dj_guest', n.oid, 'USAGE'), has_table_privilege('dj_guest', c.oid, 'SELECT'),"
                   "has_table_privilege('dj_guest', c.oid, 'INSERT'), has_table_privilege('dj_user', c.oid, 'INSERT'),"
                   "has_table_privilege('dj_admin', c.oid, 'INSERT') FROM pg_class c "
                   "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
                   "AND n.nspname NOT IN ('pg_catalog', 'information_schema')")
    assert rows
    for schema, table, usage, select, g_insert, u_insert, a_insert in rows:
        assert usage and select and not g_insert and a_insert, (schema, table)
        assert u_insert == (schema == "common_acct"), (schema, table)
    assert lab.sql("SELECT has_sequence_privilege('dj_user', 'common_acct.serials_id_seq', 'USAGE'), "
                   "has_sequence_privilege('dj_guest', 'common_acct.serials_id_seq', 'USAGE'), "
                   "has_sequence_privilege('dj_admin', 'common_acct.user_serials_id_seq', 'USAGE')") == [
        (True, False, True)]
    guest = state.role("dj_guest")
    assert guest.grants["ephys\\_lab"] >= {"USAGE", "SELECT"} and "INSERT" not in guest.grants["ephys\\_lab"]
    names = {u.user: u for u in state.users}
    assert names[users["collab"][0]].kind == "collab" and names[users["collab"][0]].host == ""
    assert names[users["collab"][0]].account == users["collab"][0]  # no @host on PostgreSQL
    assert names[users["user"][0]].level_on("common_acct") == "ALL"
    assert names[users["guest"][0]].level_on("common_acct") == "R"


def test_two_way_drift_and_fix(lab: PgLab, service: AccountsService, users, capsys) -> None:
    guest, gpw = users["guest"]
    lab.sql("GRANT INSERT ON ephys_lab.session TO dj_guest", "REVOKE USAGE ON SCHEMA common_acct FROM dj_collab",
            f"GRANT UPDATE ON common_acct.t TO \"{guest}\"",
            "GRANT SELECT ON ephys_lab.session TO dj_collab WITH GRANT OPTION")
    capsys.readouterr()
    assert run(lab, "users", "check", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    roles = {r["name"]: r for r in report["roles"]}
    assert '+ INSERT ON TABLE "ephys_lab"."session"' in roles["dj_guest"]["diff"]
    assert '- USAGE ON SCHEMA "common_acct"' in roles["dj_collab"]["diff"]
    assert 'GRANT OPTION ON TABLE "ephys_lab"."session"' in roles["dj_collab"]["extra"]
    user = next(u for u in report["users"] if u["user"] == guest)
    assert user["host"] == "" and user["account"] == guest
    assert '+ UPDATE ON TABLE "common_acct"."t"' in user["diff"]
    assert ok(lab, guest, gpw, "INSERT INTO ephys_lab.session VALUES (11)")  # the drift is real
    assert run(lab, "users", "fix", "--dry-run") == 0
    out = capsys.readouterr().out
    assert 'REVOKE INSERT ON TABLE "ephys_lab"."session" FROM "dj_guest";' in out
    assert 'GRANT USAGE ON SCHEMA "common_acct" TO "dj_collab";' in out
    assert 'REVOKE GRANT OPTION FOR ALL PRIVILEGES ON TABLE "ephys_lab"."session" FROM "dj_collab";' in out
    assert f'REVOKE UPDATE ON TABLE "common_acct"."t" FROM "{guest}";' in out
    assert run(lab, "users", "fix", "--confirm", "FIX") == 0
    capsys.readouterr()
    assert run(lab, "users", "check") == 0
    assert lab.sql("SELECT has_table_privilege('dj_guest', 'ephys_lab.session', 'INSERT'), "
                   "has_schema_privilege('dj_collab', 'common_acct', 'USAGE'), "
                   "has_table_privilege('dj_collab', 'ephys_lab.session', 'SELECT WITH GRANT OPTION'), "
                   "has_table_privilege('dj_collab', 'ephys_lab.session', 'SELECT')") == [(False, True, False, True)]
    assert not ok(lab, guest, gpw, "INSERT INTO ephys_lab.session VALUES (12)")
    lab.sql("DELETE FROM ephys_lab.session WHERE id = 11")


def test_default_privileges_drift_is_seen(lab: PgLab, service: AccountsService, users) -> None:
    user = users["user"][0]
    lab.sql(f'ALTER DEFAULT PRIVILEGES FOR ROLE "{user}" REVOKE SELECT ON TABLES FROM dj_guest')
    state = service.read()
    assert f'- SELECT ON FUTURE TABLES OF "{user}"' in state.role("dj_guest").drift
    plan = service.plan_fix(["dj_guest"])
    assert [s.sql for s in plan.statements] == [
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{user}" GRANT SELECT ON TABLES TO "dj_guest"']
    service.apply(plan)
    rows = lab.sql("SELECT count(*) FROM pg_default_acl d, aclexplode(d.defaclacl) a "
                   f"WHERE d.defaclrole = '{user}'::regrole AND a.grantee = 'dj_guest'::regrole "
                   "AND a.privilege_type = 'SELECT' AND d.defaclobjtype = 'r'")
    assert rows == [(1,)]
    assert not service.read().drift


def test_users_list_shows_no_host(lab: PgLab, users, capsys) -> None:
    capsys.readouterr()
    assert run(lab, "users", "list") == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith(users["user"][0] + " "))
    assert "dj_user" in line and "%" not in line and "@" not in line
    assert "dj_guest: ok; held by 1" in out
    assert run(lab, "users", "list", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["server"].startswith("PostgreSQL 15")
    assert {u["user"]: u["host"] for u in data["users"]}[users["admin"][0]] == ""


def test_password_reset_never_in_argv_or_log(lab: PgLab, users, capsys) -> None:
    name, old = users["collab"]
    new = "N3w-pass:word\\'"
    commandlog.clear()
    assert run(lab, "users", "reset-password", name, "--password-stdin", stdin=new + "\n") == 0
    out = capsys.readouterr().out
    assert f"ALTER ROLE \"{name}\" PASSWORD '****';" in out and new not in out
    stored = lab.sql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{name}'")[0][0]
    assert stored.startswith("SCRAM-SHA-256$4096:")
    logged = "\n".join(e.text for e in commandlog.entries())
    assert "PASSWORD '****'" in logged and new not in logged and stored not in logged
    assert ok(lab, name, new, "SELECT 1")
    assert lab.psql(name, old, "SELECT 1").returncode != 0
    audit = (lab.tmp / "audit.jsonl").read_text()
    assert "users-reset-password" in audit and new not in audit and stored not in audit and old not in audit
    users["collab"] = (name, new)


def test_lock_unlock_and_set_role(lab: PgLab, users, capsys) -> None:
    name, pw = users["guest"]
    assert run(lab, "users", "lock", name, "--confirm", name) == 0
    res = lab.psql(name, pw, "SELECT 1")
    assert res.returncode != 0 and "not permitted to log in" in res.stderr
    assert run(lab, "users", "unlock", name, "--confirm", name) == 0
    assert ok(lab, name, pw, "SELECT 1")
    assert run(lab, "users", "set-role", name, "user", "--confirm", name) == 0
    assert ok(lab, name, pw, "INSERT INTO common_acct.t VALUES (40); DELETE FROM common_acct.t WHERE id = 40")
    capsys.readouterr()
    assert run(lab, "users", "check") == 0, capsys.readouterr().out
    assert run(lab, "users", "set-role", name, "guest", "--confirm", name) == 0
    assert not ok(lab, name, pw, "INSERT INTO common_acct.t VALUES (41)")
    capsys.readouterr()
    assert run(lab, "users", "check") == 0, capsys.readouterr().out


def test_host_is_refused_and_drop_keeps_schemas(lab: PgLab, users, capsys) -> None:
    assert run(lab, "users", "add", "nohostuser", "--role", "guest", "--host", "10.0.%") == 2
    assert "PostgreSQL accounts have no host" in capsys.readouterr().err
    name = add_user(lab, "collab", "Drop-me-123")
    assert ok(lab, name, "Drop-me-123", f"CREATE SCHEMA {name}_keep; CREATE TABLE {name}_keep.t (id int)")
    assert run(lab, "users", "drop", name, "--confirm", f"DROP {name}") == 0
    assert lab.sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{name}'") == []
    assert lab.sql(f"SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '{name}_keep'") == [
        ("djadmin",)]
    capsys.readouterr()
    assert run(lab, "users", "check") == 0, capsys.readouterr().out


def test_add_module_grants_dj_user_on_existing_schemas(lab: PgLab, service: AccountsService) -> None:
    lab.sql("CREATE SCHEMA spikes_sorting", "CREATE TABLE spikes_sorting.units (id int)")
    assert "no schema nomod_... exists yet: the schema guard grants" in service.plan_add_module("nomod").render()
    plan = service.plan_add_module("spikes")
    # USAGE came with the schema (the admin's default privileges); writing is what the module adds
    assert 'GRANT CREATE ON SCHEMA "spikes_sorting" TO "dj_user"' in [s.sql for s in plan.statements]
    service.apply(plan)
    state = service.read()
    assert "spikes" in state.modules
    assert not state.drift, state.drift
    assert lab.sql("SELECT has_table_privilege('dj_user', 'spikes_sorting.units', 'INSERT')") == [(True,)]


def test_stale_plan_is_refused_and_a_half_made_user_is_undone(lab: PgLab, service: AccountsService, users) -> None:
    guest = users["guest"][0]
    lab.sql(f'GRANT DELETE ON common_acct.t TO "{guest}"')
    plan = service.plan_fix([guest])
    assert [s.sql for s in plan.statements] == [f'REVOKE DELETE ON TABLE "common_acct"."t" FROM "{guest}"']
    lab.sql(f'GRANT TRUNCATE ON common_acct.t TO "{guest}"')  # by hand, after the plan was shown
    with pytest.raises(OperationFailed, match="changed since the plan was shown") as info:
        service.apply(plan, recheck=lambda: service.plan_fix([guest]))
    assert f'REVOKE DELETE, TRUNCATE ON TABLE "common_acct"."t" FROM "{guest}"' in str(info.value)
    assert '+ DELETE, TRUNCATE ON TABLE "common_acct"."t"' in service.read().find(guest)[0].drift  # nothing ran
    service.apply(service.plan_fix([guest]))
    assert service.read().find(guest)[0].drift == ()

    name = unique("half_")
    lab.users.append(name)
    plan, _pw = service.plan_add_user(name, "user")
    broken = replace(plan, statements=(*plan.statements[:3],
                                       g.Statement('GRANT SELECT ON TABLE "common_acct"."nope" TO "dj_user"')))
    with pytest.raises(OperationFailed, match="undone") as info:
        service.apply(broken)
    text = str(info.value)
    assert 'relation "common_acct.nope" does not exist' in text and "3 of 4 statements ran" in text
    assert lab.sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{name}'") == []


def test_password_expiry_is_valid_until(lab: PgLab) -> None:
    db = lab.database()
    try:
        service = AccountsService(db, AccountSettings(password_expiry_days=30))
        name = unique("exp_")
        lab.users.append(name)
        plan, _pw = service.plan_add_user(name, "guest")
        assert " VALID UNTIL E'" in plan.statements[0].sql
        service.apply(plan)
    finally:
        db.close()
    (days,) = lab.sql(f"SELECT round(extract(epoch FROM rolvaliduntil - now()) / 86400) FROM pg_roles "
                      f"WHERE rolname = '{name}'")[0]
    assert days == 30


def test_schema_guard_names_and_grants_new_schemas(lab: PgLab, service: AccountsService, users, capsys) -> None:
    collab, cpw = users["collab"]
    user, upw = users["user"]
    guest, gpw = users["guest"]
    res = lab.psql(collab, cpw, "CREATE SCHEMA common_by_collab")
    assert res.returncode != 0 and f"djtui: {collab} may not name a schema common_by_collab" in res.stderr
    res = lab.psql(collab, cpw, f"CREATE SCHEMA {collab}_ok; ALTER SCHEMA {collab}_ok RENAME TO ephys_sneaky")
    assert res.returncode != 0 and "may not name a schema ephys_sneaky" in res.stderr  # a rename cannot dodge it
    # a new schema of a shared module made by one user: every dj_user member writes there, now and later
    assert ok(lab, user, upw, "CREATE SCHEMA common_fresh; CREATE TABLE common_fresh.t (id serial PRIMARY KEY)")
    assert lab.sql("SELECT has_schema_privilege('dj_user', 'common_fresh', 'CREATE'), "
                   "has_table_privilege('dj_user', 'common_fresh.t', 'INSERT'), "
                   "has_sequence_privilege('dj_user', 'common_fresh.t_id_seq', 'USAGE'), "
                   "has_table_privilege('dj_guest', 'common_fresh.t', 'SELECT'), "
                   "has_table_privilege('dj_guest', 'common_fresh.t', 'INSERT')") == [(True, True, True, True, False)]
    assert ok(lab, guest, gpw, "SELECT * FROM common_fresh.t")
    capsys.readouterr()
    assert run(lab, "users", "check") == 0, capsys.readouterr().out
    # a module added before any of its schemas exists is kept by the guard, which grants when one is made
    plan = service.plan_add_module("later")
    assert any("djtui_schema_guard" in st.sql for st in plan.statements)
    service.apply(plan)
    assert "later" in service.read().modules
    assert ok(lab, user, upw, "CREATE SCHEMA later_x; CREATE TABLE later_x.t (id int)")
    assert lab.sql("SELECT has_table_privilege('dj_user', 'later_x.t', 'DELETE')") == [(True,)]
    assert run(lab, "users", "check") == 0, capsys.readouterr().out
    # a guard switched off is drift, and `users fix` puts it back
    lab.sql("DROP EVENT TRIGGER djtui_schema_guard")
    assert "role dj_user: - SCHEMA GUARD (event trigger djtui_schema_guard: names and grants new schemas)" in (
        service.read().drift)
    service.apply(service.plan_fix())
    assert service.read().drift == []
    assert lab.psql(collab, cpw, "CREATE SCHEMA later_by_collab").returncode != 0


def test_quoting_holds_and_bad_input_is_a_user_error(lab: PgLab, service: AccountsService, users) -> None:
    for bad in ('x"; DROP ROLE djadmin; --', "a`b", "ev%l"):
        with pytest.raises(UserError):
            service.plan_add_user(bad, "guest")
    with pytest.raises(UserError, match="already exists"):
        service.plan_add_user(users["guest"][0], "guest")
    with pytest.raises(UserError, match="not a role"):
        service.plan_add_user(unique("r_"), "boss")
    with pytest.raises(UserError, match="shorter"):
        service.plan_add_user(unique("r_"), "guest", password="short")
    # the quoting itself holds for names validation would refuse: the server stores them verbatim
    weird = "q\"'%;" + unique("w")
    lab.users.append(weird)
    d = service.dialect()
    service.apply(g.Plan("weird", (g.Statement(d.create_user(weird, "", None), password=d.password_parameter(
        "Weird-pass-1234")), g.Statement(d.grant_role("dj_guest", weird)))))
    assert service.user_exists(weird) == [""]
    assert lab.sql(f"SELECT count(*) FROM pg_roles WHERE rolname = {service.db.dialect.literal(weird)}") == [(1,)]
    [acct] = service.read().find(weird)
    assert acct.kind == "guest" and acct.drift == ()
    res = lab.psql(weird, "Weird-pass-1234", "SELECT id FROM ephys_lab.session ORDER BY id LIMIT 1")
    assert res.returncode == 0 and res.stdout.strip() == "7", res.stderr
