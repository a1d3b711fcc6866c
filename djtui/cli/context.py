"""Context: what every command gets (the parsed arguments, the config and a database, both opened on
first use), and the one announcement made before acting on a server a foreign config named."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from djtui.errors import ReadOnlyError

if TYPE_CHECKING:
    from djtui.config import Config
    from djtui.services.database import Database


@dataclass
class Context:
    """What every command gets: the parsed arguments, the config, a database handle."""

    args: argparse.Namespace
    _config: Config | None = field(default=None, repr=False)
    _db: Database | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            from djtui.config import load_config
            self._config = load_config(getattr(self.args, "config", None))
        return self._config

    @property
    def config_loaded(self) -> bool:
        """Whether the config was read already (a crash report must not read it again)."""
        return self._config is not None

    @property
    def readonly(self) -> bool:
        return bool(getattr(self.args, "readonly", False)) or self.config.readonly

    def announce_foreign_server(self) -> str | None:
        """Before acting on a server that a config djtui does not own named (DataJoint's files, DJ_*), say
        which server answered (host:port, flavor, version, user) on stderr; None when djtui's config named it."""
        origin = foreign_server_origin(self.db)
        return announce_server(self.db, origin) if origin is not None else None

    def require_writable(self, action: str) -> None:
        if self.readonly:
            raise ReadOnlyError(action)

    @property
    def db(self) -> Database:
        if self._db is None:
            from djtui.services.database import Database
            self._db = Database.from_config(self.config, readonly=self.readonly)
        return self._db

    @cached_property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def foreign_server_origin(db: Database) -> str | None:
    """Where the host came from when it is a config djtui does not own (DataJoint's files, DJ_*), else None."""
    for s in db.settings.sources:
        key, _, origin = s.partition(": ")
        if key == "host" and origin != "config file":
            return origin
    return None


def announce_server(db: Database, origin: str) -> str:
    """Before acting on a server a foreign config named: say which server answered (stderr, JSON stays clean)."""
    info = db.server_info()
    line = (f"acting on server {db.settings.address} ({info.flavor} {info.version}, user {info.current_user}), "
            f"named by {origin}")
    print(line, file=sys.stderr)
    return line
