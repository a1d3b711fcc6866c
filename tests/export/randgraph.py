"""Random DataJoint-shaped schemas for the cascade tests, and a brute-force row-level closure.

The closure is computed row by row in Python from first principles (a row needs the row each of
its foreign keys points at; a master row needs all its part rows), independently of the SQL the
service runs, so the two can be compared table by table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from djtui.domain.dialects import MYSQL, SqlDialect


@dataclass
class RTable:
    db: str
    name: str
    pk: list[str]
    secondary: list[str]
    fks: list[tuple[list[str], RTable, list[str]]] = field(default_factory=list)
    master: RTable | None = None
    identifying: bool = False
    rows: list[dict] = field(default_factory=list)

    @property
    def full(self) -> str:
        return f"{self.db}.{self.name}"

    @property
    def columns(self) -> list[str]:
        return self.pk + self.secondary

    def ddl(self, dialect: SqlDialect = MYSQL) -> str:
        q = dialect.ident
        cols = [f"{q(c)} int NOT NULL" for c in self.pk]
        cols += [f"{q(c)} int NULL" if c != "v" else f"{q('v')} varchar(20) NULL" for c in self.secondary]
        cols.append(f"PRIMARY KEY ({', '.join(q(c) for c in self.pk)})")
        for n, (child_cols, parent, parent_cols) in enumerate(self.fks):
            cols.append(f"CONSTRAINT {q(f'fk_{self.name}_{n}')} FOREIGN KEY ({', '.join(q(c) for c in child_cols)}) "
                        f"REFERENCES {dialect.table(parent.db, parent.name)} ({', '.join(q(c) for c in parent_cols)})")
        engine = " ENGINE=InnoDB" if dialect.name == MYSQL.name else ""
        return f"CREATE TABLE {dialect.table(self.db, self.name)} (\n  " + ",\n  ".join(cols) + f"\n){engine}"


def random_schema(rng: random.Random, dbs: list[str], n: int) -> list[RTable]:
    tables: list[RTable] = []
    for i in range(n):
        masters = [t for t in tables if t.master is None]
        roll = rng.random()
        if masters and roll < 0.25:
            parent = rng.choice(masters)
            t = RTable(parent.db, f"{parent.name}__p{i}", [*parent.pk, f"c{i}"], ["v"], master=parent)
        elif tables and roll < 0.65:
            parent = rng.choice(tables)
            t = RTable(rng.choice(dbs), f"t{i}", [*parent.pk, f"c{i}"], ["v"])
        else:
            parent = None
            t = RTable(rng.choice(dbs), f"t{i}", [f"c{i}"], ["v"])
        if parent is not None:
            t.fks.append((list(parent.pk), parent, list(parent.pk)))
            t.identifying = True
        for k in range(rng.randint(0, 2)):
            # often a renamed second reference to the primary parent: DataJoint's trace fails there
            p = parent if parent is not None and rng.random() < 0.5 else rng.choice(tables) if tables else None
            if p is None:
                continue
            cols = [f"r{i}_{k}_{c}" for c in p.pk]
            t.secondary += cols
            t.fks.append((cols, p, list(p.pk)))
        tables.append(t)
    for t in tables:
        fill_rows(rng, t)
    return tables


def fill_rows(rng: random.Random, t: RTable) -> None:
    counter = 0
    if t.identifying:
        bases = [tuple(r[c] for c in t.pk[:-1]) for r in t.fks[0][1].rows]
        keys = []
        for b in bases:
            for _ in range(rng.randint(0, 3)):
                counter += 1
                keys.append((*b, counter))
    else:
        keys = [(j,) for j in range(1, rng.randint(3, 9))]
    for key in keys:
        row = dict(zip(t.pk, key, strict=True))
        for child_cols, parent, parent_cols in t.fks[1:] if t.identifying else t.fks:
            if parent.rows and rng.random() < 0.8:
                target = rng.choice(parent.rows)
                for c, pc in zip(child_cols, parent_cols, strict=True):
                    row[c] = target[pc]
            else:
                for c in child_cols:
                    row[c] = None
        row["v"] = f"x{rng.randint(0, 99)}"
        t.rows.append(row)


def create(conn, tables: list[RTable], dbs: list[str], dialect: SqlDialect = MYSQL) -> None:
    """Declare and fill the tables (MySQL databases, or PostgreSQL schemas with ``dialect``)."""
    kind = "DATABASE" if dialect.name == MYSQL.name else "SCHEMA"
    with conn.cursor() as cur:
        for db in dbs:
            cur.execute(f"CREATE {kind} IF NOT EXISTS {dialect.ident(db)}")
        for t in tables:
            cur.execute(t.ddl(dialect))
            if t.rows:
                cols = t.columns
                cur.executemany(f"INSERT INTO {dialect.table(t.db, t.name)} ({', '.join(map(dialect.ident, cols))}) "
                                f"VALUES ({', '.join(['%s'] * len(cols))})", [[r[c] for c in cols] for r in t.rows])
    conn.commit()


def closure(tables: list[RTable], leaf_rows: dict[str, set[tuple]]) -> dict[str, set[tuple]]:
    """The smallest row set holding the leaf rows, closed under 'needs its parent' and 'master needs parts'."""
    by_name = {t.full: t for t in tables}
    index = {t.full: {tuple(r[c] for c in t.pk): r for r in t.rows} for t in tables}
    parts = {t.full: [p for p in tables if p.master is t] for t in tables}
    out: dict[str, set[tuple]] = {t.full: set() for t in tables}
    todo = [(name, key) for name, keys in leaf_rows.items() for key in keys]
    while todo:
        name, key = todo.pop()
        if key in out[name]:
            continue
        out[name].add(key)
        t = by_name[name]
        row = index[name][key]
        for child_cols, parent, parent_cols in t.fks:
            vals = [row[c] for c in child_cols]
            if None in vals:
                continue
            target = dict(zip(parent_cols, vals, strict=True))
            todo.append((parent.full, tuple(target[c] for c in parent.pk)))
        for p in parts[name]:
            for pkey in index[p.full]:
                if pkey[:len(key)] == key:
                    todo.append((p.full, pkey))
    return out
