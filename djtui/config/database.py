"""The ``database:`` section: where and how djtui connects (DataJoint's config fills the gaps)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from djtui.config.reader import Reader, Secret


@dataclass(frozen=True)
class DatabaseSettings:
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: Secret | None = None
    password_env: str | None = None
    socket: str | None = None
    use_datajoint_config: bool = True
    connect_timeout: int = 5
    statement_timeout_s: float = 300.0  # the longest any one database call may take
    backend: str | None = None  # "mysql" | "postgresql" (None: DataJoint's config, else mysql)
    name: str | None = None  # the PostgreSQL database DataJoint 2.x connects to (DataJoint's default: postgres)


BACKENDS = ("mysql", "postgresql")


def read_database(r: Reader, raw: Any) -> DatabaseSettings:
    p = ("database",)
    m = r.mapping(raw, p, ["host", "port", "user", "password", "password_env", "socket",
                          "use_datajoint_config", "connect_timeout", "statement_timeout_s", "backend", "name"])
    return DatabaseSettings(
        host=r.string(m, "host", p, None),
        port=r.number(m, "port", p, None, integer=True, minimum=1, maximum=65535),
        user=r.string(m, "user", p, None),
        password=r.secret(m, "password", p),
        password_env=r.string(m, "password_env", p, None),
        socket=r.string(m, "socket", p, None),
        use_datajoint_config=r.boolean(m, "use_datajoint_config", p, True),
        connect_timeout=r.number(m, "connect_timeout", p, 5, integer=True, minimum=1, maximum=600),
        statement_timeout_s=float(r.number(m, "statement_timeout_s", p, 300.0, minimum=1, maximum=86_400)),
        backend=r.string(m, "backend", p, None, choices=BACKENDS),
        name=r.string(m, "name", p, None),
    )


