"""The layering is enforced, not hoped for.

domain/ and services/ never import Textual; domain/ does no I/O; imports run down the layers only
(errors and config at the bottom, then domain, services, the UI and the tools, the CLI on top); no
import cycles, counting imports inside functions and under TYPE_CHECKING; no module holds more than
600 lines of code and no function more than 80.
"""

from __future__ import annotations

import ast
import io
import tokenize
from functools import cache
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "djtui"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


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


# ---------------------------------------------------------------------------
# the import graph of every djtui module


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The djtui module an import names: itself, or the package it lies in (`djtui.config.Secret` ->
    `djtui.config`)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the package that holds this module
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        # `from pkg import sub` imports the module pkg.sub when there is one, else a name of pkg
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    out = {_resolve(n, modules) for n in names if n == "djtui" or n.startswith("djtui.")}
    return {t for t in out if t is not None and t != module}


@cache
def _graph() -> dict[str, frozenset[str]]:
    """module -> the djtui modules it imports anywhere (top level, in functions, under TYPE_CHECKING)."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _targets(module, path, node, modules)
        graph[module] = frozenset(edges)
    graph["djtui.cli"] |= {f"djtui.cli.{name}" for name in _command_modules()}
    return graph


def _command_modules() -> tuple[str, ...]:
    """The command modules djtui.cli imports by name (importlib), read from its COMMAND_MODULES."""
    tree = ast.parse((PKG / "cli" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "COMMAND_MODULES" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("djtui/cli/__init__.py has no COMMAND_MODULES")


def _cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_import_graph_sees_function_level_and_relative_imports():
    graph = _graph()
    assert "djtui.tui.app" in graph["djtui.cli.app"]  # imported inside the function that runs the app
    assert "djtui.cli.sessions" in graph["djtui.cli"]  # by name, from COMMAND_MODULES
    assert "djtui.config.loader" in graph["djtui.config"]
    assert _cycles({"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}) \
        == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = _cycles(_graph())
    detail = {" <-> ".join(c): {m: sorted(set(_graph()[m]) & set(c)) for m in c} for c in cycles}
    assert detail == {}


# Where each part of djtui sits, and which parts it may import. The tools sit beside the UI: `demo` builds
# the demo lab and `labschema` declares its tables (the CLI runs them; tests and bench use them); nothing
# below the CLI imports them. `djtui` (the package, which hands out `record_export` for analysis code)
# and `__main__` are the entry points on top.
LAYERS: dict[str, set[str]] = {
    "errors": set(),
    "config": {"errors"},
    "domain": {"errors", "config"},
    "services": {"errors", "config", "domain"},
    "tools": {"errors", "config", "domain", "services"},
    "tui": {"errors", "config", "domain", "services"},
    "cli": {"errors", "config", "domain", "services", "tools", "tui"},
    "entry": {"errors", "config", "domain", "services", "tools", "tui", "cli"},
}
TOOLS = {"djtui.demo", "djtui.labschema"}


def _layer(module: str) -> str:
    if module in ("djtui", "djtui.__main__"):
        return "entry"
    if module in TOOLS or module.startswith(tuple(t + "." for t in TOOLS)):
        return "tools"
    return module.split(".")[1]


def test_every_module_has_a_layer():
    assert {m for m in _graph() if _layer(m) not in LAYERS} == set()


def test_imports_never_run_up_the_layers():
    bad = {}
    for module, targets in _graph().items():
        layer = _layer(module)
        up = sorted(t for t in targets if _layer(t) != layer and _layer(t) not in LAYERS[layer])
        if up:
            bad[f"{module} ({layer})"] = [f"{t} ({_layer(t)})" for t in up]
    assert bad == {}


def test_each_package_says_what_it_holds():
    silent = [str(p.relative_to(PKG.parent)) for p in sorted(PKG.rglob("__init__.py"))
              if not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))]
    assert silent == []


# ---------------------------------------------------------------------------
# sizes


def _code_lines(text: str) -> set[int]:
    """The lines that hold code: not blank, not only a comment (docstrings are code)."""
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                        tokenize.ENDMARKER):
            continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def test_code_lines_count_docstrings_but_not_comments_or_blanks():
    text = '"""Doc\n\nstring."""\n\n# a comment\nx = 1  # trailing\n\n\ndef f():\n    return (1,\n\n            2)\n'
    assert sorted(_code_lines(text)) == [1, 2, 3, 6, 9, 10, 12]  # not the blank line inside ( )


def _sizes() -> tuple[dict[str, int], dict[str, int]]:
    big_modules, big_functions = {}, {}
    for p in sorted(PKG.rglob("*.py")):
        text = p.read_text(encoding="utf-8")
        code = _code_lines(text)
        rel = str(p.relative_to(PKG.parent))
        if len(code) > MAX_MODULE_LINES:
            big_modules[rel] = len(code)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                n = len({i for i in code if start <= i <= (node.end_lineno or node.lineno)})
                if n > MAX_FUNCTION_LINES:
                    big_functions[f"{rel}:{node.lineno} {node.name}"] = n
    return big_modules, big_functions


def test_no_module_over_600_lines_of_code():
    assert _sizes()[0] == {}


def test_no_function_over_80_lines_of_code():
    assert _sizes()[1] == {}


# ---------------------------------------------------------------------------
# the app's context is typed


def _is_ctx(node: ast.expr) -> bool:
    """``ctx`` or ``<anything>.ctx``: the app's context as screens, services and the app name it."""
    return (isinstance(node, ast.Name) and node.id == "ctx") or (isinstance(node, ast.Attribute) and node.attr == "ctx")


def _ctx_writes(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = [t for target in node.targets for t in (target.elts if isinstance(target, ast.Tuple)
                                                               else [target])]
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr" and node.args \
                and _is_ctx(node.args[0]):
            name = node.args[1].value if isinstance(node.args[1], ast.Constant) else "<computed>"
            out.append((node.lineno, str(name)))
        out += [(t.lineno, t.attr) for t in targets if isinstance(t, ast.Attribute) and _is_ctx(t.value)]
    return out


def test_nothing_sets_undeclared_attributes_on_the_app_context():
    from dataclasses import fields

    from djtui.tui.context import AppContext

    declared = {f.name for f in fields(AppContext)}
    bad = []
    for p in sorted(PKG.rglob("*.py")):
        if p.parts[-2] == "cli":  # the CLI's own Context (cli/context.py) is another class
            continue
        for line, name in _ctx_writes(ast.parse(p.read_text(encoding="utf-8"))):
            if name not in declared:
                bad.append(f"{p.relative_to(PKG.parent)}:{line} ctx.{name}")
    assert bad == []
    assert _ctx_writes(ast.parse("ctx.x = 1\nself.app.ctx.y += 2\nsetattr(ctx, 'z', 3)\nother.w = 4\n")) \
        == [(1, "x"), (2, "y"), (3, "z")]
