"""The stored objects an export's rows reference, and whether each is in its store.

0.14 ``~external_<store>`` rows and 2.x stored JSON columns name objects; each is checked in the
store the config names (``stores:``) through the ``Store`` protocol (``services/stores``): stores
with a local directory are checked under a deadline (a hung mount is reported, never waited on),
remote ones by parallel ``stat`` calls. No branch here asks which protocol a store speaks.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from djtui.domain import stores as layouts
from djtui.domain.cascade import split_name
from djtui.errors import UserError
from djtui.services import commandlog
from djtui.services.export import catalog
from djtui.services.export.session import ExportSession


@dataclass(frozen=True)
class NeededFile:
    """One stored object referenced by exported rows.

    ``exists`` is None where it could not be checked; ``problem`` then says why (store not in the
    config, a mount that did not answer, S3 unreachable), or notes a size that differs.
    """

    store: str
    path: str  # relative to the store's location
    size: int | None
    table: str
    exists: bool | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "path": self.path, "size": self.size, "table": self.table,
                "exists": self.exists, "problem": self.problem}

    def mark(self, notes: dict[str, int]) -> str:
        """``yes``, ``MISSING`` or ``?``, with the number of its problem's note (``problem_notes``)."""
        text = {True: "yes", False: "MISSING", None: "?"}[self.exists]
        return f"{text} [{notes[self.problem]}]" if self.problem in notes else text


def problem_notes(files: Iterable[NeededFile]) -> dict[str, int]:
    """Each distinct problem text and its note number: one store's problem is usually every one of
    its files' problem, so people read it once, below the list, not once per row."""
    notes: dict[str, int] = {}
    for f in files:
        if f.problem and f.problem not in notes:
            notes[f.problem] = len(notes) + 1
    return notes


_CODEC_COMMENT = re.compile(r"^:<\w+@(\w*)>")


def needed_files(session: ExportSession, stores: Sequence[Any] = (), *, timeout: float = 5.0) -> list[NeededFile]:
    """Objects of 0.14 ``~external_<store>`` rows in the export and of 2.x stored JSON columns,
    checked in the stores named in the config (``stores:``, file and S3); the session must have run."""
    assert session.conn is not None
    ident = session.db.dialect.ident
    found: list[NeededFile] = []
    for table in session.plan.tables:
        db, name = split_name(table)
        keys = " AND ".join(f"t.{ident(c)} = k.{ident(c)}" for c in session.pk(table))
        base = f"FROM {session.key_table(table)} AS k JOIN {session.db.dialect.table(db, name)} AS t ON {keys}"
        if name.startswith("~external_"):
            for row in _dict_rows(session, f"SELECT t.* {base}"):
                path = layouts.legacy_object_path(db, row["hash"], row.get("attachment_name"), row.get("filepath"))
                size = row.get("size")
                found.append(NeededFile(name[len("~external_"):], path, None if size is None else int(size), table))
            continue
        stored = [c for c, dtype, comment in catalog.column_comments(session.db, table)
                  if dtype.lower() in ("json", "jsonb") or _CODEC_COMMENT.match(comment)]
        if stored:
            cols = [f"t.{ident(c)}" for c in stored]
            where = " OR ".join(filter(None, map(session.json_candidate, cols)))
            found += _json_objects(table, _dict_rows(session, f"SELECT {', '.join(cols)} {base}"
                                                              + (f" WHERE {where}" if where else "")))
    return check_files(sorted(set(found), key=lambda f: (f.store, f.path)), stores, timeout=timeout)


def _dict_rows(session: ExportSession, sql: str) -> list[dict[str, Any]]:
    return session.dict_rows(sql)


def _json_objects(table: str, rows: Iterable[dict[str, Any]]) -> list[NeededFile]:
    """The objects 2.x JSON values name (``{"store": ..., "path": ..., "size": ...}``); the value is
    text (the export sessions hand JSON over undecoded) or already decoded."""
    out = []
    for row in rows:
        for value in row.values():
            if isinstance(value, str | bytes) and ('"path"' if isinstance(value, str) else b'"path"') not in value:
                continue  # no object reference: not worth decoding (most JSON values of a large table)
            try:
                data = json.loads(value) if isinstance(value, str | bytes) else value
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("path") and data.get("store"):
                out.append(NeededFile(str(data["store"]), layouts.join(str(data["path"])), data.get("size"), table))
    return out


_Answer = tuple[bool | None, int | None, str | None]  # exists, size in the store, problem


def check_files(files: Sequence[NeededFile], stores: Sequence[Any] = (), *, timeout: float = 5.0,
                workers: int = 16) -> list[NeededFile]:
    """Does each file exist in its store? Stores with a local directory under a deadline (a hung
    mount is reported, never waited on); remote stores by ``stat`` calls in parallel. Sizes are
    compared where known."""
    config = {s.name: s for s in stores}
    by_store: dict[str, list[NeededFile]] = {}
    for f in files:
        by_store.setdefault(f.store, []).append(f)
    answers: dict[tuple[str, str], _Answer] = {}
    for name, group in by_store.items():
        rels = [f.path for f in group]
        got = _check_store(name, config.get(name), rels, timeout, workers)
        answers.update({(name, rel): v for rel, v in got.items()})
    out = []
    for f in files:
        exists, size, problem = answers[(f.store, f.path)]
        if exists and problem is None and f.size is not None and size is not None and size != f.size:
            problem = f"{size} bytes in the store, {f.size} in the database"
        # the database may not know a size (2.x JSON without one): the store's size is the one to ship
        out.append(NeededFile(f.store, f.path, size if f.size is None and exists else f.size, f.table, exists,
                              problem))
    return out


def _check_store(name: str, settings: Any, rels: Sequence[str], timeout: float, workers: int) -> dict[str, _Answer]:
    """One store's answers: unknown (with the reason) when the config does not name it or djtui cannot
    open it; a local directory under a deadline; a remote store in parallel."""
    from djtui.services.stores import open_store

    if settings is None:
        why = f"store {name!r} is not in the config (stores:), so its files were not checked"
        return {rel: (None, None, why) for rel in rels}
    try:
        store = open_store(settings)
    except UserError as exc:  # a protocol djtui does not speak, an S3 store without a bucket
        why = f"store {name!r} cannot be checked: {exc.args[0] if exc.args else exc}"
        return {rel: (None, None, why) for rel in rels}
    if store.root is not None:
        return _check_local(str(store.root), rels, timeout)
    return _check_remote(store, rels, workers)


def _check_local(root: str, rels: Sequence[str], timeout: float) -> dict[str, _Answer]:
    """``stat`` every object under a deadline: what answered before a hang is kept, the rest is unknown.

    ``os.stat`` of the path (links followed, as the loaded copy would read them), not the store's
    ``lstat``: a link to the object is the object here."""
    from djtui.services.filesystem import Hung, with_deadline

    got: dict[str, _Answer] = {}

    def check(beat: Callable[[], None]) -> None:
        if not os.path.isdir(root):
            raise FileNotFoundError(root)
        beat()
        for rel in rels:
            try:
                st = os.stat(os.path.join(root, rel))
                got[rel] = (True, st.st_size, None)
            except (FileNotFoundError, NotADirectoryError):
                got[rel] = (False, None, None)
            except OSError as exc:
                got[rel] = (None, None, f"{rel}: {exc.strerror or exc}")
            beat()

    try:
        with_deadline(check, timeout, root)
    except Hung as exc:
        done = dict(got)  # the stuck thread may still add to ``got``
        return {rel: done.get(rel, (None, None, str(exc))) for rel in rels}
    except FileNotFoundError:
        why = f"the store directory {root} does not exist (is the share mounted?)"
        return {rel: (None, None, why) for rel in rels}
    return got


def _check_remote(store: Any, rels: Sequence[str], workers: int) -> dict[str, _Answer]:
    """``stat`` each object, in parallel; an unreachable or refusing store marks all unknown after one try."""

    def stat(rel: str) -> _Answer:
        obj = store.stat(rel)
        return (False, None, None) if obj is None else (True, obj.size, None)

    try:
        commandlog.record("exec", f"stat {len(rels)} objects in {store.describe()}")
        first = stat(rels[0])
    except UserError:
        raise
    except Exception as exc:  # botocore: endpoint unreachable, access denied, bad credentials
        why = f"store {store.name!r} ({store.describe()}) could not be checked: {exc}"
        return {rel: (None, None, why) for rel in rels}
    got = {rels[0]: first}
    rest = list(rels[1:])

    def safe(rel: str) -> _Answer:
        try:
            return stat(rel)
        except Exception as exc:
            return (None, None, f"{rel}: {exc}")

    if rest:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(rest))),
                                thread_name_prefix="djtui-store-stat") as pool:
            got.update(zip(rest, pool.map(safe, rest), strict=True))
    return got
