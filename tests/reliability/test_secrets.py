"""No credential anywhere: argv (ps), stdout, stderr, logs, the audit log, written files, screens.

One lab user has the password ``Pw-Xy7#secret$zz`` (given through ``database.password_env``).
Every main CLI path runs as the real binary on it, and each run's stdout and stderr, every file the
runs left (state dir, audit log, exports, dumps and their manifests, crash reports), and the argv of
every process alive while they ran are grepped for the password. The TUI is driven with the Pilot
and every screen's rendered text (and the command log screen) is grepped too.
"""

from __future__ import annotations

import json
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from djtui.config import load_config
from djtui.services import commandlog

from ._r3_lab import (
    DATE,
    PASSWORD,
    PASSWORD_ENV,
    PID,
    ProcessWatch,
    R3Lab,
    build,
    drop,
    files_containing,
    table_locked,
)


@pytest.fixture(scope="module")
def lab(server, tmp_path_factory) -> Iterator[R3Lab]:
    lab = build(server, tmp_path_factory.mktemp("r3secrets"))
    try:
        yield lab
    finally:
        drop(lab)


def _clean(runs: list[tuple[str, subprocess.CompletedProcess[str]]]) -> list[str]:
    return [f"{name}: {where}" for name, r in runs for where, text in (("stdout", r.stdout), ("stderr", r.stderr))
            if PASSWORD in text]


def test_cli_paths_leave_no_password(lab: R3Lab) -> None:
    runs: list[tuple[str, subprocess.CompletedProcess[str]]] = []

    def run(name: str, *argv: str, ok: tuple[int, ...] = (0,), **kw) -> subprocess.CompletedProcess[str]:
        r = lab.cli(*argv, **kw)
        runs.append((name, r))
        assert r.returncode in ok, f"{name}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    sess = lab.schemas["sessions"]
    with ProcessWatch(environ_of=(b"dump",)) as watch:
        run("doctor", "doctor", ok=(0, 1))
        run("status-range", "status-range", "--json")
        run("status", "status", PID, DATE)
        run("sync", "sync", PID, DATE)
        run("verify", "verify", PID, DATE, "--checksum")
        run("delete dry-run", "delete", PID, DATE, "--dry-run")
        run("bulk-delete dry-run", "bulk-delete", "--dry-run")
        run("orphans scan", "orphans", "scan", "--json")
        run("orphans quarantine", "orphans", "quarantine", "--source", f"dir:{lab.root}/tmp", "--confirm",
            "QUARANTINE")
        run("orphans list", "orphans", "list-quarantine")
        run("export plan", "export", "plan", "--leaf", lab.leaf)
        for fmt in ("sql", "script", "docker"):
            run(f"export write {fmt}", "export", "write", "--leaf", lab.leaf, "--format", fmt,
                "--out", str(lab.root / "exports" / fmt))
        run("export files", "export", "files", "--leaf", lab.leaf, ok=(0, 1))
        run("export verify", "export", "verify", str(lab.root / "exports" / "sql"))
        with table_locked(lab.server, f"`{sess}`.`subject`"):
            # the dump of this schema waits on the lock while the sampler reads its argv
            box: dict = {}
            t = threading.Thread(target=lambda: box.setdefault("r", lab.cli("dbbackup", "run", "--no-copy")))
            t.start()
            deadline = time.monotonic() + 60
            while not watch.saw(b"dump", lab.base) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)
        t.join(180)
        runs.append(("dbbackup run", box["r"]))
        assert box["r"].returncode == 0, box["r"].stderr
        backup_dir = Path(box["r"].stdout.strip().splitlines()[-1])
        run("dbbackup verify", "dbbackup", "verify", str(backup_dir))
        run("dbbackup list", "dbbackup", "list")
        run("roles init", "roles", "init")
        name = f"{lab.user}u"
        run("users add", "users", "add", name, "--role", "collab")
        run("users reset-password", "users", "reset-password", name)
        run("users add (stdin)", "users", "add", f"{lab.user}v", "--role", "guest", "--password-stdin",
            stdin="Typed-Other-Pw-88\n")
        run("users list", "users", "list")
        run("users check", "users", "check", ok=(0, 1))
        run("maintenance disk", "maintenance", "disk", ok=(0, 1))
        run("maintenance tmp-clean", "maintenance", "tmp-clean")
        run("delete", "delete", PID, DATE, "--confirm", "DELETE", ok=(0, 1))
        # wrong host and wrong port: the connection fails, the error path runs
        bad = lab.write_config("bad-host.yaml", host="no-such-host.invalid")
        r = run("wrong host", "users", "list", config=bad, ok=(2,))
        assert "cannot connect" in r.stderr
        bad_port = lab.write_config("bad-port.yaml", port=1)
        run("wrong port", "export", "plan", "--leaf", lab.leaf, config=bad_port, ok=(2,))
        # a password written in the config file itself (not only through the environment)
        # a config with the password inline names no variable: a user of it has none holding the password
        # (were one set, djtui could not know it is one, and its children would inherit it as any variable)
        no_pw_env = {k: v for k, v in lab.env.items() if k != PASSWORD_ENV}
        inline = lab.write_config("inline.yaml", password_line=f'  password: "{PASSWORD}"', host="no-such-host.invalid")
        run("wrong host, inline password", "doctor", config=inline, ok=(1, 2), env=no_pw_env)
        wrong_pw = lab.write_config("wrong-pw.yaml", password_line=f'  password: "{PASSWORD}-not"')
        r = run("wrong password", "orphans", "scan", config=wrong_pw, ok=(2,), env=no_pw_env)
        assert "Access denied" in r.stderr or "password" in r.stderr

    assert _clean(runs) == []
    assert watch.samples > 50
    dumps = watch.saw(b"dump", lab.base)
    assert dumps, "the sampler never saw a dump process"
    assert watch.leaks(PASSWORD) == []
    ours = [c for c, env in watch.environs.items() if f"HOME={lab.root}\0".encode() in env]
    assert ours, "the dump tool's environment was never read"
    assert watch.environ_leaks(PASSWORD) == []  # password_env's variable is not inherited
    # the artefacts: everything the runs wrote (the lab root holds state, audit log, exports, dumps, HOME)
    audit = (lab.root / "audit.jsonl").read_text()
    assert "users-add" in audit and "quarantine" in audit, audit[:500]
    assert list((lab.root / "backups").iterdir()) and (lab.root / "exports" / "docker").is_dir()
    assert files_containing(lab.root, PASSWORD, exclude=(inline, wrong_pw)) == []


def test_export_script_run_never_shows_the_password(lab: R3Lab) -> None:
    """export.sh runs mysqldump per key chunk; its argv names an option file, never the password."""
    out = lab.root / "exports" / "script-run"
    r = lab.cli("export", "write", "--leaf", lab.leaf, "--format", "script", "--out", str(out))
    assert r.returncode == 0, r.stderr
    cnf = lab.root / "client.cnf"
    cnf.write_text(f"[client]\nuser={lab.user}\npassword=\"{PASSWORD}\"\nhost=127.0.0.1\n"
                   f"port={lab.server.port}\nprotocol=TCP\n")
    cnf.chmod(0o600)
    with ProcessWatch() as watch, table_locked(lab.server, f"`{lab.schemas['sessions']}`.`subject`"):
        proc = subprocess.Popen(["bash", str(out / "export.sh"), str(cnf)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not watch.saw(b"dump", lab.base) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert watch.saw(b"dump", lab.base), "the sampler never saw mysqldump"
    assert watch.leaks(PASSWORD) == []
    assert PASSWORD not in stdout + stderr
    cnf.unlink()
    assert files_containing(out, PASSWORD) == []


def test_crash_report_is_masked(lab: R3Lab, monkeypatch, capsys) -> None:
    """An unexpected exception whose text holds the password: stderr and the crash file show ****."""
    from djtui import cli
    from djtui.services.sessions import SessionService

    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)

    def boom(self, *a, **k):  # an internal error that drags connection details into its message
        raise RuntimeError(f"driver said: login {self.db.settings.user} / {self.db.settings.password.reveal()}")

    monkeypatch.setattr(SessionService, "status_range", boom)
    code = cli.main(["--config", str(lab.config_path), "status-range"])
    err = capsys.readouterr().err
    assert code == 1 and "internal error" in err and "****" in err and PASSWORD not in err
    crash = sorted((lab.root / "state").glob("crash-*.log"))
    assert crash, err
    text = crash[-1].read_text()
    assert "RuntimeError" in text and PASSWORD not in text
    assert stat.S_IMODE(crash[-1].stat().st_mode) == 0o600


# --- the TUI ---------------------------------------------------------------------------------------


def screen_text(app) -> str:  # type: ignore[no-untyped-def]
    """What the terminal shows: every cell of the current screen, plus the SVG a screenshot would save."""
    strips = app.screen._compositor.render_strips()
    plain = "\n".join("".join(seg.text for seg in strip) for strip in strips)
    return plain + "\n" + app.export_screenshot()


async def test_every_screen_and_the_command_log_hide_the_password(lab: R3Lab, monkeypatch) -> None:
    from djtui.tui.app import DjtuiApp

    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    app = DjtuiApp(config=load_config(lab.config_path))
    shown: dict[str, str] = {}
    async with app.run_test(size=(160, 50)) as pilot:
        for _ in range(200):
            if app.ctx.db is not None:
                break
            await pilot.pause(0.05)
        assert app.ctx.db is not None, app.ctx.db_error
        for key in "123456":
            await pilot.press(key)
            await pilot.pause(0.3)
            await app.workers.wait_for_complete()
            await pilot.pause()
            shown[f"screen {key}"] = screen_text(app)
        await pilot.press("question_mark")
        await pilot.pause()
        shown["help"] = screen_text(app)
        await pilot.press("escape")
        await pilot.press("L")
        await pilot.pause()
        shown["command log"] = screen_text(app)
        log_rows = [e.text for e in commandlog.entries()]
        shown["notifications"] = "\n".join(n.message for n in app._notifications)
    assert any("SELECT" in t for t in log_rows)
    assert "Command log" in shown["command log"]
    assert "Sessions" in shown["screen 1"] and "Backups" in shown["screen 6"]
    leaked = [name for name, text in shown.items() if PASSWORD in text]
    assert leaked == []
    assert not [t for t in log_rows if PASSWORD in t]


async def test_connection_error_screen_hides_the_password(lab: R3Lab, monkeypatch) -> None:
    from djtui.tui.app import ConnectionErrorScreen, DjtuiApp

    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    for name, kw in (("wrong-host", {"host": "no-such-host.invalid"}),
                     ("wrong-pw", {"password_line": f'  password: "{PASSWORD}x"'})):
        cfg = lab.write_config(f"tui-{name}.yaml", **kw)
        app = DjtuiApp(config=load_config(cfg))
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(200):
                if isinstance(app.screen, ConnectionErrorScreen):
                    break
                await pilot.pause(0.05)
            assert isinstance(app.screen, ConnectionErrorScreen), name
            for _ in range(100):  # composed and painted (a busy machine may need a few frames)
                await pilot.pause(0.05)
                text = screen_text(app)
                if "Cannot reach the database" in text:
                    break
            assert "Cannot reach the database" in text
            assert PASSWORD not in text, name
            await pilot.press("c")
            await pilot.press("L")
            await pilot.pause()
            assert PASSWORD not in screen_text(app)


def test_audit_and_state_files_are_private(lab: R3Lab) -> None:
    """What djtui writes about people and actions is not world-readable (it names users and paths)."""
    audit = lab.root / "audit.jsonl"
    if not audit.exists():
        pytest.skip("the CLI test did not run first")
    for line in audit.read_text().splitlines():
        json.loads(line)
    assert stat.S_IMODE(audit.stat().st_mode) & 0o007 == 0
