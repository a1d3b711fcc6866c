"""Roles, grants and accounts of a DataJoint lab, as plans of exact SQL. Pure code: no I/O.

Spyglass's role scheme (FIELD.md section 3) is kept, without its bugs: names are validated,
identifiers quoted, ``_``/``%`` escaped in schema patterns (user names included), default roles set
so a new user's role works at login, and passwords never inlined in the text a person sees.
One topic per module: ``names`` (kinds, validation, schema patterns), ``expected`` (what each role
and user should hold), ``plan`` (statements and plans), ``parse`` (SHOW GRANTS), ``drift``
(expected against actual, and the fix). How a server family spells the SQL is its grant dialect,
in ``djtui/domain/dialects`` (``mysql_grants.MySQLGrants``, here also as ``Dialect``).

May import: ``djtui.domain.dialects``, ``djtui.errors``. Nothing from services, tui or cli.
"""

from __future__ import annotations

from djtui.domain.dialects.mysql_grants import PASSWORD_SHOWN
from djtui.domain.dialects.mysql_grants import MySQLGrants as Dialect
from djtui.domain.grants.drift import (
    PRIV_ORDER,
    GrantDiff,
    describe_privs,
    diff_grants,
    diff_privs,
    expected_privs,
    fix_privs_statements,
    fix_statements,
    grant_text,
    render_privs,
)
from djtui.domain.grants.expected import (
    ExpectedGrant,
    Privileges,
    level,
    privileges_on,
    read_patterns,
    read_revokes,
    reads_system_schema,
    role_grants,
    user_own_grants,
)
from djtui.domain.grants.names import (
    ANY_SCHEMA,
    DB_ALL,
    KIND_OF_ROLE,
    KINDS,
    LAB_SCHEMAS,
    RANK,
    READ_SCOPES,
    ROLE_OF_KIND,
    SYSTEM_SCHEMAS,
    USER_NAME_MAX,
    escape_like,
    generate_password,
    like_match,
    prefix_pattern,
    validate_host,
    validate_module_name,
    validate_user_name,
)
from djtui.domain.grants.parse import (
    GrantLine,
    ParsedGrants,
    Priv,
    effective,
    grantee_of,
    held_privs,
    line_privs,
    parse_grant_line,
    parse_grants,
)
from djtui.domain.grants.plan import (
    Plan,
    Statement,
    role_admin_advice,
    role_of_grant,
)

__all__ = [
    "ANY_SCHEMA",
    "DB_ALL",
    "KINDS",
    "KIND_OF_ROLE",
    "LAB_SCHEMAS",
    "PASSWORD_SHOWN",
    "PRIV_ORDER",
    "RANK",
    "READ_SCOPES",
    "ROLE_OF_KIND",
    "SYSTEM_SCHEMAS",
    "USER_NAME_MAX",
    "Dialect",
    "ExpectedGrant",
    "GrantDiff",
    "GrantLine",
    "ParsedGrants",
    "Plan",
    "Priv",
    "Privileges",
    "Statement",
    "describe_privs",
    "diff_grants",
    "diff_privs",
    "effective",
    "escape_like",
    "expected_privs",
    "fix_privs_statements",
    "fix_statements",
    "generate_password",
    "grant_text",
    "grantee_of",
    "held_privs",
    "level",
    "like_match",
    "line_privs",
    "parse_grant_line",
    "parse_grants",
    "prefix_pattern",
    "privileges_on",
    "read_patterns",
    "read_revokes",
    "reads_system_schema",
    "render_privs",
    "role_admin_advice",
    "role_grants",
    "role_of_grant",
    "user_own_grants",
    "validate_host",
    "validate_module_name",
    "validate_user_name",
]
