"""Reading a compressed dump file line by line, and loading it with schemas renamed.

The dump tools write each row of an INSERT on its own line (strings have their newlines escaped),
and an INSERT ends on a line ending in ``);``; so statement lines can be told from data lines,
and a rename rewrites statements only, never a row.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from djtui.domain.dialects import SqlDialect
from djtui.errors import OperationFailed
from djtui.services import commandlog
from djtui.services.dbbackup.tools import decompressor_for


@contextlib.contextmanager
def dump_lines(dump: Path) -> Iterator[Iterator[tuple[str, str]]]:
    """The decompressed dump as (``"data"`` | ``"sql"``, line) pairs; data lines are the rows of INSERTs."""
    with open(dump, "rb") as fin:
        proc = subprocess.Popen(decompressor_for(dump), stdin=fin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None

    def gen() -> Iterator[tuple[str, str]]:
        in_insert = False
        for raw in proc.stdout:  # type: ignore[union-attr]
            line = raw.decode("utf-8", "surrogateescape")
            if not in_insert and line.startswith(("INSERT INTO ", "REPLACE INTO ")):
                yield "data", line
                in_insert = not line.rstrip("\n").endswith(";")
            elif in_insert:
                yield "data", line
                in_insert = not line.rstrip("\n").endswith(");")
            else:
                yield "sql", line

    try:
        yield gen()
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()


_REFERENCES = re.compile(r"REFERENCES `((?:[^`]|``)+)`\.`")


def foreign_refs(dump: Path) -> set[str]:
    """Schemas that the dump's foreign keys (``REFERENCES `other`.`t```) point at."""
    refs: set[str] = set()
    with dump_lines(dump) as lines:
        for kind, line in lines:
            if kind == "sql" and "REFERENCES" in line:
                refs.update(m.replace("``", "`") for m in _REFERENCES.findall(line))
    return refs


def renamer(renames: dict[str, str], dialect: SqlDialect) -> Callable[[str], str]:
    """Rewrite one statement line so schema ``S`` becomes ``renames[S]``.

    Quoted names are rewritten where they name a schema: ```S`.`` (a qualified reference: foreign
    keys, views, trigger bodies) and the name in ``CREATE DATABASE``/``USE``/``ALTER DATABASE``.
    Unquoted ``S.x`` is rewritten too: trigger and routine bodies keep the text their author typed.
    """
    if not renames:
        return lambda line: line
    parts = []
    for old in sorted(renames, key=len, reverse=True):
        q = re.escape(dialect.ident(old))
        parts.append((re.compile(r"(?<!\.)" + q + r"(?=\s*\.)"), dialect.ident(renames[old])))
        if re.fullmatch(r"\w+", old):
            parts.append((re.compile(r"(?<![\w.`$@])" + re.escape(old) + r"(?=\.[`\w])"), renames[old]))
    head = re.compile(r"^(?:CREATE DATABASE|USE|(?:/\*!\d+ )?ALTER DATABASE|-- Current Database:)")
    whole = [(re.compile(re.escape(dialect.ident(old))), dialect.ident(new)) for old, new in renames.items()]

    def rewrite(line: str) -> str:
        for pat, new in (whole if head.match(line) else parts):
            line = pat.sub(lambda _m, new=new: new, line)
        return line

    return rewrite


def load_dump(client: list[str], dump: Path, rewrite: Callable[[str], str]) -> None:
    """Decompress, rewrite statement lines (never data), and feed ``client`` (its argv, credentials in a file)."""
    commandlog.record("exec", [*decompressor_for(dump), "<", str(dump), "|", *client])
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(client, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        assert proc.stdin is not None
        broken = False
        try:
            with dump_lines(dump) as lines:
                for kind, line in lines:
                    out = line if kind == "data" else rewrite(line)
                    try:
                        proc.stdin.write(out.encode("utf-8", "surrogateescape"))
                    except BrokenPipeError:
                        broken = True
                        break
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            rc = proc.wait()
        if rc or broken:
            err.seek(0)
            msg = err.read().decode(errors="replace").strip()
            raise OperationFailed(commandlog.mask(f"{Path(client[0]).name} failed (exit {rc}) loading "
                                                  f"{dump.name}: {msg[-800:] or 'no message'}"))
