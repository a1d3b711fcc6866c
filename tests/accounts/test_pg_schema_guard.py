"""The schema guard on a PostgreSQL server of its own: read_scope as a list of prefixes (a new schema under
a read prefix is granted to the readers), and a djtui role dropped by hand does not stop CREATE SCHEMA."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from djtui.config import AccountSettings
from djtui.services.accounts import AccountsService
from djtui.services.database import Database
from djtui.services.servers.postgres import PrivatePostgres

from .pg import PgLab


def test_guard_with_read_prefixes_and_a_dropped_role(tmp_path: Path) -> None:
    with PrivatePostgres(tmp_path / "srv") as srv:
        srv.create_database("lab")
        lab = PgLab(srv, "lab", tmp_path / "unused.yaml", tmp_path)
        db = Database(dataclasses.replace(srv.settings, dbname="lab"))
        try:
            service = AccountsService(db, AccountSettings(read_scope=("ephys",), shared_prefixes=("common",)))
            service.apply(service.plan_roles_init())
            plan, _ = service.plan_add_user("alice", "user", password="Alice-pass-123")
            service.apply(plan)
            plan, _ = service.plan_add_user("gina", "guest", password="Gina-pass-123")
            service.apply(plan)
            assert lab.psql("alice", "Alice-pass-123", "CREATE SCHEMA alice_own").returncode == 0
            lab.sql("CREATE SCHEMA ephys_new", "CREATE TABLE ephys_new.t (id int)",
                    "INSERT INTO ephys_new.t VALUES (3)", "CREATE SCHEMA other_new",
                    "CREATE TABLE other_new.t (id int)")
            res = lab.psql("gina", "Gina-pass-123", "SELECT id FROM ephys_new.t")
            assert res.returncode == 0 and res.stdout.strip() == "3", res.stderr  # under a read prefix
            res = lab.psql("gina", "Gina-pass-123", "SELECT id FROM other_new.t")
            assert res.returncode != 0 and "permission denied for schema other_new" in res.stderr  # outside it
            assert lab.psql("gina", "Gina-pass-123", "SELECT * FROM alice_own.x").returncode != 0
            assert service.read().drift == []
            # a role dropped by hand: CREATE SCHEMA still works for whom the rules allow, and is drift
            lab.sql("DROP OWNED BY dj_admin", "DROP ROLE dj_admin")
            assert lab.psql("alice", "Alice-pass-123", "CREATE SCHEMA alice_after").returncode == 0
            assert lab.psql("alice", "Alice-pass-123", "CREATE SCHEMA common_after").returncode == 0
            lab.sql("CREATE SCHEMA admin_after")
            assert "role dj_admin: role does not exist (run `djtui roles init`)" in service.read().drift
        finally:
            db.close()
