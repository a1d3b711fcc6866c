"""DataJoint-Cleaner's TOML: its cleaning runs read, and a service pointed at one run's server and store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace as dc_replace
from pathlib import Path

from djtui.config import Config, Secret, StoreSettings
from djtui.domain import stores as ds
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.database import ConnectionSettings, Database
from djtui.services.orphans.service import OrphanService


def load_cleaner_runs(path: Path, warn: Callable[[str], None] | None = None) -> list[ds.CleanerRun]:
    """Read a DataJoint-Cleaner TOML file; its passwords and keys are registered as secrets at once.

    Keys djtui does not read are passed to ``warn`` (a format djtui does not own: never an error)."""
    import tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(f"no such file: {path}", where="--cleaner-config") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read the cleaner config: {exc}", where=str(path),
                        hint="it must be TOML with database_servers, storage_servers.minio and [[cleaning_runs]]") \
            from None
    try:
        runs = ds.parse_cleaner_config(data)
    except ValueError as exc:
        raise UserError(str(exc), where=str(path)) from None
    if warn is not None:
        for w in ds.cleaner_config_warnings(data):
            warn(f"{path}: {w}")
    for r in runs:
        commandlog.add_secret(r.db_password)
        commandlog.add_secret(r.secret_key)
    return runs




def cleaner_service(config: Config, run: ds.CleanerRun) -> OrphanService:
    """An OrphanService pointed at one cleaning run's database server and MinIO store."""
    settings = ConnectionSettings(host=run.db_host, port=run.db_port, socket=run.db_socket, user=run.db_user,
                                  password=Secret(run.db_password),
                                  sources=(f"cleaner config: database_servers.{run.database_server}",))
    store = StoreSettings(name=run.store, protocol="s3", location=run.location, endpoint=run.endpoint,
                          bucket=run.bucket, access_key=Secret(run.access_key), secret_key=Secret(run.secret_key),
                          secure=run.secure)
    others = tuple(s for s in config.stores if s.name != run.store)
    return OrphanService(dc_replace(config, stores=(*others, store)), Database(settings, readonly=config.readonly))
