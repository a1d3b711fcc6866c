"""The ``sessions:`` section: when a session counts as imported, and how sessions are scanned."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from djtui.config.reader import Reader, table_name


@dataclass(frozen=True)
class ExtraImportTable:
    table: str  # db.table
    participant_column: str = "participant_id"
    date_column: str = "session_date"


@dataclass(frozen=True)
class ParticipantIdRule:
    strip_prefixes: tuple[str, ...] = ("p", "t")
    numeric_only: bool = True  # strip only when what remains is all digits


@dataclass(frozen=True)
class SessionsSettings:
    imported_rule: str = "multicamera"  # multicamera | tables
    sessions_schema: str = "mocap_sessions"
    multicamera_schema: str = "multicamera_tracking"
    tables: tuple[ExtraImportTable, ...] = ()
    participant_id: ParticipantIdRule = field(default_factory=ParticipantIdRule)
    sqlite_path: Path | None = None
    video_extensions: tuple[str, ...] = (".mp4",)
    mount_timeout: float = 5.0
    checksum_workers: int = 4


def read_sessions(r: Reader, raw: Any) -> SessionsSettings:
    p = ("sessions",)
    m = r.mapping(raw, p, ["imported_rule", "sessions_schema", "multicamera_schema", "tables",
                          "participant_id", "sqlite", "video_extensions", "mount_timeout", "checksum_workers"])
    tables = []
    for tp, item in r.items(m, "tables", p):
        t = r.mapping(item, tp, ["table", "participant_column", "date_column"])
        tables.append(ExtraImportTable(
            table=table_name(r, r.string(t, "table", tp), (*tp, "table")),
            participant_column=r.string(t, "participant_column", tp, "participant_id"),
            date_column=r.string(t, "date_column", tp, "session_date"),
        ))
    pp = (*p, "participant_id")
    pid = r.mapping(m.get("participant_id"), pp, ["strip_prefixes", "numeric_only"])
    sq = (*p, "sqlite")
    sqlite = r.mapping(m.get("sqlite"), sq, ["path"])
    rule = r.string(m, "imported_rule", p, "multicamera", choices=("multicamera", "tables"))
    if rule == "tables" and not tables:
        raise r.fail((*p, "tables"), "imported_rule is `tables` but no tables are listed",
                     "list the tables that must hold a session, or use imported_rule: multicamera")
    exts = r.strings(m, "video_extensions", p, (".mp4",))
    return SessionsSettings(
        imported_rule=rule,
        sessions_schema=r.string(m, "sessions_schema", p, "mocap_sessions"),
        multicamera_schema=r.string(m, "multicamera_schema", p, "multicamera_tracking"),
        tables=tuple(tables),
        participant_id=ParticipantIdRule(
            strip_prefixes=r.strings(pid, "strip_prefixes", pp, ("p", "t")),
            numeric_only=r.boolean(pid, "numeric_only", pp, True),
        ),
        sqlite_path=r.path(sqlite, "path", sq, None),
        video_extensions=tuple(e if e.startswith(".") else "." + e for e in exts),
        mount_timeout=r.number(m, "mount_timeout", p, 5.0, minimum=0.1, maximum=600),
        checksum_workers=r.number(m, "checksum_workers", p, 4, integer=True, minimum=1, maximum=64),
    )


