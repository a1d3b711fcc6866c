"""`djtui export plan|write|verify`: what a vertical slice of the database holds, write it, prove it loads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from djtui.cli.context import Context
from djtui.cli.output import emit_json, render_table
from djtui.domain.units import plural
from djtui.errors import OperationFailed, UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export the rows that leaves need, with all their ancestors")
    esub = p.add_subparsers(dest="export_command", metavar="ACTION", required=True)

    def leaves_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--leaf", action="append", default=[], metavar="DB.TABLE:RESTRICTION",
                       help="a table (SQL name, or DataJoint class: common_ephys.LFPBand, db.Master.Part) and a "
                            "SQL condition (or JSON key values); repeat for more leaves")
        q.add_argument("--leaves", metavar="FILE", help="leaves recorded with djtui.record_export (JSON)")
        q.add_argument("--paper", metavar="ID", help="leaves Spyglass logged for this paper (export_selection)")
        q.add_argument("--analysis", metavar="ID", help="with --paper: only this analysis")
        q.add_argument("--export-log", default="common_usage", metavar="SCHEMA",
                       help="schema of Spyglass's export log (default: common_usage)")
        q.add_argument("--prefix", action="append", default=None, metavar="PREFIX",
                       help="load only schemas with this prefix (default: export.schema_prefixes, else all)")
        q.add_argument("--statement-timeout", type=float, default=None, metavar="SECONDS",
                       help="stop a leaf's restriction that runs longer than this; 0: no limit "
                            "(default: export.statement_timeout_s, 300)")

    plan = esub.add_parser("plan", help="per table: where its rows come from and how many")
    leaves_args(plan)
    plan.add_argument("--json", action="store_true", help="print a JSON list of {table, rows, restriction}")
    plan.set_defaults(func=run_plan)

    write = esub.add_parser("write", help="write the export")
    leaves_args(write)
    write.add_argument("--format", choices=("sql", "script", "docker"), default="sql",
                       help="sql: one SQL file djtui writes; script: export.sh running mysqldump per key chunk "
                            "(PostgreSQL: pg_dump for the tables, psql COPY for the rows); docker: a compose bundle "
                            "that loads the SQL once (MySQL 8.0; PostgreSQL: a postgres:15 service)")
    write.add_argument("--out", metavar="DIR", help="output directory (default: export.out_dir)")
    write.add_argument("--strip-charset", action=argparse.BooleanOptionalAction, default=None,
                       help="remove the tables' and databases' default CHARSET / COLLATE (columns keep theirs); "
                            "default: export.strip_charset for sql, on for docker (--no-strip-charset keeps them)")
    write.add_argument("--json", action="store_true")
    write.set_defaults(func=run_write)

    files = esub.add_parser("files", help="the stored objects the exported rows reference, with sizes")
    leaves_args(files)
    files.add_argument("--json", action="store_true")
    files.set_defaults(func=run_files)

    verify = esub.add_parser("verify", help="load an export into a fresh private server and compare with its manifest")
    verify.add_argument("dir", metavar="DIR")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=run_verify)


def _leaves(ctx: Context) -> list:
    from djtui.services.export import parse_leaf

    if ctx.args.analysis is not None and not ctx.args.paper:
        raise UserError("--analysis picks one analysis of a paper", where="--analysis",
                        hint="add --paper ID (the paper the analysis belongs to)")
    leaves = [parse_leaf(text, dialect=ctx.db.dialect) for text in ctx.args.leaf]
    if ctx.args.leaves:
        from djtui.services.export.recording import read_leaves
        leaves += read_leaves(Path(ctx.args.leaves))
    if ctx.args.paper:
        from djtui.services.export import paper_leaves
        leaves += paper_leaves(ctx.db, ctx.args.paper, ctx.args.analysis, ctx.args.export_log)
    if not leaves:
        raise UserError("no leaves given", where="export",
                        hint="add --leaf 'db.table:RESTRICTION' (or --leaves FILE, or --paper ID)")
    return leaves


def _prefixes(ctx: Context) -> tuple[str, ...]:
    return tuple(ctx.args.prefix) if ctx.args.prefix else ctx.config.export.schema_prefixes


def _timeout(ctx: Context) -> float:
    value = ctx.args.statement_timeout
    if value is None:
        return ctx.config.export.statement_timeout_s
    if not 0 <= value <= 31_536_000:  # also NaN and inf; the server's maximum is a year
        raise UserError(f"{value} is not a time limit", where="--statement-timeout",
                        hint="give seconds, from 0 (no limit) up to 31536000")
    return value


def _plan(ctx: Context):  # -> ExportPlan
    """The export the arguments describe: graph loaded, leaves resolved (the same call as the screen's)."""
    from djtui.services.export import prepare_export

    timeout = _timeout(ctx)
    return prepare_export(ctx.db, _leaves(ctx), _prefixes(ctx), statement_timeout=timeout)


def run_plan(ctx: Context) -> int:
    from djtui.services.export import count_plan

    plan = count_plan(ctx.db, _plan(ctx))
    if ctx.json:
        emit_json(plan.to_json())
    else:
        print(render_table(("table", "rows", "from"), [(c.table, c.rows, "; ".join(c.sources)) for c in plan.tables],
                           align="lrl"))
        print(f"\n{plan.confirmation_text()}")
        for warning in plan.warnings:
            print(f"djtui: warning: {warning}", file=sys.stderr)
    return 0


def run_write(ctx: Context) -> int:
    from djtui.services.export import write_plan

    cfg = ctx.config.export
    out = Path(ctx.args.out) if ctx.args.out else cfg.out_dir
    if out is None:
        raise UserError("no output directory", where="export write", hint="pass --out DIR or set export.out_dir")
    ctx.require_writable("export write")  # like a dump, an export writes files: read-only means none
    strip = ctx.args.strip_charset
    if strip is None and ctx.args.format == "sql":
        strip = cfg.strip_charset
    plan = _plan(ctx)
    manifest = write_plan(ctx.db, plan, out, strip=strip, batch_rows=cfg.insert_batch_rows, fmt=ctx.args.format,
                          stores=ctx.config.stores,
                          progress=None if ctx.json else (lambda t, n: print(f"  {t}: {n} rows", file=sys.stderr)))
    for warning in manifest.get("warnings", []):
        print(f"djtui: warning: {warning}", file=sys.stderr)
    if ctx.json:
        emit_json({"out": str(out), **manifest})
        return 0
    total = sum(t["rows"] for t in manifest["tables"])
    took = f" in {manifest['seconds']} s" if "seconds" in manifest else ""
    main = {"script": "export.sh", "docker": "docker bundle"}.get(manifest["format"], manifest["files"][0])
    print(f"wrote {out} ({main}): {plural(len(manifest['tables']), 'table')}, {plural(total, 'row')}{took}")
    sf = manifest.get("stored_files")
    if sf:
        more = "".join(f", {sf[k]} {label}" for k, label in (("missing", "MISSING"), ("not_checked", "not checked"))
                       if sf[k])
        print(f"stored files the rows reference: {sf['count']} ({sf['bytes']} bytes{more}), "
              f"listed in {out / sf['list']}")
    if manifest["format"] == "script":
        pg = manifest.get("backend") == "postgresql"
        cred = "PGPASSFILE  (a .pgpass file" if pg else "CLIENT.CNF  (an option file"
        print(f"next: {out / 'export.sh'} {cred}, mode 0600), then djtui export verify {out}")
    return 0


def run_files(ctx: Context) -> int:
    from djtui.services.export import count_plan, problem_notes

    found = list(count_plan(ctx.db, _plan(ctx), ctx.config.stores).files or ())
    total = sum(f.size or 0 for f in found)
    missing = [f for f in found if f.exists is False]
    if ctx.json:
        emit_json({"files": [f.to_json() for f in found], "total_bytes": total, "missing": len(missing)})
    else:
        notes = problem_notes(found)
        print(render_table(("store", "path", "bytes", "exists", "table"),
                           [(f.store, f.path, f.size, f.mark(notes), f.table) for f in found],
                           align="llrll"))
        unknown = sum(1 for f in found if f.exists is None)
        print(f"\n{len(found)} files, {total} bytes, {len(missing)} missing"
              + (f", {unknown} not checked" if unknown else ""))
        if notes:
            print("\nproblems:")
            for text, n in notes.items():
                print(f"  [{n}] {text}")
    return 1 if missing else 0


def run_verify(ctx: Context) -> int:
    from djtui.services.export import verify_export

    checks = verify_export(Path(ctx.args.dir))
    bad = [c for c in checks if not c.ok]
    if ctx.json:
        emit_json({"ok": not bad, "tables": [dict(c.__dict__, ok=c.ok) for c in checks]})
    else:
        print(render_table(("", "table", "rows", "expected", "checksum"),
                           [("✓" if c.ok else "✗", c.table, "missing" if c.rows is None else c.rows,
                             c.expected_rows, "match" if c.checksum == c.expected_checksum else "DIFFERS")
                            for c in checks], align="llrrl"))
    if bad:
        raise OperationFailed(f"{len(bad)} table(s) differ from the manifest: "
                              + ", ".join(c.table for c in bad[:5]))
    if not ctx.json:
        print(f"\nverified: {len(checks)} tables match the manifest")
    return 0
