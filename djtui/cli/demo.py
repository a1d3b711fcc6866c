"""`djtui demo`: try djtui on a throwaway lab, or leave one running for scripts and tests."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from djtui.cli.context import Context
from djtui.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="build a demo lab on a private server and open the app on it",
                       description="Without options: build a fresh demo lab in a temporary directory, open the "
                                   "app on it, and remove everything on exit. With --setup-only --dir DIR: build "
                                   "it in DIR and leave its server running; --stop --dir DIR stops that server, "
                                   "--start --dir DIR starts it again.")
    p.add_argument("--dir", metavar="DIR", help="where to build the lab (required with --setup-only and --stop)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--setup-only", action="store_true",
                      help="build the lab in DIR, leave its server running, print how to use it")
    mode.add_argument("--stop", action="store_true",
                      help="stop the server of the demo lab in DIR (its data stays, for --start)")
    mode.add_argument("--start", action="store_true",
                      help="start the stopped demo lab in DIR again: same data, same port if it is free")
    p.add_argument("--seed", type=int, default=20261123, help="random seed (the lab is the same for a seed)")
    p.add_argument("--backend", choices=("mysql", "postgresql"), default="mysql",
                   help="the private server: mysql (MariaDB/MySQL, DataJoint 0.14's lab; the default) or "
                        "postgresql (DataJoint 2.x declares and fills the lab there)")
    p.set_defaults(func=run)


def run(ctx: Context) -> int:
    args = ctx.args
    if args.stop:
        return _stop(_need_dir(args, "--stop"))
    if args.start:
        return _start(_need_dir(args, "--start"))
    if args.setup_only:
        return _setup_only(_need_dir(args, "--setup-only"), args.seed, args.backend)
    return _interactive(Path(args.dir) if args.dir else None, args.seed, ctx, args.backend)


def _need_dir(args: argparse.Namespace, flag: str) -> Path:
    if not args.dir:
        raise UserError(f"{flag} needs the lab's directory", where="--dir",
                        hint=f"run `djtui demo {flag} --dir DIR`")
    return Path(args.dir).expanduser().resolve()


def _say(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def _check_target(base: Path) -> None:
    """Refuse a directory that already holds a lab, or that holds anything else."""
    from djtui.demo import SERVER_DIR, is_demo_dir
    from djtui.services.servers.process import read_state

    if base.exists() and not base.is_dir():
        raise UserError(f"{base} exists and is not a directory", where="--dir", hint="choose another path")
    if base.is_dir() and is_demo_dir(base):
        running = read_state(base / SERVER_DIR) is not None
        raise UserError(
            f"{base} already holds a demo lab" + (" and its server is running" if running else ""),
            where="--dir",
            hint=(f"use it with `djtui --config {base}/djtui.yaml`, or stop it with `djtui demo --stop --dir {base}`"
                  if running else f"start it again with `djtui demo --start --dir {base}`, or remove {base} first, "
                                  "or choose another directory"))
    if base.is_dir() and any(base.iterdir()):
        raise UserError(f"{base} is not empty and is not a demo lab", where="--dir",
                        hint="choose a new or empty directory; djtui will not build over other files")


class _Terminated(Exception):
    pass


_running_app: list = []  # the app on screen, if any: a signal asks it to exit instead of raising inside it
_hangup_cleanup: list = []  # what SIGHUP must undo before leaving at once


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM and SIGHUP (a dropped ssh session) unwind like Ctrl-C: the server stops, the directory goes.

    While the app runs, raising inside its event loop can be swallowed by a callback; the handler
    then asks the app to exit from the loop itself, and the caller's ``finally`` cleans up.
    """
    def handler(signum, _frame):
        if signum == signal.SIGHUP and _hangup_cleanup:
            # the terminal is gone: Textual's shutdown can block writing to it, so clean up here and leave
            for action in _hangup_cleanup:
                with contextlib.suppress(Exception):
                    action()
            os._exit(129)
        if _running_app:
            app = _running_app[0]
            app.terminated_by_signal = True
            loop = getattr(app, "_loop", None)
            if loop is not None and loop.is_running():
                loop.call_soon_threadsafe(app.exit, 143)
                return
        raise _Terminated()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _server_class(backend: str):
    if backend == "postgresql":
        from djtui.services.servers.postgres import PrivatePostgres

        return PrivatePostgres
    from djtui.services.servers.mariadb import PrivateServer

    return PrivateServer


def _build(base: Path, seed: int, *, detached: bool, backend: str = "mysql"):
    from djtui.config import load_config
    from djtui.demo import SERVER_DIR, build_lab, preverify
    from djtui.demo.pg import build_lab_pg

    _say(f"starting a private {'PostgreSQL' if backend == 'postgresql' else 'database'} server")
    server = _server_class(backend)(base / SERVER_DIR, detached=detached)
    server.start()
    try:
        builder = build_lab_pg if backend == "postgresql" else build_lab
        summary = builder(base, server.connect, server.settings, seed=seed, progress=_say)
        load_config(summary.config_path)  # proves the file it wrote is valid
        _say("verifying the fully copied sessions (as `djtui verify` would)")
        verified, why = preverify(summary)
        if why:
            _say(f"(skipped: {why}; run `djtui verify P D` yourself)")
    except BaseException:
        server.stop()
        raise
    return server, summary, verified


def _setup_only(base: Path, seed: int, backend: str = "mysql") -> int:
    _check_target(base)
    created = not base.exists()
    start = time.monotonic()
    print(f"djtui demo: building a demo lab in {base}", file=sys.stderr, flush=True)
    try:
        with _sigterm_raises():
            server, summary, verified = _build(base, seed, detached=True, backend=backend)
    except BaseException:
        if created:
            shutil.rmtree(base, ignore_errors=True)
        else:
            for child in base.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        raise
    elapsed = time.monotonic() - start
    _print_summary(summary, verified)
    for note in summary.notes:
        print(f"note: {note}")
    cfg = summary.config_path
    binary = getattr(server, "binary", None)  # MariaDB's server object keeps its version there
    version = getattr(server, "version", None) or getattr(binary, "version", "")
    print(f"\nready in {elapsed:.1f} s: {' '.join(filter(None, (server.flavor, version)))} on 127.0.0.1:{server.port} "
          f"(pid {server.pid})\n"
          f"  open the app:   djtui --config {cfg}\n"
          f"  or any command: djtui --config {cfg} status-range\n"
          f"                  djtui --config {cfg} doctor\n"
          f"  stop it:        djtui demo --stop --dir {base}")
    return 0


def _print_summary(summary, verified: set) -> None:
    n = len(summary.sessions)
    print(f"sessions: {n} ({summary.count(db_state='full')} imported, "
          f"{summary.count(db_state='no_recording') + summary.count(db_state='no_videos')} partly, "
          f"{summary.count(db_state='absent')} not imported; "
          f"{summary.count(backup_state='full')} backed up, "
          f"{summary.count(backup_state='missing_file') + summary.count(backup_state='truncated_file')} partly, "
          f"{summary.count(backup_state='absent')} not)")
    safe = {(s.participant, s.date) for s in summary.sessions if s.safe}
    print(f"safe to delete: {len(safe & verified)} (imported, copied, verified); {len(safe - verified)} more "
          "once `djtui verify` checks their copies")
    legacy = sum(sum(v.values()) for v in summary.legacy_orphans.values())
    spyglass = f"{summary.interval_orphans} interval rows, {legacy} in the legacy store, " if summary.export_tables \
        else ""  # the PostgreSQL lab has neither (its notes say why)
    print(f"orphans: {spyglass}"
          f"{summary.dj2_orphans} in the DataJoint 2.x store ({summary.dj2_backend}), "
          f"{summary.analysis_untracked + summary.analysis_zero_byte} analysis files, "
          f"{summary.temp_stale} stale temp files")


def _stop(base: Path) -> int:
    from djtui.demo import SERVER_DIR, is_demo_dir
    from djtui.services.servers.process import stop_detached

    if not is_demo_dir(base):
        raise UserError(f"{base} is not a demo lab", where="--dir",
                        hint="give the directory that `djtui demo --setup-only --dir DIR` built")
    outside = _remember_data_dir(base / SERVER_DIR)
    if stop_detached(base / SERVER_DIR, remove_data=False):
        print(f"stopped the demo server of {base} (the lab's files and data are still there: start it again "
              f"with `djtui demo --start --dir {base}`, or remove the directory when you no longer need it"
              + (f", and its database's data in {outside}" if outside else "") + ")")
        return 0
    print(f"no demo server was running for {base}")
    return 0


STOPPED_FILE = "stopped.json"  # where a stopped server's data lives when it is outside the lab (PostgreSQL as root)


def _remember_data_dir(server_dir: Path) -> str | None:
    """Before a stop removes the state file: note a data directory kept outside the lab, for --start;
    returns the folder that holds it (None when the data is inside the lab)."""
    import json

    from djtui.services.servers.process import read_state

    state = read_state(server_dir)
    if state and state.get("run_dir") and state.get("datadir"):
        (server_dir / STOPPED_FILE).write_text(json.dumps({"datadir": state["datadir"]}) + "\n")
        return str(state["run_dir"])
    return None


def _restore_data_dir(server, server_dir: Path) -> None:
    """Point a PostgreSQL server object at the data directory ``_remember_data_dir`` noted (if any)."""
    import json

    note = server_dir / STOPPED_FILE
    if note.is_file() and hasattr(server, "datadir"):
        datadir = Path(json.loads(note.read_text())["datadir"])
        fresh = server.run_dir  # the new server object made an empty folder of its own: not needed
        server.datadir, server.run_dir, server.socket_dir = datadir, datadir.parent, datadir.parent / "sock"
        if fresh != server.run_dir and fresh != server_dir.resolve():
            with contextlib.suppress(OSError):
                fresh.rmdir()


def _start(base: Path) -> int:
    """Start a stopped demo lab again: its server on the same data; the config's port follows the server."""
    import re

    from djtui.config import load_config
    from djtui.demo import CONFIG_NAME, SERVER_DIR, is_demo_dir

    if not is_demo_dir(base):
        raise UserError(f"{base} is not a demo lab", where="--dir",
                        hint="give the directory that `djtui demo --setup-only --dir DIR` built")
    cfg_path = base / CONFIG_NAME
    cfg = load_config(cfg_path)
    if cfg.database.password is None or cfg.database.port is None:
        raise UserError("the lab's config has no database port or password", where=str(cfg_path),
                        hint="build a new lab (djtui demo --setup-only --dir NEW_DIR)")
    server = _server_class(cfg.database.backend or "mysql")(base / SERVER_DIR, detached=True, keep_dir=True)
    _restore_data_dir(server, base / SERVER_DIR)
    server.restart(cfg.database.password, cfg.database.port)
    (base / SERVER_DIR / STOPPED_FILE).unlink(missing_ok=True)
    moved = server.port != cfg.database.port
    if moved:  # our own file: only the database section's port line changes
        text = cfg_path.read_text(encoding="utf-8")
        new, n = re.subn(r"(?m)^(database:\n(?:[ \t].*\n|\n)*?[ \t]+port:[ \t]*)\d+", rf"\g<1>{server.port}",
                         text, count=1)
        if n != 1:
            server.stop()
            raise UserError("cannot find database.port in the lab's config to update it", where=str(cfg_path))
        tmp = cfg_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new)
        os.replace(tmp, cfg_path)
        load_config(cfg_path)  # proves the file is still valid
    print(f"started the demo lab of {base}: {server.flavor} on 127.0.0.1:{server.port} (pid {server.pid})"
          + (f"; port {cfg.database.port} was taken, {cfg_path} now says {server.port}" if moved else "") + "\n"
          f"  open the app:   djtui --config {cfg_path}\n"
          f"  stop it:        djtui demo --stop --dir {base}")
    return 0


def _interactive(base: Path | None, seed: int, ctx: Context, backend: str = "mysql") -> int:
    from djtui.cli.app import require_terminal
    from djtui.config import load_config

    require_terminal()  # before building a lab the app could not show
    if base is not None:
        base = base.expanduser().resolve()
        _check_target(base)
    own = base is None
    work = Path(tempfile.mkdtemp(prefix="djtui-demo-")) if own else base
    assert work is not None
    server = None
    print(f"djtui demo: building a throwaway lab in {work} (removed on exit)", file=sys.stderr, flush=True)
    try:
        with _sigterm_raises():
            server, summary, _verified = _build(work, seed, detached=False, backend=backend)
            _hangup_cleanup[:] = [server.stop, lambda: shutil.rmtree(work, ignore_errors=True)]
            for note in summary.notes:  # e.g. what the PostgreSQL lab leaves out
                _say(f"note: {note}")
            cfg = load_config(summary.config_path)
            from djtui.tui.app import DjtuiApp

            app = DjtuiApp(config=cfg, readonly=ctx.readonly)
            _running_app[:] = [app]
            try:
                app.run(mouse=not getattr(ctx.args, "no_mouse", False))
            finally:
                _running_app.clear()
            if getattr(app, "terminated_by_signal", False):
                print("djtui demo: terminated; cleaning up", file=sys.stderr)
                return 143
            return app.return_code or 0
    except _Terminated:
        print("djtui demo: terminated; cleaning up", file=sys.stderr)
        return 143
    finally:
        _hangup_cleanup.clear()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
