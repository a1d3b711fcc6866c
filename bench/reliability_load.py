"""Keypress-to-repaint under load: 50k sessions, 1M orphans, 8 verify jobs, a 500-table graph.

The real app runs headless (Textual's test driver) on a private server; each case waits until its
screen holds its data, then presses keys and times each press from the key until the next frame the
app hands to its driver (a hook on ``App._display``, as in bench/sessions_screen.py; the driver's own
idle waits are not counted). Target: median under 100 ms for each case (issue #7, Load).

    python -m bench reliability_load [--sessions 50000] [--orphans 1000000] [--tables 500] [--presses 60]
                                     [--only sessions,orphans,transfers,export]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml

from bench._sessions_lab import table

CASES = ("sessions", "orphans", "transfers", "export")


class Frames:
    """Time stamps of the frames the app hands to its (headless) driver."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.stamps: list[float] = []
        original = app._display

        def spy(screen, renderable) -> None:  # type: ignore[no-untyped-def]
            if renderable is not None:
                self.stamps.append(time.perf_counter())
            original(screen, renderable)

        app._display = spy
        self.by_key: list[tuple[str, float]] = []

    async def press(self, pilot, key: str) -> float | None:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        await pilot.press(key)
        await pilot.pause()
        after = [s for s in self.stamps if s > t]
        if not after:
            return None
        self.by_key.append((key, after[0] - t))
        return after[0] - t

    def slowest(self, n: int = 3) -> str:
        worst = sorted(self.by_key, key=lambda kv: -kv[1])[:n]
        return ", ".join(f"{k} {v * 1000:.0f}" for k, v in worst)


async def press_all(frames: Frames, pilot, keys: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for k in keys:
        lat = await frames.press(pilot, k)
        if lat is not None:
            out.append(lat)
    return out


async def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        await asyncio.sleep(0.02)


def browse_keys(n: int) -> list[str]:
    keys = []
    for i in range(n):
        keys.append("pagedown" if i % 10 == 9 else ("end" if i % 20 == 19 else "down"))
    keys[n // 2] = "home"
    return keys


# --- the cases -------------------------------------------------------------------------------


async def case_sessions(cfg_path: Path, presses: int) -> tuple[list[float], str]:
    from textual.widgets import DataTable

    from djtui.config import load_config
    from djtui.tui.app import DjtuiApp

    app = DjtuiApp(config=load_config(cfg_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        t0 = time.perf_counter()
        await asyncio.wait_for(screen.loaded.wait(), 900)
        await pilot.pause()
        loaded = time.perf_counter() - t0
        rows = screen.query_one(DataTable).row_count
        frames = Frames(app)
        lat = await press_all(frames, pilot, browse_keys(presses))
        # typing in the filter narrows 50k rows: each key re-filters
        await pilot.press("slash")
        lat_f = await press_all(frames, pilot, list("p12"))
        await pilot.press("escape")
    return lat + lat_f, (f"{rows} rows, loaded in {loaded:.1f} s; keys: down/pagedown/end/home, then filter "
                         f"'p12'; slowest ms: {frames.slowest()}")


async def case_orphans(cfg_path: Path, n: int, presses: int) -> tuple[list[float], str]:
    from djtui.config import load_config
    from djtui.domain import stores as ds
    from djtui.tui.app import DjtuiApp
    from djtui.tui.widgets.orphans_list import OrphanList

    items = [ds.OrphanItem("external:lab:main", ds.UNTRACKED_OBJECT, path=f"lab/{i % 256:02x}/{i:030x}",
                           size=i % 5000, mtime=0.0) for i in range(n)]
    app = DjtuiApp(config=load_config(cfg_path), connect=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        w = app.screen.query_one(OrphanList)
        t0 = time.perf_counter()
        w.set_items(items)
        w.focus()
        await pilot.pause()
        first = time.perf_counter() - t0
        frames = Frames(app)
        keys = browse_keys(presses) + ["space"] * 5
        lat = await press_all(frames, pilot, keys)
    return lat, (f"{n} items in the screen's OrphanList, first paint {first:.2f} s; down/pagedown/end/home/space; "
                 f"slowest ms: {frames.slowest()}")


async def case_transfers(cfg_path: Path, manifest: list[dict], presses: int) -> tuple[list[float], str]:
    from djtui.config import load_config
    from djtui.domain.sessions import session_key
    from djtui.services.transfer import get_job_queue
    from djtui.tui.app import DjtuiApp

    app = DjtuiApp(config=load_config(cfg_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.ctx.db is not None, 60, "the database")
        await pilot.press("2")
        await pilot.pause()
        q = get_job_queue(app.ctx)
        dest = q.service.destinations[0].name
        full = [m for m in manifest if m["backup"] == "full"][:8]
        jobs = [q.submit("verify", session_key(m["participant_id"], m["session_date"]), dest, checksum=True)
                for m in full]
        await until(lambda: any(j.state == "running" for j in jobs), 60, "a running job")
        frames = Frames(app)
        lat = []
        busy_presses = 0
        for i in range(max(presses, 400)):
            k = "down" if i % 2 == 0 else "up"
            active = any(j.active for j in jobs)
            if not active and i >= presses:
                break
            v = await frames.press(pilot, k)
            if v is not None and active:
                lat.append(v)
                busy_presses += 1
            await asyncio.sleep(0.03)
        done = sum(j.state == "done" for j in jobs)
        for j in jobs:
            q.cancel(j)
        await q.wait(jobs)
    return lat, (f"8 verify jobs (checksum) of {full[0]['files'] if full else '?'} files each submitted; "
                 f"{busy_presses} presses while jobs ran, {done} done at the end (the queue runs one at a time); "
                 f"slowest ms: {frames.slowest()}")


async def case_export(cfg_path: Path, presses: int) -> tuple[list[float], str]:
    from textual.widgets import OptionList

    from djtui.config import load_config
    from djtui.tui.app import DjtuiApp

    app = DjtuiApp(config=load_config(cfg_path))
    async with app.run_test(size=(140, 45)) as pilot:
        await until(lambda: app.ctx.db is not None, 60, "the database")
        await pilot.press("4")
        screen = app.screen
        await until(lambda: screen.graph is not None, 300, "the graph")
        await pilot.pause()
        opts = screen.query_one("#export-tables", OptionList)
        nodes = screen.graph.number_of_nodes()
        opts.focus()
        await pilot.pause()
        frames = Frames(app)
        lat = await press_all(frames, pilot, browse_keys(presses))
        await pilot.press("slash")
        lat += await press_all(frames, pilot, list("t01"))
    return lat, (f"{nodes} tables, {screen.graph.number_of_edges()} foreign keys; moving through the table list "
                 f"(each move redraws the FK tree), then search 't01'; slowest ms: {frames.slowest()}")


# --- setup -------------------------------------------------------------------------------------


def build_sessions(work: Path, server, n: int, files: int) -> tuple[Path, list[dict]]:  # type: ignore[no-untyped-def]
    from bench._sessions_lab import build

    return build(work, sessions=n, files=files, server=server)


def verify_lab(work: Path, server, files: int, size: int) -> tuple[Path, list[dict]]:  # type: ignore[no-untyped-def]
    """Eight fully backed-up sessions of ``files`` sparse files each (no database rows: verify reads files only).

    Sparse files cost no disk, yet every byte is read and hashed: the jobs keep both cores busy for a while.
    """
    import datetime as dt

    from bench import gen_sessions
    from bench._sessions_lab import db_section
    manifest = gen_sessions.generate(work, sessions=8, files=files, shares={"full": 1.0}, size=size, size_max=0,
                                     sparse=True, seed=3, inverted=True, end=dt.date(2025, 6, 30), imported=0.0)
    cfg = gen_sessions.write_config(work, inverted=True, database=db_section(server), prefix="vbench_")
    return cfg, manifest


def orphans_config(work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "djtui.yaml"
    cfg.write_text(yaml.safe_dump({"database": {"use_datajoint_config": False}, "state_dir": str(work / "state")}))
    return cfg


def export_config(work: Path, server, prefix: str) -> Path:  # type: ignore[no-untyped-def]
    from bench._sessions_lab import db_section

    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "djtui.yaml"
    cfg.write_text(yaml.safe_dump({"database": db_section(server), "state_dir": str(work / "state"),
                                   "export": {"schema_prefixes": [prefix]}}))
    cfg.chmod(0o600)
    return cfg


def summarize(name: str, lat: list[float], note: str) -> tuple[str, ...]:
    if not lat:
        return (name, "0", "-", "-", "-", "no frame seen", note)
    ms = sorted(x * 1000 for x in lat)
    med = statistics.median(ms)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return (name, str(len(ms)), f"{med:.1f}", f"{p95:.1f}", f"{ms[-1]:.1f}", "met" if med < 100 else "NOT met", note)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench reliability_load", description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=50_000)
    ap.add_argument("--session-files", type=int, default=2)
    ap.add_argument("--verify-files", type=int, default=300, help="files per session of the verify jobs")
    ap.add_argument("--verify-size", type=int, default=64 << 20, help="bytes per file of the verify jobs (sparse)")
    ap.add_argument("--orphans", type=int, default=1_000_000)
    ap.add_argument("--tables", type=int, default=500)
    ap.add_argument("--rows", type=int, default=100_000, help="rows of the 500-table graph")
    ap.add_argument("--presses", type=int, default=60)
    ap.add_argument("--only", default=",".join(CASES))
    ap.add_argument("--dir", type=Path, help="keep the generated data here")
    a = ap.parse_args(argv)
    wanted = [c.strip() for c in a.only.split(",") if c.strip()]
    from djtui.devserver import PrivateServer

    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-rel-load-"))
    server = PrivateServer(work / "server", buffer_pool_mb=256)
    server.start()
    rows: list[tuple[str, ...]] = [("case", "presses", "median ms", "p95 ms", "max ms", "< 100 ms", "what")]
    runs: list[tuple[str, Callable[[], Awaitable[tuple[list[float], str]]]]] = []
    try:
        if "sessions" in wanted:
            t = time.perf_counter()
            n = a.sessions
            cfg, _ = build_sessions(work / "lab", server, n, a.session_files)
            print(f"generated {n} sessions in {time.perf_counter() - t:.1f} s", flush=True)
            runs.append((f"Sessions, {n} sessions", lambda: case_sessions(cfg, a.presses)))
        if "transfers" in wanted:
            vcfg, vmanifest = verify_lab(work / "vlab", server, a.verify_files, a.verify_size)
            runs.append(("Transfers, 8 verify jobs", lambda: case_transfers(vcfg, vmanifest, a.presses)))
        if "orphans" in wanted:
            ocfg = orphans_config(work / "olab")
            runs.append((f"Orphans list, {a.orphans} rows", lambda: case_orphans(ocfg, a.orphans, a.presses)))
        if "export" in wanted:
            from bench import gen_graph
            t = time.perf_counter()
            conn = server.connect()
            try:
                gen_graph.build(conn, "rl_", a.tables, a.rows, log=lambda m: print(m, flush=True))
            finally:
                conn.close()
            ecfg = export_config(work / "elab", server, "rl_")
            print(f"generated the graph in {time.perf_counter() - t:.1f} s", flush=True)
            runs.append((f"Export, {a.tables} tables", lambda: case_export(ecfg, a.presses)))
        for name, fn in runs:
            print(f"running: {name}", flush=True)
            lat, note = asyncio.run(fn())
            rows.append(summarize(name, lat, note))
            print(" | ".join(rows[-1]), flush=True)
    finally:
        server.stop()
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(rows))
    print("\nmachine: 2 cores, shared with other jobs while measuring; repeat and take medians.")
    return 0 if all(r[5] == "met" for r in rows[1:]) else 1
