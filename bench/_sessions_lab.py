"""Shared by the sessions benchmarks: a private server and a generated lab (bench/gen_sessions.py)."""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench import gen_sessions
from djtui.services.servers.mariadb import PrivateServer


def db_section(server: PrivateServer) -> dict:
    return {"host": "127.0.0.1", "port": server.port, "user": "djadmin", "password": server.password.reveal(),
            "use_datajoint_config": False}


def build(out: Path, *, sessions: int, files: int, server: PrivateServer | None,
          states: str = "full=0.7,partial=0.2,none=0.1", size: int = 4096, sparse: bool = True,
          same_layout: bool = False) -> tuple[Path, list[dict]]:
    """Generate the trees (and the database rows when a server is given); returns the config path."""
    manifest = gen_sessions.generate(out, sessions=sessions, files=files, shares=gen_sessions.parse_states(states),
                                     size=size, size_max=0, sparse=sparse, seed=1, inverted=not same_layout,
                                     end=dt.date(2025, 6, 30), imported=0.9)
    database = db_section(server) if server else {}
    cfg = gen_sessions.write_config(out, inverted=not same_layout, database=database, prefix="bench_")
    if server is not None:
        gen_sessions.insert_rows(cfg, manifest, "bench_", files)
    data = yaml.safe_load(cfg.read_text())
    data["sessions"]["mount_timeout"] = 30
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    return cfg, manifest


def timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
