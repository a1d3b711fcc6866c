"""`--readonly` and `readonly: true`: every write path refuses, in the CLI and in the TUI, and nothing changes.

The CLI's commands are enumerated from the argparse parser itself, so a new command cannot be
forgotten: each one is either declared read-only here (with the reason) or is given arguments
that make it a real write, and must then exit 2 with the read-only message. The TUI's keys are
enumerated from every screen's BINDINGS the same way. Before and after, the whole lab (files,
audit log, state, dumps, exports) and the database (schemas, users, row checksums) are compared.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.binding import Binding

from djtui.cli import build_parser, main
from djtui.config import load_config

from ._r3_lab import DATE, PASSWORD, PASSWORD_ENV, PID, R3Lab, build, drop

# command -> why it writes nothing (it still runs under --readonly; the test checks it changes nothing)
READ_ONLY = {
    "app": "opens the TUI: its keys are walked by test_tui_every_write_key_refuses",
    "doctor": "checks only",
    "demo": "builds its own private demo server in its own folder, never the configured lab",
    "init": "writes only djtui's own new config file (never over one without --force), nothing of the lab",
    "status-range": "reads", "status": "reads",
    "verify": "reads both sides; records its result only in djtui's own state_dir",
    "orphans scan": "reads", "orphans list-quarantine": "reads",
    "export plan": "reads (restrictions run in a read-only transaction)", "export files": "reads",
    "export verify": "loads the export into a scratch private server in a temp folder",
    "users list": "reads", "users check": "reads",
    "dbbackup list": "reads",
    "maintenance disk": "reads; the disk history is not recorded when read-only",
    "audit interrupted": "reads the audit log",
}
NOT_RUN = {"app", "demo", "init"}  # interactive / builds a server / writes a config: covered elsewhere


def write_argv(lab: R3Lab, backup: Path) -> dict[str, list[str]]:
    """Arguments that make each write command a real write on this lab (it would change something)."""
    cleaner = lab.root / "cleaner.toml"
    cleaner.write_text(
        '[database_servers.lab]\nhost = "127.0.0.1:1"\nuser = "u"\npassword = "p"\n'
        '[storage_servers.minio.s3]\nendpoint = "127.0.0.1:1"\naccess_key = "a"\nsecret_key = "s"\n'
        f'[[cleaning_runs]]\ndatabase_server = "lab"\nschema = "{lab.schemas["pose"]}"\nstore = "main"\n'
        'storage_server = "minio.s3"\nbucket = "b"\nlocation = "x"\n')
    return {
        "sync": [PID, DATE],
        "batch": [DATE],
        "delete": [PID, DATE, "--confirm", "DELETE"],
        "bulk-delete": ["--confirm", "DELETE ALL"],
        "orphans quarantine": ["--source", f"dir:{lab.root}/tmp", "--confirm", "QUARANTINE"],
        "orphans purge": ["--older-than", "0"],
        "orphans restore": ["20250101-000000-abcdef"],
        "orphans clean": ["--cleaner-config", str(cleaner), "--confirm", "QUARANTINE"],
        "export write": ["--leaf", lab.leaf, "--out", str(lab.root / "exports" / "ro")],
        "roles init": [],
        "roles add-module": ["rocheck"],
        "users add": [f"{lab.user}ro", "--role", "guest"],
        "users reset-password": [lab.user],
        # managed users the fixture made: t (guest, with an extra grant: drift) and l (locked)
        "users fix": [f"{lab.user}t", "--confirm", "FIX"],
        "users set-role": [f"{lab.user}t", "user", "--confirm", f"{lab.user}t"],
        "users lock": [f"{lab.user}t", "--confirm", f"{lab.user}t"],
        "users unlock": [f"{lab.user}l", "--confirm", f"{lab.user}l"],
        "users drop": [f"{lab.user}t", "--confirm", f"DROP {lab.user}t"],
        "passwd": ["--password-stdin"],
        "dbbackup run": ["--no-copy"],
        "dbbackup verify": [str(backup)],
        "dbbackup prune": ["--confirm", "PRUNE"],
        "dbbackup restore": [str(backup), "--confirm", "RESTORE"],
        "maintenance tmp-clean": [],
        "maintenance run": ["--no-backup"],
        "audit ack": ["a1b2c3"],
    }


def leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = leaf_commands(sub, (*prefix, name))
                out += inner or [" ".join((*prefix, name))]
    return out


def snapshot(lab: R3Lab, *, skip: tuple[str, ...] = ()) -> dict:
    """Every file under the lab (size, mtime, mode), and the database's schemas, users and table checksums."""
    files = {}
    for p in sorted(lab.root.rglob("*")):
        rel = p.relative_to(lab.root)
        if (rel.parts and rel.parts[0] in skip) or p.name.endswith(("-wal", "-shm", "-journal")):
            continue  # sqlite's journal files of djtui's own state come and go when a database is read
        st = p.lstat()
        # a directory's mtime moves when a transient file (a lock, sqlite's -wal) comes and goes: its
        # entries are compared one by one instead
        files[str(rel)] = (st.st_mode,) if p.is_dir() and not p.is_symlink() else \
            (st.st_size, st.st_mtime_ns, st.st_mode)
    conn = lab.server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT schema_name FROM information_schema.schemata ORDER BY 1")
            schemas = [r[0] for r in cur.fetchall()]
            cur.execute("SELECT User, Host FROM mysql.user ORDER BY 1, 2")
            users = cur.fetchall()
            cur.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema LIKE %s",
                        (lab.base.replace("_", "\\_") + "%",))
            tables = [f"`{s}`.`{t}`" for s, t in cur.fetchall()]
            cur.execute("CHECKSUM TABLE " + ", ".join(tables))
            sums = cur.fetchall()
            cur.execute("SELECT COUNT(*) FROM mysql.roles_mapping")
            roles = cur.fetchall()
    finally:
        conn.close()
    return {"files": files, "schemas": schemas, "users": users, "sums": sums, "roles": roles}


def diff(a: dict, b: dict) -> list[str]:
    out = [k for k in ("schemas", "users", "sums", "roles") if a[k] != b[k]]
    fa, fb = a["files"], b["files"]
    out += [f"file {k}" for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    return out


@pytest.fixture(scope="module")
def lab(server, tmp_path_factory) -> Iterator[tuple[R3Lab, Path]]:
    """The lab with a safe session (synced and verified), a quarantine batch and a backup: every write has work."""
    lab = build(server, tmp_path_factory.mktemp("r3ro"))
    old = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = PASSWORD
    try:
        cfg = str(lab.config_path)
        assert main(["--config", cfg, "sync", PID, DATE]) == 0
        assert main(["--config", cfg, "verify", PID, DATE]) == 0
        (lab.root / "tmp" / "stale2.part").write_bytes(b"y" * 10)
        past = 1_600_000_000
        os.utime(lab.root / "tmp" / "stale2.part", (past, past))
        assert main(["--config", cfg, "dbbackup", "run", "--no-copy", "--schemas-only"]) == 0
        backup = next((lab.root / "backups").iterdir())
        for name in ("t", "l"):  # managed users for users fix/set-role/lock/unlock/drop to act on
            assert main(["--config", cfg, "users", "add", f"{lab.user}{name}", "--role", "guest"]) == 0
        assert main(["--config", cfg, "users", "lock", f"{lab.user}l", "--confirm", f"{lab.user}l"]) == 0
        conn = lab.server.connect()
        try:
            with conn.cursor() as cur:  # drift: a privilege beyond the guest role
                cur.execute(f"GRANT INSERT ON `{lab.base}\\_%`.* TO '{lab.user}t'@'%'")
        finally:
            conn.close()
        for day in range(1, 13):  # old backups outside the retention policy: prune has work to refuse
            shutil.copytree(backup, backup.with_name(f"2020-01-{day:02d}_000000"))
        yield lab, backup
    finally:
        if old is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = old
        drop(lab)


def test_every_cli_command_is_classified(tmp_path) -> None:
    commands = set(leaf_commands(build_parser()))
    stub = R3Lab(tmp_path, None, "u", "b", {"sessions": "s", "multicamera": "m", "pose": "p"},  # type: ignore[arg-type]
                 tmp_path / "c.yaml")
    writes = set(write_argv(stub, tmp_path))
    assert not (writes & set(READ_ONLY)), "a command cannot be both"
    missing = commands - writes - set(READ_ONLY)
    assert not missing, f"new command(s) not classified as read-only or write: {sorted(missing)}"
    assert not (writes | set(READ_ONLY)) - commands, "classified commands that no longer exist"


@pytest.mark.parametrize("mode", ["flag", "config"])
def test_cli_every_write_refuses(lab, mode: str, capsys, tmp_path) -> None:
    lab, backup = lab
    if mode == "flag":
        base = ["--config", str(lab.config_path), "--readonly"]
    else:
        base = ["--config", str(lab.write_config("ro.yaml", "readonly: true\n"))]
    commands = write_argv(lab, backup)
    before = snapshot(lab)
    refused = {}
    touched = []
    for command, args in commands.items():
        mark = snapshot(lab)
        code = main([*base, *command.split(), *args])
        err = capsys.readouterr().err
        refused[command] = (code, "read-only" in err, err.strip().splitlines()[:1])
        touched += [f"{command}: {d}" for d in diff(mark, snapshot(lab))]
    assert touched == []
    bad = {c: r for c, r in refused.items() if r[:2] != (2, True)}
    assert not bad, bad
    assert diff(before, snapshot(lab)) == []


def test_cli_read_only_commands_run_and_change_nothing(lab, capsys) -> None:
    lab, _backup = lab
    base = ["--config", str(lab.config_path), "--readonly"]
    argv = {
        "doctor": [], "status-range": [], "status": [PID, DATE], "verify": [PID, DATE, "--checksum"],
        "orphans scan": [], "orphans list-quarantine": [], "export plan": ["--leaf", lab.leaf],
        "export files": ["--leaf", lab.leaf], "users list": [], "users check": [], "dbbackup list": [],
        "maintenance disk": [], "audit interrupted": [],
    }
    assert set(argv) | NOT_RUN | {"export verify"} == set(READ_ONLY)
    before = snapshot(lab, skip=("state",))
    for command, args in argv.items():
        code = main([*base, *command.split(), *args])
        err = capsys.readouterr().err
        assert "read-only" not in err, (command, err)
        assert code in (0, 1), (command, code, err)
    assert diff(before, snapshot(lab, skip=("state",))) == []


# --- the TUI --------------------------------------------------------------------------------------

WRITE_KEYS = {
    # binding id -> (mode to switch to, key)
    "sessions.sync": ("sessions", "s"), "sessions.delete": ("sessions", "d"),
    "sessions.bulk_delete": ("sessions", "D"),
    "orphans.quarantine": ("orphans", "Q"), "orphans.restore": ("orphans", "R"), "orphans.purge": ("orphans", "P"),
    "export.write": ("export", "w"), "export.mermaid": ("export", "m"),
    "accounts.add_user": ("accounts", "a"), "accounts.add_module": ("accounts", "m"),
    "accounts.reset_password": ("accounts", "p"), "accounts.roles_init": ("accounts", "i"),
    "accounts.fix": ("accounts", "f"), "accounts.set_role": ("accounts", "e"), "accounts.lock": ("accounts", "l"),
    "accounts.drop": ("accounts", "d"),
    "backups.run": ("backups", "b"), "backups.verify": ("backups", "v"),
    "backups.restore": ("backups", "R"), "backups.prune": ("backups", "p"),
}
# keys that only move, show, filter, select or stop: nothing persistent changes
NON_WRITE_KEYS = {
    "screen.leave_input", "sessions.filter", "sessions.select", "sessions.detail", "sessions.sort",
    "sessions.verify", "sessions.refresh", "sessions.clear", "transfers.cancel", "transfers.clear",
    "orphans.rescan", "orphans.cancel_scan", "orphans.tab_items", "orphans.tab_quarantine", "export.search",
    "export.restriction", "export.remove", "export.files", "accounts.refresh", "backups.refresh",
    "screen.cancel_wait",  # stops waiting for the database
    "transfers.retry",  # a verify or a dry run writes nothing; a sync refuses: test_tui_retry_refuses_only_a_sync
    "export.verify",  # loads the export into a scratch private server in a temp folder, as the CLI's
    "export.load",  # reads leaves (the export log, a leaves file) into the screen's list: nothing written
    "export.internal",  # lists DataJoint's ~ tables too
    "orphans.open_items",  # space/enter on a source moves to its items
    # the terminal habits of every screen (tui.navigation): move, search and reverse the focused list
    "nav.down", "nav.up", "nav.first", "nav.last", "nav.search", "nav.next", "nav.previous", "nav.reverse",
}


def _screen_binding_ids() -> set[str]:
    from djtui.tui.app import SCREENS
    ids = set()
    for _name, (_key, cls) in SCREENS.items():
        for klass in cls.__mro__:
            if not klass.__module__.startswith("djtui"):
                continue  # Textual's own (tab, shift+tab): focus only
            for b in klass.__dict__.get("BINDINGS", []):
                if isinstance(b, Binding):
                    assert b.id, f"{cls.__name__}: binding {b.key} has no id"
                    ids.add(b.id)
    return ids


def test_every_screen_key_is_classified() -> None:
    from djtui.tui.screens.base import WRITE_BINDINGS

    ids = _screen_binding_ids()
    assert not (set(WRITE_KEYS) & NON_WRITE_KEYS)
    assert ids - set(WRITE_KEYS) - NON_WRITE_KEYS == set(), "classify the new key(s) as write or not"
    assert set(WRITE_KEYS) - ids == set(), "a write key listed here no longer exists"
    # the app hides and refuses exactly the keys this test calls writes
    assert set(WRITE_BINDINGS) == set(WRITE_KEYS)


@pytest.mark.parametrize("readonly", [True, False], ids=["readonly", "writable"])
async def test_tui_footer_offers_no_write_key_when_read_only(tmp_path, readonly: bool) -> None:
    """Under read-only no write key is offered (footer, help, command palette); otherwise all are."""
    from textual.widgets import Footer

    from djtui.config import parse_config
    from djtui.tui.app import SCREENS, DjtuiApp
    from djtui.tui.screens.base import WRITE_BINDINGS
    from djtui.tui.widgets.help import HelpScreen

    app = DjtuiApp(config=parse_config(f"state_dir: {tmp_path}/state\nreadonly: {str(readonly).lower()}\n"),
                   connect=False)
    offered: dict[str, set[str]] = {}
    async with app.run_test(size=(200, 40)) as pilot:
        for name in SCREENS:
            await app.switch_mode(name)
            await pilot.pause()
            screen = app.screen
            active = {ab.binding.id for ab in screen.active_bindings.values()}
            footer_keys = {k.description for k in screen.query_one(Footer).query("FooterKey")}
            palette = {c.title for c in app.get_system_commands(screen)}
            offered[name] = {i for i in active if i in WRITE_BINDINGS}
            own = [b for b in screen._bindings.key_to_bindings.values() for b in b if b.id in WRITE_BINDINGS]
            for b in own:
                assert (b.description in footer_keys) is (not readonly), (name, b.description, footer_keys)
                assert any(t.endswith(f": {b.description}") for t in palette) is (not readonly), (name, b.id)
            app.action_help()
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            help_text = "\n".join(str(w.render()) for w in app.screen.query("Static"))
            assert "Read-only" in help_text and "state_dir" in help_text
            for b in own:
                assert (f"{b.key}  {b.description}" in help_text) is (not readonly), (name, b.id)
            await pilot.press("escape")
    every = set().union(*offered.values())
    assert every == (set() if readonly else set(WRITE_BINDINGS))


def test_cli_help_states_the_rule(capsys) -> None:
    from djtui.errors import READONLY_RULE

    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert " ".join(READONLY_RULE.split()) in out
    assert "state_dir" in out and "verified.json" in out


@pytest.mark.parametrize("mode", ["flag", "config"])
async def test_tui_every_write_key_refuses(lab, mode: str) -> None:
    from djtui.tui.app import DjtuiApp
    from djtui.tui.screens.base import DjtuiScreen

    lab, _backup = lab
    if mode == "flag":
        app = DjtuiApp(config=load_config(lab.config_path), readonly=True)
    else:
        app = DjtuiApp(config=load_config(lab.write_config("ro-tui.yaml", "readonly: true\n")))
    before = snapshot(lab, skip=("state",))
    results = {}
    async with app.run_test(size=(160, 50)) as pilot:
        for _ in range(200):
            if app.ctx.db is not None:
                break
            await pilot.pause(0.05)
        assert app.ctx.db is not None, app.ctx.db_error
        for mode_name in ("sessions", "orphans", "export", "accounts", "backups"):
            await app.switch_mode(mode_name)
            await pilot.pause(0.2)
            await app.workers.wait_for_complete()
            await pilot.pause()
        for binding_id, (mode_name, key) in WRITE_KEYS.items():
            await app.switch_mode(mode_name)
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, DjtuiScreen), (binding_id, screen)
            seen = list(app._notifications)  # older ones may expire meanwhile: compare by identity
            await pilot.press(key)
            notes: list[str] = []
            for _ in range(20):
                await pilot.pause(0.05)
                notes = [n.message for n in app._notifications if not any(n is o for o in seen)]
                if notes:
                    break
            # the one refusal, in the CLI's words (ReadOnlyError), on every screen
            results[binding_id] = (any(n.startswith("refused: ") and "writes, and djtui is running read-only" in n
                                       for n in notes), app.screen is screen, notes)
            while app.screen is not screen and len(app.screen_stack) > 1:
                await pilot.press("escape")
                await pilot.pause()
        await app.workers.wait_for_complete()
    bad = {k: v for k, v in results.items() if v[:2] != (True, True)}
    assert not bad, bad
    assert diff(before, snapshot(lab, skip=("state",))) == []


async def test_tui_retry_refuses_only_a_sync(lab) -> None:
    """Transfers `t` under read-only: a failed sync is not run again (the one refusal), a failed verify is."""
    from textual.widgets import DataTable

    from djtui.domain.sessions import session_key
    from djtui.tui.app import DjtuiApp

    lab, _backup = lab
    app = DjtuiApp(config=load_config(lab.config_path), readonly=True, connect=False)
    before = snapshot(lab, skip=("state",))
    async with app.run_test(size=(120, 30)) as pilot:
        q = app.ctx.job_queue()
        sync = q.submit("sync", session_key("p404", DATE), "net")  # cancelled before it runs: never copies
        q.cancel(sync)
        verify = q.submit("verify", session_key("p404", DATE), "net")  # no such session: fails
        for _ in range(200):
            if not verify.active:
                break
            await pilot.pause(0.05)
        assert (sync.state, verify.state) == ("cancelled", "failed")
        await app.switch_mode("transfers")
        await pilot.pause(0.5)
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=0)
        await pilot.press("t")
        await pilot.pause()
        assert len(q.jobs) == 2
        assert any(n.message.startswith("refused: retrying a sync") and "djtui is running read-only" in n.message
                   for n in app._notifications)
        table.move_cursor(row=1)
        await pilot.press("t")
        await pilot.pause()
        assert len(q.jobs) == 3 and q.jobs[2].kind == "verify" and q.jobs[2].retry_of == verify.id
        for _ in range(200):
            if not q.jobs[2].active:
                break
            await pilot.pause(0.05)
    assert diff(before, snapshot(lab, skip=("state",))) == []


async def test_tui_readonly_still_verifies_a_big_session(lab) -> None:
    """Verify is allowed read-only; with >= 2000 files its hashing uses worker processes, which must work
    (or fall back to threads) inside the TUI, where Textual's captured stderr has no file descriptor."""
    from djtui.domain.sessions import session_key
    from djtui.tui.app import DjtuiApp

    lab, _backup = lab
    big = lab.root / "source" / "p002" / DATE
    big.mkdir(parents=True)
    dest = lab.root / "dest" / DATE / "p002"
    dest.mkdir(parents=True)
    for i in range(2100):
        data = i.to_bytes(4, "little") * 8
        (big / f"f{i:05d}.bin").write_bytes(data)
        (dest / f"f{i:05d}.bin").write_bytes(data)
    app = DjtuiApp(config=load_config(lab.config_path), readonly=True)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            if app.ctx.db is not None:
                break
            await pilot.pause(0.05)
        q = app.ctx.job_queue()
        job = q.submit("verify", session_key("p002", DATE), "net", checksum=True)
        for _ in range(3600):  # the machine may be busy: up to 3 minutes
            if not job.active:
                break
            await pilot.pause(0.05)
    assert job.state == "done", job.message
    assert "2100" in job.message
