"""Build a Spyglass-like synthetic graph: ~150 tables over 5 schemas, master/part tables, renamed FKs, ~1M rows.

``python -m bench gen_graph --port P --password-env VAR [--tables 150] [--rows 1000000]`` fills a
server; the export benchmarks call :func:`build` on a private server of their own.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from dataclasses import dataclass, field

MODULES = ("common", "lfp", "spikesorting", "position", "decoding")


@dataclass
class GTable:
    db: str
    name: str
    pk: list[str]
    fks: list[tuple[list[str], GTable]] = field(default_factory=list)  # (child columns, parent) -> parent.pk
    secondary: list[str] = field(default_factory=list)
    identifying: GTable | None = None
    nrows: int = 0
    keys: list[tuple] = field(default_factory=list)

    @property
    def full(self) -> str:
        return f"{self.db}.{self.name}"


def design(prefix: str, n_tables: int, total_rows: int, seed: int = 7, renamed: bool = True) -> list[GTable]:
    rng = random.Random(seed)
    tables: list[GTable] = []
    for i in range(n_tables):
        db = f"{prefix}{MODULES[min(i * len(MODULES) // n_tables, len(MODULES) - 1)]}"
        masters = [t for t in tables if "__" not in t.name and t.identifying is not None and len(t.pk) <= 6]
        if i < 8:  # lookups and the subject/session spine
            parent = tables[-1] if i >= 5 else None
            t = GTable(db, f"lookup{i}" if i < 5 else f"session{i}", [*(parent.pk if parent else []), f"k{i}"])
        elif masters and rng.random() < 0.3:
            parent = rng.choice(masters[-15:])
            t = GTable(parent.db, f"{parent.name}__part{i}", [*parent.pk, f"k{i}"])
        else:
            parent = rng.choice([t for t in tables[5:] if len(t.pk) <= 5][-25:])
            tier = rng.choice(("", "_", "#", "__"))
            t = GTable(db, f"{tier}step{i}", [*parent.pk, f"k{i}"])
        if parent is not None:
            t.fks.append((list(parent.pk), parent))
            t.identifying = parent
        for k in range(rng.choice((0, 0, 1, 1, 2)) if renamed else 0):
            # Spyglass's IntervalList-style renamed references, often to the primary parent's own ancestors
            other = rng.choice(tables[:max(1, len(tables))]) if tables else None
            if other is None or len(other.pk) > 3:
                continue
            cols = [f"r{i}_{k}_{c}" for c in other.pk]
            t.secondary += cols
            t.fks.append((cols, other))
        tables.append(t)
    roots = [t for t in tables if t.identifying is None]
    for t in roots:
        t.nrows = rng.randint(20, 200)
    rest = [t for t in tables if t.identifying is not None]
    budget = total_rows - sum(t.nrows for t in roots)
    weights = [rng.uniform(0.3, 1.7) for _ in rest]
    scale = budget / sum(weights)
    for t, w in zip(rest, weights, strict=True):
        t.nrows = max(1, int(w * scale))
    return tables


def ddl(t: GTable) -> str:
    cols = [f"`{c}` int NOT NULL" for c in t.pk] + [f"`{c}` int NULL" for c in t.secondary]
    cols += ["`payload` varchar(32) NULL", "`ts` datetime NULL", f"PRIMARY KEY ({', '.join(f'`{c}`' for c in t.pk)})"]
    for n, (child_cols, parent) in enumerate(t.fks):
        cols.append(f"CONSTRAINT `fk{n}_{t.name}` FOREIGN KEY ({', '.join(f'`{c}`' for c in child_cols)}) "
                    f"REFERENCES `{parent.db}`.`{parent.name}` ({', '.join(f'`{c}`' for c in parent.pk)})")
    return f"CREATE TABLE `{t.db}`.`{t.name}` (\n  " + ",\n  ".join(cols) + "\n) ENGINE=InnoDB"


def build(conn, prefix: str = "bx_", n_tables: int = 150, total_rows: int = 1_000_000, seed: int = 7,
          log=print, renamed: bool = True) -> list[GTable]:
    """Create and fill the schemas on ``conn`` (a pymysql connection); returns the design."""
    rng = random.Random(seed + 1)
    tables = design(prefix, n_tables, total_rows, seed, renamed)
    started = time.monotonic()
    with conn.cursor() as cur:
        cur.execute("SET FOREIGN_KEY_CHECKS = 0, UNIQUE_CHECKS = 0")
        for db in sorted({t.db for t in tables}):
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
            cur.execute(f"CREATE DATABASE `{db}`")
        for t in tables:
            cur.execute(ddl(t))
        for t in tables:
            parent = t.identifying
            if parent is None:
                t.keys = [(j,) for j in range(1, t.nrows + 1)]
            else:
                t.keys = [(*(parent.keys[j] if j < len(parent.keys) else rng.choice(parent.keys)), j + 1)
                          for j in range(t.nrows)]
            rows = []
            for key in t.keys:
                row = list(key)
                for _cols, other in (t.fks[1:] if t.identifying else t.fks):
                    row += list(rng.choice(other.keys)) if rng.random() < 0.7 else [None] * len(other.pk)
                row += [f"p{rng.randint(0, 10 ** 6)}", "2024-05-01 10:00:00"]
                rows.append(row)
            cols = t.pk + t.secondary + ["payload", "ts"]
            sql = (f"INSERT INTO `{t.db}`.`{t.name}` ({', '.join(f'`{c}`' for c in cols)}) "
                   f"VALUES ({', '.join(['%s'] * len(cols))})")
            for s in range(0, len(rows), 5000):
                cur.executemany(sql, rows[s:s + 5000])
        cur.execute("SET FOREIGN_KEY_CHECKS = 1, UNIQUE_CHECKS = 1")
    conn.commit()
    log(f"built {len(tables)} tables, {sum(t.nrows for t in tables)} rows in {time.monotonic() - started:.1f} s")
    return tables


def main(argv: list[str]) -> int:
    import pymysql

    ap = argparse.ArgumentParser(prog="python -m bench gen_graph", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="djadmin")
    ap.add_argument("--password-env", default="DJ_PASS", help="environment variable holding the password")
    ap.add_argument("--prefix", default="bx_")
    ap.add_argument("--tables", type=int, default=150)
    ap.add_argument("--rows", type=int, default=1_000_000)
    a = ap.parse_args(argv)
    conn = pymysql.connect(host=a.host, port=a.port, user=a.user, password=os.environ.get(a.password_env, ""))
    try:
        build(conn, a.prefix, a.tables, a.rows)
    finally:
        conn.close()
    return 0
