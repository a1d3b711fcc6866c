"""djtui's one YAML configuration file, loaded and validated before any command runs.

``loader`` finds and reads the file; one module per section (``backup`` is the MultiCameraTracking
backup manager's format, read leniently; ``database``, ``sessions``, ``stores`` with ``orphans``,
``sections`` for the admin sections, ``keys`` for remapped bindings), all on ``reader``'s typed,
line-aware access. Sits at the bottom of the house: imports only ``djtui.errors`` and PyYAML.
"""

from djtui.config.backup import (
    PATH_PLACEHOLDERS,
    BackupSettings,
    Destination,
    Filters,
    RsyncSettings,
    Source,
    Verification,
)
from djtui.config.database import DatabaseSettings
from djtui.config.loader import (
    CONFIG_ENV,
    DEFAULT_NAMES,
    Config,
    find_config,
    load_config,
    parse_config,
    user_config_dir,
    user_state_dir,
    with_datajoint_stores,
)
from djtui.config.reader import Secret
from djtui.config.sections import (
    SPYGLASS_SHARED_PREFIXES,
    AccountSettings,
    DbBackupSettings,
    Drive,
    ExportSettings,
    MaintenanceSettings,
    NotifySettings,
)
from djtui.config.sessions import ExtraImportTable, ParticipantIdRule, SessionsSettings
from djtui.config.stores import (
    DJ_STORE_KEYS,
    MANAGED_LAYOUTS,
    ManagedDirectory,
    OrphanSettings,
    StoreSettings,
    datajoint_stores,
)
from djtui.errors import ConfigError

__all__ = [
    "CONFIG_ENV", "DEFAULT_NAMES", "DJ_STORE_KEYS", "MANAGED_LAYOUTS", "PATH_PLACEHOLDERS",
    "SPYGLASS_SHARED_PREFIXES", "AccountSettings", "BackupSettings", "Config", "ConfigError",
    "DatabaseSettings", "DbBackupSettings", "Destination", "Drive", "ExportSettings", "ExtraImportTable",
    "Filters", "MaintenanceSettings", "ManagedDirectory", "NotifySettings", "OrphanSettings",
    "ParticipantIdRule", "RsyncSettings", "Secret", "SessionsSettings", "Source", "StoreSettings",
    "Verification", "datajoint_stores", "find_config", "load_config", "parse_config", "user_config_dir",
    "user_state_dir", "with_datajoint_stores",
]
