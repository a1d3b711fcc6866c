"""Pure tests of the grant plans: both dialects' SQL text, quoting, escaping, parsing, drift."""

from __future__ import annotations

import pytest

from djtui.domain import grants as g
from djtui.domain.dialects import MYSQL as QUOTING  # the one place quoting lives
from djtui.errors import UserError

MYSQL = g.Dialect("MySQL", (8, 0, 36))
MARIA = g.Dialect("MariaDB", (10, 11, 6))


def test_mysql8_dialect_sql_text() -> None:
    assert MYSQL.create_role("dj_user") == "CREATE ROLE IF NOT EXISTS 'dj_user'"
    assert MYSQL.grant_role("dj_user", "alice", "%") == "GRANT 'dj_user' TO 'alice'@'%'"
    assert MYSQL.set_default_role("dj_user", "alice", "%") == "SET DEFAULT ROLE ALL TO 'alice'@'%'"
    assert MYSQL.grant("SELECT", "%", MYSQL.role("dj_guest")) == "GRANT SELECT ON `%`.* TO 'dj_guest'"
    assert (MYSQL.grant("ALL PRIVILEGES", g.prefix_pattern("common"), MYSQL.role("dj_user"))
            == "GRANT ALL PRIVILEGES ON `common\\_%`.* TO 'dj_user'")
    assert (MYSQL.create_user("alice", "10.0.%", 90)
            == "CREATE USER 'alice'@'10.0.%' IDENTIFIED BY '****' PASSWORD EXPIRE INTERVAL 90 DAY")
    assert MYSQL.own_password() == "ALTER USER CURRENT_USER() IDENTIFIED BY '****'"
    assert MYSQL.alter_password("bob", "%") == "ALTER USER 'bob'@'%' IDENTIFIED BY '****'"


def test_mariadb_dialect_sql_text() -> None:
    assert MARIA.create_role("dj_user") == "CREATE ROLE IF NOT EXISTS `dj_user`"
    assert MARIA.set_default_role("dj_user", "alice", "%") == "SET DEFAULT ROLE `dj_user` FOR 'alice'@'%'"
    assert MARIA.grant_role("dj_admin", "a", "%") == "GRANT `dj_admin` TO 'a'@'%'"
    assert MARIA.own_password() == "SET PASSWORD = PASSWORD('****')"
    old = g.Dialect("MariaDB", (10, 3, 0))
    assert "EXPIRE" not in old.create_user("a", "%", 90)


def test_roles_need_mysql8() -> None:
    assert not g.Dialect("MySQL", (5, 7, 44)).supports_roles()
    assert "no roles" in g.Dialect("MySQL", (5, 7, 44)).notes()[0]
    assert MYSQL.supports_roles() and MARIA.supports_roles()


def test_prefix_patterns_escape_underscore_and_percent() -> None:
    assert g.prefix_pattern("common") == "common\\_%"
    assert g.prefix_pattern("spike_sorting") == "spike\\_sorting\\_%"
    assert g.escape_like("a%b_c\\") == "a\\%b\\_c\\\\"
    pat = g.prefix_pattern("ab_c")
    assert g.like_match(pat, "ab_c_x")
    assert not g.like_match(pat, "abXc_x")  # the unescaped Spyglass pattern would match this one
    assert not g.like_match(pat, "ab_cXx")
    assert g.like_match("%", "anything")


def test_quoting_cannot_break_out() -> None:
    assert QUOTING.ident("a`b") == "`a``b`"
    assert QUOTING.literal("o'b\\") == "'o''b\\\\'"
    assert MARIA.account("x'y", "%") == "'x''y'@'%'"
    assert MARIA.on("we`ird") == "`we``ird`.*"


@pytest.mark.parametrize("bad", ["bob'", "a`b", "x%", "a b", "", "1abc", "dj_user", "a;DROP", "é", "a" * 33])
def test_bad_user_names_are_refused(bad: str) -> None:
    with pytest.raises(UserError):
        g.validate_user_name(bad)


@pytest.mark.parametrize("good", ["alice", "a_b", "Lab_User2"])
def test_good_user_names(good: str) -> None:
    assert g.validate_user_name(good) == good


def test_hosts_and_modules() -> None:
    assert g.validate_host("10.0.%") == "10.0.%"
    for bad in ["a'b", "x`", "h h", ""]:
        with pytest.raises(UserError):
            g.validate_host(bad)
    with pytest.raises(UserError):
        g.validate_module_name("common%")
    assert g.validate_module_name("spike_v2") == "spike_v2"


def test_password_travels_as_parameter() -> None:
    st = g.Statement(MARIA.create_user("u", "10.%", 30), password="p%s'x")
    sql, args = st.executable()
    assert args == ("p%s'x",)
    assert "p%s'x" not in sql and "****" not in sql
    assert sql == "CREATE USER 'u'@'10.%%' IDENTIFIED BY %s PASSWORD EXPIRE INTERVAL 30 DAY"
    assert "p%s" not in repr(st)
    plain = g.Statement("GRANT SELECT ON `%`.* TO `dj_guest`")
    assert plain.executable() == ("GRANT SELECT ON `%`.* TO `dj_guest`", None)


def test_generated_passwords_are_strong_and_differ() -> None:
    pws = {g.generate_password() for _ in range(50)}
    assert len(pws) == 50
    for pw in pws:
        assert len(pw) == 20
        assert any(c.isupper() for c in pw) and any(c.islower() for c in pw) and any(c.isdigit() for c in pw)


def test_role_grants_follow_the_seed() -> None:
    assert [(e.pattern, e.privileges.label) for e in g.role_grants("guest", ["common"])] == [("%", "SELECT")]
    assert [(e.pattern, e.privileges.label) for e in g.role_grants("admin", ["common"])] == [("%", "ALL")]
    user = g.role_grants("user", ["common", "lfp"], user_can_create=False)
    assert [(e.pattern, e.privileges.label) for e in user] == [
        ("%", "SELECT"), ("common\\_%", "ALL -CREATE"), ("lfp\\_%", "ALL -CREATE")]
    assert g.user_own_grants("guest", "a", "%") == []
    assert g.user_own_grants("collab", "a_b", "%")[0].pattern == "a\\_b\\_%"


def test_parse_show_grants_both_flavors() -> None:
    lines = [
        "GRANT `dj_user` TO `a_b`@`%`",
        "GRANT USAGE ON *.* TO `a_b`@`%` IDENTIFIED BY PASSWORD '*A3C2'",
        "GRANT ALL PRIVILEGES ON `a\\_b\\_%`.* TO `a_b`@`%`",
        "SET DEFAULT ROLE `dj_user` FOR `a_b`@`%`",
    ]
    p = g.parse_grants(lines)
    assert p.roles == ("dj_user",)
    assert p.default_role == "dj_user"
    eff = g.effective(p.db, "MariaDB")
    assert eff == {"a\\_b\\_%": g.DB_ALL["MariaDB"]}
    mysql = g.parse_grants([
        "GRANT USAGE ON *.* TO `alice`@`%`",
        "GRANT SELECT, INSERT ON `common\\_%`.* TO `alice`@`%` WITH GRANT OPTION",
        "GRANT `dj_user`@`%`,`dj_guest`@`%` TO `alice`@`%`",
        "GRANT SELECT ON `db`.`tbl` TO `alice`@`%`",
    ])
    assert set(mysql.roles) == {"dj_user", "dj_guest"}
    assert g.effective(mysql.db, "MySQL") == {"common\\_%": frozenset({"SELECT", "INSERT"})}
    assert [x.grant_option for x in mysql.db] == [False, True]
    assert len(mysql.other) == 1


def test_drift_and_fix_statements() -> None:
    expected = g.role_grants("user", ["common"], user_can_create=False)
    actual = {"%": frozenset({"SELECT"}), "common\\_%": g.DB_ALL["MariaDB"]}
    drift = g.diff_grants(expected, actual, "MariaDB")
    assert drift == [("extra", "common\\_%", frozenset({"CREATE"}))]
    fix = g.fix_statements(MARIA, MARIA.role("dj_user"), expected, drift)
    assert [s.sql for s in fix] == ["REVOKE CREATE ON `common\\_%`.* FROM `dj_user`"]
    missing = g.diff_grants(expected, {}, "MariaDB")
    fix = [s.sql for s in g.fix_statements(MARIA, MARIA.role("dj_user"), expected, missing)]
    assert fix == ["GRANT SELECT ON `%`.* TO `dj_user`",
                   "GRANT ALL PRIVILEGES ON `common\\_%`.* TO `dj_user`",
                   "REVOKE CREATE ON `common\\_%`.* FROM `dj_user`"]
    assert g.diff_grants(g.role_grants("guest", []), {"%": frozenset({"SELECT"})}, "MySQL") == []
    extra = g.diff_grants(g.role_grants("guest", []), {"%": frozenset({"SELECT"}), "common\\_%": frozenset({"DROP"})},
                          "MySQL", managed_extra=["common\\_%"])
    assert extra == [("extra", "common\\_%", frozenset({"DROP"}))]


def test_grant_matrix_levels() -> None:
    grants = {"%": frozenset({"SELECT"}), "common\\_%": g.DB_ALL["MySQL"] - {"CREATE"}}
    assert g.level(g.privileges_on("common_x", grants)) == "RW"
    assert g.level(g.privileges_on("other_x", grants)) == "R"
    assert g.level(g.privileges_on("x", {})) == "-"
    assert g.level(g.privileges_on("x", {"*": g.DB_ALL["MySQL"]})) == "ALL"


def test_plan_render_lists_sql_and_diff() -> None:
    plan = g.Plan("t", (g.Statement("GRANT X", password=None),), ("dj_user: missing SELECT",), ("n",))
    text = plan.render()
    assert "GRANT X;" in text and "missing SELECT" in text and "note: n" in text
    assert "nothing to do" in g.Plan("t").render()


# -- read scope (issue #7): where non-admin roles SELECT, and what that exposes --------------------------

MYSQL_PR = g.Dialect("MySQL", (8, 0, 36), partial_revokes=True)


def test_read_patterns_per_scope() -> None:
    assert g.read_patterns("all") == ("%",)
    assert g.read_patterns("lab") == ("%\\_%",)
    assert g.read_patterns(("alice", "common"), ("common", "lfp")) == ("alice\\_%", "common\\_%", "lfp\\_%")
    assert g.read_patterns("all", partial_revokes=True) == ("*",)
    assert g.read_revokes("all", partial_revokes=True) == ("mysql",)
    assert g.read_revokes("all") == () and g.read_revokes("lab", partial_revokes=True) == ()


def test_lab_scope_covers_datajoint_schemas_but_not_mysql() -> None:
    lab = {g.LAB_SCHEMAS: frozenset({"SELECT"})}
    assert g.reads_system_schema(lab) == []
    assert g.level(g.privileges_on("common_session", lab)) == "R"
    assert g.level(g.privileges_on("alice_pose", lab)) == "R"
    assert g.level(g.privileges_on("mysql", lab)) == "-" and g.level(g.privileges_on("sys", lab)) == "-"
    assert g.reads_system_schema({"%": frozenset({"SELECT"})}) == ["mysql", "sys"]
    assert g.reads_system_schema({"*": frozenset({"SELECT"})}, revoked=["mysql"]) == ["sys"]
    assert g.reads_system_schema({"common\\_%": frozenset({"SELECT"})}) == []


@pytest.mark.parametrize(("dialect", "role"), [(MARIA, "`dj_guest`"), (MYSQL, "'dj_guest'")])
def test_role_plans_per_scope_both_dialects(dialect: g.Dialect, role: str) -> None:
    def plan(scope, actual):
        expected = g.role_grants("guest", ["common"], read=g.read_patterns(scope, ["common"]))
        drift = g.diff_grants(expected, actual, dialect.flavor, managed_extra=["%", g.LAB_SCHEMAS, "*"])
        return [s.sql for s in g.fix_statements(dialect, dialect.role("dj_guest"), expected, drift)]

    assert plan("all", {}) == [f"GRANT SELECT ON `%`.* TO {role}"]
    assert plan("lab", {}) == [f"GRANT SELECT ON `%\\_%`.* TO {role}"]
    # from Spyglass's `%` to the lab scope: the new grant first, then the revoke, so reads never stop
    assert plan("lab", {"%": frozenset({"SELECT"})}) == [f"GRANT SELECT ON `%\\_%`.* TO {role}",
                                                         f"REVOKE SELECT ON `%`.* FROM {role}"]
    assert plan(("alice",), {g.LAB_SCHEMAS: frozenset({"SELECT"})}) == [
        f"GRANT SELECT ON `alice\\_%`.* TO {role}", f"GRANT SELECT ON `common\\_%`.* TO {role}",
        f"REVOKE SELECT ON `%\\_%`.* FROM {role}"]
    assert plan("lab", {g.LAB_SCHEMAS: frozenset({"SELECT"})}) == []


def test_mysql_partial_revokes_plan_text() -> None:
    """MySQL 8 with partial_revokes ON: wildcards are literal, so `all` is *.* minus `mysql`."""
    expected = g.role_grants("guest", [], read=g.read_patterns("all", partial_revokes=True))
    drift = g.diff_grants(expected, {}, "MySQL")
    sql = [s.sql for s in g.fix_statements(MYSQL_PR, MYSQL_PR.role("dj_guest"), expected, drift)]
    assert sql == ["GRANT SELECT ON *.* TO 'dj_guest'"]
    assert MYSQL_PR.revoke("SELECT", "mysql", MYSQL_PR.role("dj_guest")) == "REVOKE SELECT ON `mysql`.* FROM 'dj_guest'"
    parsed = g.parse_grants(["GRANT SELECT ON *.* TO `dj_guest`@`%`",
                             "REVOKE SELECT ON `mysql`.* FROM `dj_guest`@`%`"])
    assert [(x.pattern, x.privileges) for x in parsed.revoked] == [("mysql", frozenset({"SELECT"}))]
    assert g.reads_system_schema(g.effective(parsed.db, "MySQL"), [x.pattern for x in parsed.revoked]) == ["sys"]


# -- role admin (MariaDB: only holders of ADMIN OPTION may grant a role) ---------------------------------


def test_grant_role_with_admin_option_both_dialects() -> None:
    assert (MARIA.grant_role("dj_user", "bob", "%", admin_option=True)
            == "GRANT `dj_user` TO 'bob'@'%' WITH ADMIN OPTION")
    assert (MYSQL.grant_role("dj_user", "bob", "%", admin_option=True)
            == "GRANT 'dj_user' TO 'bob'@'%' WITH ADMIN OPTION")
    assert g.role_of_grant("GRANT `dj_user` TO 'bob'@'%'") == ("dj_user", "'bob'@'%'")
    assert g.role_of_grant("GRANT 'dj_user' TO 'bob'@'%'") == ("dj_user", "'bob'@'%'")
    assert g.role_of_grant("GRANT SELECT ON `%`.* TO `dj_user`") is None


def test_role_admin_advice_names_holders_and_the_fix() -> None:
    text = g.role_admin_advice(MARIA, "dj_user", "adminB@%", ["djadmin@%"])
    assert "djadmin@%" in text and "GRANT `dj_user` TO 'adminB'@'%' WITH ADMIN OPTION" in text
    orphan = g.role_admin_advice(MARIA, "dj_user", "adminB@%", [])
    assert "no account at all" in orphan
    assert ("INSERT INTO mysql.roles_mapping (Host, User, Role, Admin_option) VALUES ('%', 'adminB', 'dj_user', 'Y')"
            in orphan)
    assert "ROLE_ADMIN" in g.role_admin_advice(MYSQL, "dj_user", "bob@%", [])


# -- the config key ----------------------------------------------------------------------------------------


def test_read_scope_config() -> None:
    from djtui.config import parse_config
    from djtui.errors import ConfigError

    assert parse_config("").accounts.read_scope == "lab"  # the safe scope is the default
    assert parse_config("accounts:\n  read_scope: all\n").accounts.read_scope == "all"
    assert parse_config("accounts:\n  read_scope: [common, alice]\n").accounts.read_scope == ("common", "alice")
    for bad, words in [("everything", "not one of"), ("[]", "empty list"), ("[\"a%\"]", "letters, digits")]:
        with pytest.raises(ConfigError, match=words) as err:
            parse_config(f"accounts:\n  read_scope: {bad}\n")
        assert "accounts.read_scope" in str(err.value) and err.value.exit_code == 2
