"""DataJoint 2.3 itself, as each role's user, on PostgreSQL: a user declares and fills a pipeline in its own
schema and in a shared module; a guest reads it and DataJoint's insert is refused; a collab cannot declare
in the shared module. Each DataJoint session runs in a child process (its config is global), with the
password in the child's environment only."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from djtui.config import AccountSettings
from djtui.services.accounts import AccountsService
from djtui.services.servers.postgres import PrivatePostgres

from .conftest import unique
from .pg import PgLab, pg_lab

pytest.importorskip("datajoint")

SCRIPT = textwrap.dedent("""
    import sys
    import datajoint as dj
    dj.config["database.use_tls"] = False
    action, schema_name = sys.argv[1], sys.argv[2]
    schema = dj.Schema(schema_name, create_tables=action == "declare")

    @schema
    class Mouse(dj.Manual):
        definition = '''
        mouse_id: int32
        ---
        name: varchar(40)
        '''

    if action == "declare":
        Mouse.insert1({"mouse_id": 1, "name": "first"})
        print("declared", len(Mouse()))
    elif action == "read":
        print("read", sorted(int(v) for v in Mouse.to_arrays("mouse_id")))
    elif action == "insert":
        try:
            Mouse.insert1({"mouse_id": 2, "name": "second"})
            print("inserted")
        except Exception as exc:  # DataJoint's own error for a refused write
            print("refused", type(exc).__name__, str(exc).splitlines()[0])
""")


@pytest.fixture(scope="module")
def lab(pg_server: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgLab]:
    tmp = tmp_path_factory.mktemp("pg_acct_dj")
    with pg_lab(pg_server, tmp, unique("acctdj_")) as lab:
        db = lab.database()
        try:
            service = AccountsService(db, AccountSettings(shared_prefixes=("common",)))
            service.apply(service.plan_roles_init())
            for kind in ("guest", "collab", "user"):
                name = unique(f"dj{kind}_")
                lab.users.append(name)
                plan, _pw = service.plan_add_user(name, kind, password=f"Dj-{kind}-pass-1")
                service.apply(plan)
        finally:
            db.close()
        yield lab


def dj(lab: PgLab, kind: str, action: str, schema: str) -> str:
    user = next(u for u in lab.users if u.startswith(f"dj{kind}_"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "PG"))}
    env.update(DJ_HOST="127.0.0.1", DJ_PORT=str(lab.server.port), DJ_USER=user, DJ_PASS=f"Dj-{kind}-pass-1",
               DJ_BACKEND="postgresql", DJ_DATABASE_NAME=lab.dbname)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, action, schema], env=env, capture_output=True, text=True,
                          timeout=120, cwd=lab.tmp)
    return (proc.stdout + proc.stderr).strip()


def test_datajoint_sessions_get_what_each_role_allows(lab: PgLab) -> None:
    user = next(u for u in lab.users if u.startswith("djuser_"))
    own, shared = f"{user}_pipe", "common_dj"
    assert "declared 1" in dj(lab, "user", "declare", own)
    assert "declared 1" in dj(lab, "user", "declare", shared)
    for kind in ("guest", "collab"):
        assert "read [1]" in dj(lab, kind, "read", own), kind
        assert "read [1]" in dj(lab, kind, "read", shared), kind
        out = dj(lab, kind, "insert", shared)
        assert "refused" in out and "denied" in out.lower(), out
    assert "refused" in dj(lab, "collab", "insert", shared)  # no writes in a shared module
    collab = next(u for u in lab.users if u.startswith("djcollab_"))
    assert "declared 1" in dj(lab, "collab", "declare", f"{collab}_mine")  # its own prefix
    db = lab.database()
    try:
        service = AccountsService(db, AccountSettings(shared_prefixes=("common",)))
        # what the users made, in their own schemas and in a new schema of a module, is granted as defined
        assert service.read().drift == []
        # the schema guard refuses a collab's schema outside its prefix, through DataJoint too
        assert "declared" not in dj(lab, "collab", "declare", "common_dj2")
        # without the guard (a server where no superuser installed it) PostgreSQL's CREATE on the database
        # cannot say which names: the schema is made, and it is drift of that user
        lab.sql("ALTER EVENT TRIGGER djtui_schema_guard DISABLE")
        assert "declared 1" in dj(lab, "collab", "declare", "common_dj2")
        drift = service.read().drift
        assert f'user {collab}: + OWNS SCHEMA "common_dj2" (outside {collab}_...; rename it or give it to an admin ' \
               "by hand: ALTER SCHEMA ... OWNER TO)" in drift
        assert "role dj_user: - SCHEMA GUARD (event trigger djtui_schema_guard: names and grants new schemas)" in drift
    finally:
        db.close()
