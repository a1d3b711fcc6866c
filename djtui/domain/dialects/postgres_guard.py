"""The schema guard: what MySQL's grants on schema patterns (`alice\\_%`, `common\\_%`) do that PostgreSQL's
grants cannot. Pure SQL text.

A user makes its own schemas with CREATE on the database, which cannot say which names; and a new
schema of a shared module gets no grants by itself, since default privileges know creators, not
schema names. An event trigger at the end of CREATE SCHEMA (and ALTER SCHEMA, so a rename cannot
dodge it) closes both: a collab or user may name a schema ``<itself>_...`` (a user also
``<module>_...`` when dj_user may create tables), admins and accounts that may create roles anything;
a new module schema gets dj_user's privileges and the default privileges of every creator, and a
new schema under a read prefix (``read_scope`` as a list) gets the readers'. The function is
SECURITY DEFINER (the superuser who ran ``roles init``) with a fixed search_path, because only a
superuser may set default privileges for other roles; event triggers need a superuser to create.
A djtui role dropped by hand must not stop every CREATE SCHEMA in the database, so the roles are
looked up by name (a missing one is no membership, no grant).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from djtui.domain.dialects.postgres import POSTGRES

GUARD = "djtui_schema_guard"  # the event trigger, and its function in schema public
TABLE_WRITE = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"

_BODY = """
DECLARE
  obj record;
  s text;
  who text := session_user;
  modules text[] := {modules};
  readers text[] := {readers};
  creators text[];
  c text;
BEGIN
  FOR obj IN SELECT * FROM pg_event_trigger_ddl_commands()
             WHERE command_tag IN ('CREATE SCHEMA', 'ALTER SCHEMA') AND object_type = 'schema' LOOP
    SELECT nspname INTO s FROM pg_namespace WHERE oid = obj.objid;
    IF s IS NULL THEN CONTINUE; END IF;
    IF NOT (EXISTS (SELECT 1 FROM pg_roles WHERE rolname = who AND (rolsuper OR rolcreaterole))
            OR pg_has_role(who, (SELECT oid FROM pg_roles WHERE rolname = 'dj_admin'), 'MEMBER')
            OR starts_with(s, who || '_')
            OR ({user_can_create}
                AND pg_has_role(who, (SELECT oid FROM pg_roles WHERE rolname = 'dj_user'), 'MEMBER')
                AND EXISTS (SELECT 1 FROM unnest(modules) m WHERE starts_with(s, m || '_')))) THEN
      RAISE EXCEPTION 'djtui: % may not name a schema %: its own schemas are %_...', who, s, who
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'an admin makes schemas under other names (djtui accounts: the schema guard)';
    END IF;
    IF obj.command_tag <> 'CREATE SCHEMA' THEN CONTINUE; END IF;
    SELECT array_agg(DISTINCT n) INTO creators FROM (
      SELECT m.rolname AS n FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid
        JOIN pg_roles m ON m.oid = am.member
       WHERE g.rolname IN ('dj_collab', 'dj_user', 'dj_admin') AND NOT am.admin_option
         AND m.rolname NOT IN ('dj_guest', 'dj_collab', 'dj_user', 'dj_admin')
      UNION SELECT rolname FROM pg_roles WHERE rolcanlogin AND (rolsuper OR rolcreaterole)) x;
    IF EXISTS (SELECT 1 FROM unnest(modules) m WHERE starts_with(s, m || '_'))
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dj_user') THEN
      EXECUTE format('GRANT {schema_privs} ON SCHEMA %I TO dj_user', s);
      FOREACH c IN ARRAY coalesce(creators, '{{}}') LOOP
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT {table_write} ON TABLES '
                       'TO dj_user', c, s);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES '
                       'TO dj_user', c, s);
      END LOOP;
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(readers) m WHERE starts_with(s, m || '_'))
       AND (SELECT count(*) FROM pg_roles WHERE rolname IN ('dj_guest', 'dj_collab', 'dj_user')) = 3 THEN
      EXECUTE format('GRANT USAGE ON SCHEMA %I TO dj_guest, dj_collab, dj_user', s);
      FOREACH c IN ARRAY coalesce(creators, '{{}}') LOOP
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES '
                       'TO dj_guest, dj_collab, dj_user', c, s);
      END LOOP;
    END IF;
  END LOOP;
END
"""


def _array(items: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join(POSTGRES.literal(i) for i in items) + "]::text[]"


def guard_body(modules: Sequence[str], *, user_can_create: bool, read_prefixes: Sequence[str] | None) -> str:
    """The function's body for these settings; ``read_prefixes`` None: the readers read every schema already
    (``read_scope`` all or lab, through default privileges on schemas)."""
    return _BODY.format(modules=_array(modules), readers=_array(read_prefixes or ()),
                        user_can_create="true" if user_can_create else "false",
                        schema_privs="USAGE, CREATE" if user_can_create else "USAGE", table_write=TABLE_WRITE)


def guard_statements(body: str, *, function_exists: bool, trigger_on: bool) -> list[tuple[str, str]]:
    """``(sql, why)`` that make the guard current: the function (replaced), and the trigger when missing."""
    fn = (f"CREATE OR REPLACE FUNCTION public.{GUARD}() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER "
          f"SET search_path = pg_catalog, pg_temp AS $djtui${body}$djtui$")
    why = "the schema guard, up to date with the modules" if function_exists else "the schema guard"
    out = [(fn, why)]
    if not trigger_on:
        out.append((f"CREATE EVENT TRIGGER {GUARD} ON ddl_command_end WHEN TAG IN ('CREATE SCHEMA', 'ALTER SCHEMA') "
                    f"EXECUTE FUNCTION public.{GUARD}()", "new schemas are named by the rules and granted"))
    return out


_MODULES = re.compile(r"modules text\[\] := ARRAY\[(?P<items>[^\]]*)\]::text\[\]")


def guard_modules(body: str | None) -> list[str]:
    """The module prefixes an installed guard grants on: the server's own record of ``roles add-module``."""
    m = _MODULES.search(body or "")
    if not m:
        return []
    return [x.replace("''", "'").replace("\\\\", "\\") for x in re.findall(r"E'((?:[^']|'')*)'", m.group("items"))]
