"""`djtui init`: write a first, commented config file (from flags, or asking on a terminal).

It reads the DataJoint config it finds (the same files and DJ_* variables djtui reads) to prefill the
database and the stores, never writes a password (``password_env`` names a variable instead), refuses
to replace an existing file without ``--force``, and proves what it wrote loads with ``load_config``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from djtui.cli.context import Context
from djtui.errors import OperationFailed, UserError

DEFAULT_STRUCTURE = "{participant_id}/{session_date}"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init", help="write a first, commented config file",
        description="Write a commented djtui config. On a terminal it asks for the few values it needs "
                    "(flags answer in advance); otherwise it uses the flags only. The database and stores are "
                    "prefilled from the DataJoint config it finds. It never writes a password: "
                    "--password-env names the variable that holds it.")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="where to write (default: the global --config, else ~/.config/djtui/config.yaml)")
    p.add_argument("--force", action="store_true", help="replace an existing file (the old one is kept as FILE.bak)")
    p.add_argument("--source", metavar="DIR", help="where the recordings are (backup.source.base_path)")
    p.add_argument("--path-structure", metavar="TEMPLATE",
                   help=f"how sessions are laid out under it (default {DEFAULT_STRUCTURE})")
    p.add_argument("--dest", action="append", default=[], metavar="NAME=DIR",
                   help="a backup destination (repeat for more)")
    p.add_argument("--db-host", metavar="HOST", help="database host (default: from DataJoint's config)")
    p.add_argument("--db-port", type=int, metavar="PORT", help="database port")
    p.add_argument("--db-user", metavar="USER", help="database user")
    p.add_argument("--password-env", metavar="VAR",
                   help="the environment variable that holds the database password (never the password)")
    p.add_argument("--no-input", action="store_true", help="ask nothing, even on a terminal")
    p.set_defaults(func=run, quiet_interrupted=True)  # it writes a new file, nothing in the lab


@dataclass
class Answers:
    source: Path | None = None
    path_structure: str = DEFAULT_STRUCTURE
    dests: list[tuple[str, Path, Path | None]] = field(default_factory=list)  # name, base_path, mount_point
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password_env: str | None = None


@dataclass
class DataJointFound:
    host: str | None
    port: int | None
    user: str | None
    has_password: bool
    sources: tuple[str, ...]
    stores: tuple = ()
    warnings: tuple[str, ...] = ()


def read_datajoint() -> DataJointFound:
    """What the DataJoint config on this machine says (the password only as "there is one")."""
    from djtui.config import DatabaseSettings, datajoint_stores
    from djtui.services.database import resolve_connection

    try:
        conn = resolve_connection(DatabaseSettings())
    except UserError:
        return DataJointFound(None, None, None, False, ())
    stated = {s.partition(": ")[0] for s in conn.sources}
    try:
        stores, warnings = datajoint_stores()
    except UserError as exc:
        stores, warnings = (), (exc.render(),)
    return DataJointFound(host=conn.host if "host" in stated else None,
                          port=conn.port if "port" in stated else None,
                          user=conn.user if "user" in stated else None,
                          has_password="password" in stated, sources=conn.sources,
                          stores=stores, warnings=warnings)


def _abs(text: str, where: str) -> Path:
    text = text.strip()
    if not text:
        raise UserError("an empty path", where=where, hint="give a directory")
    return Path(os.path.abspath(os.path.expanduser(text)))


def _dest(spec: str) -> tuple[str, Path, None]:
    name, sep, path = spec.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise UserError(f"--dest {spec!r} is not NAME=DIR", where="--dest",
                        hint="e.g. --dest 'Lab NAS=/mnt/nas/backups' (repeat for more destinations)")
    return name.strip(), _abs(path, "--dest"), None


def _check_structure(template: str, where: str) -> str:
    from djtui.config import parse_config
    try:
        parse_config(f"backup:\n  source:\n    base_path: /x\n    path_structure: {json.dumps(template)}\n")
    except UserError as exc:
        raise UserError(f"path structure {template!r}: {exc.what}",
                        where=where, hint="use {participant_id} and {session_date}, e.g. " + DEFAULT_STRUCTURE
                        ) from None
    return template


def _check_env(name: str, where: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise UserError("that is not an environment variable name (not repeated here: it may be a password)",
                        where=where,
                        hint="letters, digits and _, e.g. DJ_PASS; give the variable's name, never the password")
    return name


def from_flags(args: argparse.Namespace, dj: DataJointFound) -> Answers:
    a = Answers()
    if args.source:
        a.source = _abs(args.source, "--source")
    if args.path_structure is not None:
        a.path_structure = _check_structure(args.path_structure, "--path-structure")
    a.dests = [_dest(d) for d in args.dest]
    names = [d[0] for d in a.dests]
    if len(set(names)) != len(names):
        raise UserError("a destination name is given twice", where="--dest", hint="give each one its own name")
    if a.dests and a.source is None:
        raise UserError("--dest needs --source (the directory the destinations back up)", where="--source",
                        hint="add --source DIR")
    if args.db_port is not None and not 1 <= args.db_port <= 65535:
        raise UserError(f"port {args.db_port} is not between 1 and 65535", where="--db-port")
    a.host = args.db_host or dj.host
    a.port = args.db_port or dj.port
    a.user = args.db_user or dj.user
    if args.password_env is not None:
        a.password_env = _check_env(args.password_env, "--password-env") if args.password_env else None
    return a


def _ask(prompt: str, default: str | None) -> str:
    shown = f" [{default}]" if default else ""
    try:
        answer = input(f"{prompt}{shown}: ").strip()
    except EOFError:
        raise OperationFailed("stopped before the last question: nothing was written") from None
    return answer or (default or "")


def ask(a: Answers, dj: DataJointFound) -> Answers:
    """The few questions, each with its default from the flags or DataJoint's config; empty keeps it."""
    if dj.sources:
        print("found DataJoint's config: " + ", ".join(dj.sources))
    print("Press Enter to keep the value in [brackets]; empty skips an optional one.")
    while True:
        src = _ask("directory with the recordings to back up (empty: no backups)", str(a.source or ""))
        try:
            a.source = _abs(src, "source") if src else None
            break
        except UserError as exc:
            print(f"  {exc.render()}")
    if a.source is not None:
        while True:
            try:
                a.path_structure = _check_structure(_ask("how sessions are laid out under it", a.path_structure),
                                                    "path structure")
                break
            except UserError as exc:
                print(f"  {exc.render()}")
        while True:
            name = _ask(f"backup destination {len(a.dests) + 1}: a name (empty: no more)", None)
            if not name:
                break
            if name in {d[0] for d in a.dests}:
                print(f"  {name!r} is already a destination")
                continue
            try:
                base = _abs(_ask(f"  where {name} keeps the copies", None), "destination")
                mount = _ask("  the share's mount point, if it is a network share (empty: a local disk)", None)
                a.dests.append((name, base, _abs(mount, "mount point") if mount else None))
            except UserError as exc:
                print(f"  {exc.render()}")
    a.host = _ask("database host", a.host or "localhost")
    while True:
        port = _ask("database port", str(a.port or 3306))
        if port.isdigit() and 1 <= int(port) <= 65535:
            a.port = int(port)
            break
        print(f"  {port!r} is not a port number")
    a.user = _ask("database user", a.user) or None
    default_env = a.password_env or (None if dj.has_password else "DJ_PASS")
    while True:
        env = _ask("the environment variable holding the database password"
                   + (" (empty: DataJoint's config has it)" if dj.has_password else ""), default_env)
        try:
            a.password_env = _check_env(env, "password variable") if env else None
            break
        except UserError as exc:
            print(f"  {exc.render()}")
    return a


def render(a: Answers, dj: DataJointFound) -> str:
    """The config text: every section commented, only what was answered set."""
    def s(value: object) -> str:
        return json.dumps(str(value))  # a JSON string is a valid YAML scalar

    out = ["# djtui config, written by `djtui init`. Check it with `djtui doctor`.",
           "# Every key is described in the README; commented lines show the defaults.", ""]
    if a.source is None:
        out += ["# backup: the sessions to copy and verify (as the backup manager's backup_config.yaml).",
                "# backup:",
                "#   source: {base_path: /data/recordings, path_structure: \"" + DEFAULT_STRUCTURE + "\"}",
                "#   destinations:",
                "#     - {name: \"Lab NAS\", base_path: /mnt/nas/backups, mount_point: /mnt/nas, verify_mount: true}",
                ""]
    else:
        out += ["# backup: the sessions to copy and verify (the backup manager's format)",
                "backup:",
                "  source:",
                f"    base_path: {s(a.source)}",
                f"    path_structure: {s(a.path_structure)}",
                "  destinations:" + ("" if a.dests else " []  # add one: - {name: NAS, base_path: /mnt/nas/backups}")]
        for name, base, mount in a.dests:
            out += [f"    - name: {s(name)}", f"      base_path: {s(base)}"]
            if mount is not None:
                out += [f"      mount_point: {s(mount)}",
                        "      verify_mount: true  # a sync refuses to copy while the share is not mounted"]
            else:
                out += ["      verify_mount: false  # a local disk; for a network share set mount_point and true"]
            out += [f"      path_structure: {s(a.path_structure)}"]
        out.append("")
    out += ["# database: where the lab's DataJoint database is. Values not set here come from DataJoint's config"
            + (f" ({', '.join(dj.sources)})" if dj.sources else "") + ",",
            "# then DJ_HOST / DJ_PORT / DJ_USER / DJ_PASS. Never write a password here: name its variable.",
            "database:"]
    out.append(f"  host: {s(a.host)}" if a.host else "  # host: localhost")
    out.append(f"  port: {a.port}" if a.port else "  # port: 3306")
    out.append(f"  user: {s(a.user)}" if a.user else "  # user: ...")
    if a.password_env:
        out.append(f"  password_env: {s(a.password_env)}  # export {a.password_env}=... before running djtui")
    else:
        out.append("  # password_env: DJ_PASS  # the variable that holds the password"
                   + (" (now: DataJoint's config holds it)" if dj.has_password else ""))
    out += ["  use_datajoint_config: true  # also read DataJoint's config files and DJ_* variables", ""]
    files = [st for st in dj.stores if st.protocol == "file"]
    others = [st for st in dj.stores if st.protocol != "file"]
    out.append("# stores: DataJoint's external stores, for the orphan scans. Those in DataJoint's config are read "
               "from it;")
    out.append("# a store named here wins over DataJoint's.")
    if files:
        out.append("stores:")
        for st in files:
            out += [f"  {s(st.name)}:", "    protocol: \"file\"", f"    location: {s(st.location)}"]
    else:
        out.append("# stores:\n#   raw: {protocol: file, location: /data/stores/raw}")
    for st in others:  # their keys stay in DataJoint's config, where djtui reads them
        out.append(f"#   {st.name}: {st.protocol} store {st.bucket or ''} at {st.endpoint or st.location} "
                   "(read from DataJoint's config, with its keys)")
    out += ["",
            "# orphans: where untracked files live and where quarantined ones go before a purge",
            "# orphans:",
            "#   quarantine_dir: /data/quarantine",
            "#   directories:",
            "#     - {path: /data/analysis, table: common_nwbfile.analysis_nwbfile, column: analysis_file_name}",
            "",
            "# keys: your own key for any binding, by its id (press ? in the app to see them); one key,",
            "# \"x,delete\" or a list",
            "# keys:",
            "#   sessions.delete: x",
            "",
            "# state_dir: ~/.local/state/djtui  # locks, job history, the audit log",
            ""]
    return "\n".join(out)


def _target(ctx: Context) -> Path:
    from djtui.config import user_config_dir
    explicit = ctx.args.output or getattr(ctx.args, "config", None)
    return Path(os.path.abspath(os.path.expanduser(explicit))) if explicit else user_config_dir() / "config.yaml"


def run(ctx: Context) -> int:
    from djtui.config import load_config

    args = ctx.args
    path = _target(ctx)
    if path.exists() and not args.force:
        raise UserError(f"{path} already exists", where="--output",
                        hint="pass --force to replace it (the old file is kept as .bak), or --output OTHER_FILE")
    if path.exists() and not path.is_file():
        raise UserError(f"{path} is not a file", where="--output", hint="give a file path")
    dj = read_datajoint()
    answers = from_flags(args, dj)
    if not args.no_input and sys.stdin.isatty():
        answers = ask(answers, dj)
    text = render(answers, dj)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    try:
        load_config(tmp)  # what is written must load
    except UserError:
        tmp.unlink(missing_ok=True)
        raise
    if path.exists():
        os.replace(path, path.with_name(path.name + ".bak"))
    os.replace(tmp, path)
    print(f"wrote {path}")
    for w in dj.warnings:
        print(f"note: {w}")
    from djtui.config import find_config
    try:
        used = find_config()
    except UserError:
        used = None
    if used is not None and used.resolve() != path.resolve():
        print(f"note: without --config, djtui reads {used} (found before this file); run it with --config {path}")
    default = path == _default_path() and (used is None or used.resolve() == path.resolve())
    print(f"next: djtui {'' if default else f'--config {path} '}doctor   (checks the database, paths and tools)")
    return 0


def _default_path() -> Path:
    from djtui.config import user_config_dir
    return user_config_dir() / "config.yaml"
