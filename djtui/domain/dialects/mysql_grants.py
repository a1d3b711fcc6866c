"""How MySQL 8 and MariaDB spell roles, grants, accounts and password changes. Pure SQL text.

MySQL 8: roles are accounts ``'r'@'%'``, ``SET DEFAULT ROLE ALL TO u``; MariaDB: roles have no
host, one default role per user (``SET DEFAULT ROLE r FOR u``). A password is never inlined: the
text says ``PASSWORD_SHOWN`` and the statement carries the password as a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from djtui.domain.dialects.mysql import MYSQL

PASSWORD_SHOWN = "'****'"  # where a password goes in the SQL a person sees


@dataclass(frozen=True)
class MySQLGrants:
    """How one server flavor spells roles, default roles and password changes."""

    flavor: str  # "MariaDB" | "MySQL"
    version: tuple[int, ...] = ()
    partial_revokes: bool = False  # MySQL's @@partial_revokes: wildcards in grants are literal, REVOKE can carve
    per_object = False  # grants on schema patterns (PostgreSQL's are per object: postgres_grants.py)
    has_hosts = True  # accounts are user@host

    @property
    def is_mariadb(self) -> bool:
        return self.flavor == "MariaDB"

    def supports_roles(self) -> bool:
        return self.version >= ((10, 0, 5) if self.is_mariadb else (8, 0, 0)) or not self.version

    def supports_expiry(self) -> bool:
        return self.version >= ((10, 4, 3) if self.is_mariadb else (5, 7, 4)) or not self.version

    def notes(self) -> list[str]:
        if not self.supports_roles():
            return [f"{self.flavor} {'.'.join(map(str, self.version))} has no roles: "
                    f"djtui needs MySQL 8.0+ or MariaDB 10.0.5+"]
        if self.is_mariadb:
            return ["MariaDB: roles have no host; one default role per user (SET DEFAULT ROLE r FOR u); "
                    "a user changes their own password with SET PASSWORD (ALTER USER needs CREATE USER)"]
        return ["MySQL 8: roles are accounts 'r'@'%'; granted roles are inactive at login unless set as "
                "default (SET DEFAULT ROLE ALL TO u) or activate_all_roles_on_login is ON"]

    def role(self, name: str) -> str:
        return MYSQL.ident(name) if self.is_mariadb else MYSQL.literal(name)

    def account(self, user: str, host: str) -> str:
        return f"{MYSQL.literal(user)}@{MYSQL.literal(host)}"

    def on(self, pattern: str) -> str:
        return "*.*" if pattern == "*" else f"{MYSQL.ident(pattern)}.*"

    def create_role(self, name: str) -> str:
        return f"CREATE ROLE IF NOT EXISTS {self.role(name)}"

    def grant_role(self, role: str, user: str, host: str, *, admin_option: bool = False) -> str:
        sql = f"GRANT {self.role(role)} TO {self.account(user, host)}"
        return sql + " WITH ADMIN OPTION" if admin_option else sql

    def revoke_role(self, role: str, user: str, host: str) -> str:
        return f"REVOKE {self.role(role)} FROM {self.account(user, host)}"

    def set_default_role(self, role: str, user: str, host: str) -> str:
        if self.is_mariadb:
            return f"SET DEFAULT ROLE {self.role(role)} FOR {self.account(user, host)}"
        return f"SET DEFAULT ROLE ALL TO {self.account(user, host)}"

    def grant(self, privileges: str, pattern: str, grantee: str) -> str:
        return f"GRANT {privileges} ON {self.on(pattern)} TO {grantee}"

    def revoke(self, privileges: str, pattern: str, grantee: str) -> str:
        return f"REVOKE {privileges} ON {self.on(pattern)} FROM {grantee}"

    def create_user(self, user: str, host: str, expiry_days: int | None) -> str:
        sql = f"CREATE USER {self.account(user, host)} IDENTIFIED BY {PASSWORD_SHOWN}"
        if expiry_days and self.supports_expiry():
            sql += f" PASSWORD EXPIRE INTERVAL {int(expiry_days)} DAY"
        return sql

    def alter_password(self, user: str, host: str) -> str:
        return f"ALTER USER {self.account(user, host)} IDENTIFIED BY {PASSWORD_SHOWN}"

    def lock(self, user: str, host: str, *, locked: bool = True) -> str:
        """The same on both flavors (MySQL 5.7.6+, MariaDB 10.4.2+)."""
        return f"ALTER USER {self.account(user, host)} ACCOUNT {'LOCK' if locked else 'UNLOCK'}"

    def drop_user(self, user: str, host: str) -> str:
        return f"DROP USER {self.account(user, host)}"

    def locked_accounts_sql(self) -> str:
        """``User, Host`` of every locked account (MariaDB keeps the flag in ``mysql.global_priv``'s JSON)."""
        if self.is_mariadb:
            return ("SELECT User, Host FROM mysql.global_priv "
                    "WHERE JSON_VALUE(Priv, '$.account_locked') IN ('1', 'true')")
        return "SELECT User, Host FROM mysql.user WHERE account_locked = 'Y'"

    def own_password(self) -> str:
        # MariaDB refuses ALTER USER CURRENT_USER() without CREATE USER; SET PASSWORD needs nothing
        if self.is_mariadb:
            return f"SET PASSWORD = PASSWORD({PASSWORD_SHOWN})"
        return f"ALTER USER CURRENT_USER() IDENTIFIED BY {PASSWORD_SHOWN}"

    def password_parameter(self, password: str) -> str:
        """What travels in place of ``PASSWORD_SHOWN`` (a parameter, never in the text)."""
        return password


# ---------------------------------------------------------------------------
# privileges and expected grants
