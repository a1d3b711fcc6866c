"""The layering is enforced: domain/ and services/ never import Textual; domain/ does no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "djtui"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _files(sub: str) -> list[Path]:
    return sorted((PKG / sub).rglob("*.py"))


@pytest.mark.parametrize("sub", ["domain", "services"])
def test_no_textual_below_the_ui(sub):
    offenders = {str(p.relative_to(PKG)): sorted(m for m in _imports(p) if m.split(".")[0] in ("textual", "rich"))
                 for p in _files(sub)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_domain_is_pure():
    io_modules = {"pymysql", "subprocess", "socket", "asyncio", "sqlite3", "boto3", "shutil", "djtui.services"}
    bad = {}
    for p in _files("domain"):
        hits = sorted(m for m in _imports(p) if m in io_modules or m.split(".")[0] in io_modules)
        if hits:
            bad[str(p.relative_to(PKG))] = hits
    assert bad == {}


def test_services_and_domain_do_not_import_the_ui_or_cli():
    bad = {}
    for sub in ("domain", "services"):
        for p in _files(sub):
            hits = sorted(m for m in _imports(p) if m.startswith(("djtui.tui", "djtui.cli")))
            if hits:
                bad[str(p.relative_to(PKG))] = hits
    assert bad == {}


def test_screens_do_not_build_sql_or_touch_the_database_driver():
    bad = {}
    for p in _files("tui"):
        hits = sorted(m for m in _imports(p) if m.split(".")[0] in ("pymysql", "sqlite3", "subprocess"))
        if hits:
            bad[str(p.relative_to(PKG))] = hits
    assert bad == {}
