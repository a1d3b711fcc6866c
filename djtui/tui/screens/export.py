"""The Export screen: pick tables, see their foreign keys, add leaves, watch the counts, write.

Everything that reads the server or writes files is a service call in a worker thread; the
screen only shows. Restrictions are checked as they are typed: a lexical check at once, then
(after a short pause) a read-only count on the server.
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from djtui.domain.cascade import Leaf
from djtui.domain.djnames import TableName, display_name, table_names
from djtui.errors import OperationFailed, UserError
from djtui.tui.screens.base import DjtuiScreen
from djtui.tui.widgets.export_checks import Check, RestrictionChecks
from djtui.tui.widgets.export_load import ExportLoadDialog, LoadChoice
from djtui.tui.widgets.export_names import FittedName
from djtui.tui.widgets.export_results import fill_counts, fill_files
from djtui.tui.widgets.export_tree import ForeignKeyTree
from djtui.tui.widgets.export_write import ExportWriteDialog, WriteChoice
from djtui.tui.widgets.fields import RestrictionInput, TableSearchInput
from djtui.tui.widgets.footer_fit import fit_footer


class ExportScreen(DjtuiScreen):
    SCREEN_TITLE = "Export"
    AUTO_FOCUS = "#export-tables"  # not an Input: the number keys must still switch screens

    # below 110 columns the picker and the tree share the left half (stacked): names do not wrap and
    # the rows column of the counts stays on screen at 80x24
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    DEFAULT_CSS = """
    ExportScreen #export-cols { height: 1fr; }
    ExportScreen #export-left { width: 2fr; layout: horizontal; }
    ExportScreen #export-pick { width: 2fr; min-width: 24; max-width: 46; }
    ExportScreen #export-graph { width: 3fr; }
    ExportScreen #export-leaves-col { width: 1fr; min-width: 40; max-width: 64; }
    ExportScreen.-narrow #export-left { width: 1fr; min-width: 20; layout: vertical; }
    ExportScreen.-narrow #export-pick { width: 1fr; min-width: 0; max-width: 100%; height: 1fr; }
    ExportScreen.-narrow #export-graph { width: 1fr; height: 1fr; }
    ExportScreen.-narrow #export-leaves-col { min-width: 20; max-width: 100%; }
    ExportScreen OptionList { height: 1fr; }
    ExportScreen Tree { height: 1fr; }
    ExportScreen #export-leaves { height: 6; }
    ExportScreen.-narrow #export-leaves { height: 4; }
    ExportScreen #export-counts { height: 1fr; }
    ExportScreen #export-files { height: 1fr; display: none; }
    ExportScreen #export-file-problems { height: auto; max-height: 8; color: $warning; display: none; }
    ExportScreen.show-files #export-counts { display: none; }
    ExportScreen.show-files #export-files { display: block; }
    ExportScreen.show-files #export-file-problems { display: block; }
    ExportScreen .heading { text-style: bold; color: $accent; }
    ExportScreen #export-restriction-status { height: auto; max-height: 5; }
    ExportScreen #export-restriction-status.warn { color: $warning; }
    ExportScreen #export-restriction-status.bad { color: $error; }
    ExportScreen #export-restriction-status.good { color: $success; }
    ExportScreen #export-summary { height: auto; max-height: 4; }
    ExportScreen #export-progress { display: none; }
    ExportScreen #export-progress.busy { display: block; }
    """

    BINDINGS = [
        # `/` is in the search field's placeholder and in help (?): the footer keeps its room for the rest
        Binding("/", "focus_search", "Search", show=False, id="export.search"),
        Binding("r", "focus_restriction", "Restrict", id="export.restriction"),
        Binding("f", "toggle_files", "Files", id="export.files"),
        Binding("x", "remove_leaf", "Remove", id="export.remove"),
        Binding("w", "write", "Write", id="export.write"),
        Binding("m", "save_graph", "Save graph", id="export.mermaid"),
        Binding("v", "verify_export", "Verify", id="export.verify"),
        Binding("l", "load_leaves", "Load leaves", show=False, id="export.load"),
        Binding("i", "toggle_internal", "Internal tables", show=False, id="export.internal"),
    ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.graph: Any = None  # the foreign-key graph (networkx), loaded in a worker
        self.leaves: list[Leaf] = []
        self.selected: str | None = None
        self.plan_tables: tuple[str, ...] = ()
        self._check_timer: Timer | None = None
        self._known_bad: dict[Leaf, str] = {}  # server-checked restrictions that failed
        self._known_good: dict[Leaf, Check] = {}  # ... and those that passed
        self._leaf_checks: dict[Leaf, Check] = {}  # each leaf's own rows (the Leaves table's column)
        self.files: list = []  # the NeededFile list of the last count
        self.last_export: Path | None = None  # where `w` last wrote: `m` saves the graph next to it
        self.summary = ""
        self.names: list[TableName] = []  # every table: class name, SQL name, internal or not
        self.show_internal = False  # DataJoint's ~log, ~jobs, ~external_* tables: listed only on `i`
        self._tree_pending = False  # a tree redraw is scheduled after the next refresh
        self.checks = RestrictionChecks()  # at most one on the server at a time; a newer one stops the older

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="export-cols"):
            with Container(id="export-left"):
                with Vertical(id="export-pick"):
                    yield Label("Tables", classes="heading")
                    yield TableSearchInput(placeholder="search tables  (/)", id="export-search")
                    yield OptionList(id="export-tables")
                with Vertical(id="export-graph"):
                    yield Label("Foreign keys (Enter expands)", classes="heading")
                    yield ForeignKeyTree("(pick a table)", id="export-tree")
            with Vertical(id="export-leaves-col"):
                yield Label("Leaves", classes="heading")
                yield RestrictionInput(placeholder="restriction, Enter adds a leaf (r)", id="export-restriction")
                yield Static("", id="export-restriction-status")
                yield DataTable(id="export-leaves", cursor_type="row")
                yield Label("Rows per table  (f: files)", classes="heading", id="export-lower-heading")
                yield DataTable(id="export-counts", cursor_type="row")
                yield DataTable(id="export-files", cursor_type="row")
                yield Static("", id="export-file-problems")
                yield Static("loading the graph…", id="export-summary")
                yield ProgressBar(id="export-progress", show_eta=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#export-leaves", DataTable).add_columns("#", "rows", "table", "restriction")
        self.query_one("#export-counts", DataTable).add_columns("rows", "table", "from")  # the number first
        self.query_one("#export-files", DataTable).add_columns("exists", "bytes", "store", "path", "table")
        self.query_one("#export-tree", ForeignKeyTree).guide_depth = 2  # deep ancestor chains keep their labels in view
        self.query_one(Footer).compact = True  # the main keys, Help and Quit fit in 80 columns
        self._fit()

    def on_resize(self) -> None:
        self._fit()
        self.call_after_refresh(self.refresh_bindings)  # the footer's keys follow the width (active_bindings)

    @property
    def active_bindings(self):  # type: ignore[override]
        """Every key the footer has room for, whole (at 80 columns Save graph is in help ? and the palette);
        Remove ranks first while the Leaves table, the one it acts on, has the focus."""
        leaves = self.focused is not None and self.focused.id == "export-leaves"
        ranked = ("export.remove",) * leaves + ("export.write", "export.verify", "export.files",
                                                 "export.restriction", "export.remove", "export.mermaid")
        return fit_footer(self, super().active_bindings, ranked)

    def _fit(self) -> None:
        """Fields lose their borders below 30 rows, so the counts keep their rows at 80x24; the footer
        is compact."""
        short = self.size.height < 30
        for field in self.query(Input):
            field.compact = short

    def on_screen_suspend(self) -> None:
        """Leaving the screen stops its restriction checks on the server."""
        if self._check_timer is not None:
            self._check_timer.stop()
        threading.Thread(target=self.checks.cancel_all, name="djtui-export-cancel", daemon=True).start()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.selected is not None and self.query_one("#export-restriction", Input).value:
            self._check_restriction()  # the check that leaving stopped

    def on_unmount(self) -> None:
        if self._check_timer is not None:
            self._check_timer.stop()
        self.checks.cancel_all()

    def on_db_ready(self) -> None:
        self.load_graph()

    # -- loading ---------------------------------------------------------------

    @work(thread=True, exclusive=True, group="export-graph", exit_on_error=False)
    def load_graph(self) -> None:
        from djtui.services.export import load_graph

        db = self.ctx.db
        if db is None:
            return
        try:
            graph = load_graph(db, self.ctx.config.export.schema_prefixes)
        except Exception as exc:
            self.app.call_from_thread(self._status, f"cannot load the graph: {exc}")
            return
        self.app.call_from_thread(self._graph_loaded, graph)

    def _graph_loaded(self, graph: Any) -> None:
        self.graph = graph
        self.query_one("#export-tree", ForeignKeyTree).set_graph(graph)
        self.names = table_names(list(graph.nodes))
        self._fill_tables(self.query_one("#export-search", Input).value)
        internal = sum(1 for n in self.names if n.internal)
        hidden = f" ({internal} internal ~ tables hidden: i lists them)" if internal else ""
        self._status(f"{graph.number_of_nodes() - internal} tables{hidden}, {graph.number_of_edges()} foreign "
                     "keys; pick a table, type a restriction, Enter")
        # The graph, its names and the list's options live as long as the screen. Left to the cyclic
        # collector, each full collection walks them and everything loaded before (50-90 ms measured at
        # 500 tables, about one in eight presses while moving through the list); frozen, it skips them.
        gc.freeze()

    def _fill_tables(self, text: str) -> None:
        """The tables by class name (``db.Class``, parts ``db.Master.Part``); a search matches the class
        name or the SQL name. DataJoint's internal tables only when asked (``i``)."""
        if self.graph is None:
            return
        opts = self.query_one("#export-tables", OptionList)
        keep = opts.highlighted_option.id if opts.highlighted_option is not None else None
        opts.clear_options()
        found = [n for n in self.names if (self.show_internal or not n.internal or "~" in text) and n.matches(text)]
        opts.add_options([Option(FittedName(n.shown, "italic" if n.internal else ""), id=n.full)
                          for n in found[:2000]])
        ids = [n.full for n in found[:2000]]
        if keep in ids:
            opts.highlighted = ids.index(keep)

    def action_toggle_internal(self) -> None:
        self.show_internal = not self.show_internal
        self._fill_tables(self.query_one("#export-search", Input).value)
        n = sum(1 for t in self.names if t.internal)
        self.notify(f"{'listing' if self.show_internal else 'hiding'} {n} internal table{'' if n == 1 else 's'} "
                    "(~log, ~jobs, ~external_…)", markup=False)

    def _status(self, text: str) -> None:
        self.query_one("#export-summary", Static).update(Text(text))

    # -- picking a table -------------------------------------------------------

    @on(Input.Changed, "#export-search")
    def _search(self, event: Input.Changed) -> None:
        self._fill_tables(event.value)

    @on(Input.Submitted, "#export-search")
    def _search_done(self) -> None:
        self._enter_list()

    def on_key(self, event) -> None:
        """Down in the search field enters the list, as Enter does (DjtuiScreen.on_key runs after this one)."""
        if event.key == "down" and self.focused is self.query_one("#export-search", Input):
            event.stop()
            event.prevent_default()
            self._enter_list()

    def _enter_list(self) -> None:
        opts = self.query_one("#export-tables", OptionList)
        opts.focus()
        if opts.option_count and opts.highlighted is None:
            opts.highlighted = 0

    @on(OptionList.OptionHighlighted, "#export-tables")
    @on(OptionList.OptionSelected, "#export-tables")
    def _pick(self, event: OptionList.OptionHighlighted | OptionList.OptionSelected) -> None:
        table = event.option.id
        if table is None or self.graph is None or table == self.selected:
            return
        self.selected = table
        if not self._tree_pending:  # the highlight paints first; moves faster than frames draw the tree once
            self._tree_pending = True
            self.call_after_refresh(self._draw_tree)
        field = self.query_one("#export-restriction", Input)
        field.placeholder = f"restriction on {display_name(table)}, Enter adds a leaf"
        self._check_restriction()

    def _draw_tree(self) -> None:
        self._tree_pending = False
        if self.selected is not None and self.graph is not None:
            self._show_tree(self.selected)

    def _show_tree(self, table: str) -> None:
        """The picked table's foreign keys (the tree keeps what it computed per graph: moving is cheap)."""
        tree = self.query_one("#export-tree", ForeignKeyTree)
        if tree.graph is not self.graph:
            tree.set_graph(self.graph)
        tree.show(table)

    # -- restrictions and leaves -----------------------------------------------

    @on(Input.Changed, "#export-restriction")
    def _restriction_changed(self) -> None:
        self._check_restriction()

    def _typed(self) -> tuple[Leaf | None, str]:
        """The leaf the field holds now (its text through the CLI's parser), or None and why not."""
        from djtui.services.export import parse_restriction

        if self.selected is None:
            return None, "pick a table first"
        try:
            kw = {"dialect": self.ctx.db.dialect} if self.ctx.db is not None else {}  # JSON keys: the server's quoting
            sql = parse_restriction(self.query_one("#export-restriction", Input).value, where="restriction", **kw)
        except UserError as exc:
            return None, exc.what + (f" ({exc.hint})" if exc.hint else "")
        return Leaf(self.selected, sql), ""

    def _check_restriction(self) -> None:
        status = self.query_one("#export-restriction-status", Static)
        if self._check_timer is not None:
            self._check_timer.stop()
        if self.selected is not None and not self.query_one("#export-restriction", Input).value.strip():
            # nothing typed: no count of the whole table (it read as the count of the leaf just added)
            self._mark(status, "", None)
            threading.Thread(target=self.checks.cancel_typing, name="djtui-export-cancel", daemon=True).start()
            return
        leaf, problem = self._typed()
        if leaf is None:
            self._mark(status, problem, False)
            return
        self._mark(status, "checking…", None)
        self._check_timer = self.set_timer(0.4, lambda: self.check_on_server(leaf))

    def _mark(self, status: Static, text: str, ok: bool | None, warn: bool = False) -> None:
        status.update(Text(text))
        status.set_class(ok is False, "bad")
        status.set_class(ok is True and not warn, "good")
        status.set_class(ok is True and warn, "warn")

    def _server_check(self, leaf: Leaf, *, typing: bool) -> Check | None:
        return self.checks.run(self.ctx.db, leaf, self.ctx.config.export.statement_timeout_s, typing=typing)

    @work(thread=True, exclusive=True, group="export-check", exit_on_error=False)
    def check_on_server(self, leaf: Leaf) -> None:
        if self.ctx.db is None or not leaf.table:
            return
        result = self._server_check(leaf, typing=True)
        if result is not None:
            self.app.call_from_thread(self._checked, leaf, result)

    @work(thread=True, group="export-add", exit_on_error=False)
    def check_then_add(self, leaf: Leaf) -> None:
        """Enter before the as-you-type check came back: check now, add only if the server agrees."""
        result = self._server_check(leaf, typing=False)
        if result is None:
            return  # the screen was left: the field keeps the text, checked again on return
        self.app.call_from_thread(self._checked, leaf, result)
        self.app.call_from_thread(self._add_checked, leaf, result)

    def _checked(self, leaf: Leaf, result: Check) -> None:
        if result.ok:
            self._known_good[leaf] = result
        elif not result.msg.startswith("cannot check"):  # a lost connection is not the restriction's fault
            self._known_bad[leaf] = result.msg
        current, _ = self._typed()
        if current == leaf and self.query_one("#export-restriction", Input).value.strip():
            self._mark(self.query_one("#export-restriction-status", Static), result.msg, result.ok, result.warn)

    @on(Input.Submitted, "#export-restriction")
    def _add_leaf(self, event: Input.Submitted) -> None:
        if self.selected is None:
            self.notify("pick a table first", severity="warning")
            return
        leaf, problem = self._typed()
        if leaf is None:
            self.notify(problem, severity="error", markup=False)
            return
        if leaf in self.leaves:
            self.notify("that leaf is already there", severity="warning")
            return
        bad = self._known_bad.get(leaf)
        if bad:
            self.notify(f"not added: {bad}", severity="error", markup=False)
            return
        good = self._known_good.get(leaf)
        if good is not None:
            self._add_checked(leaf, good)
            return
        if self._check_timer is not None:
            self._check_timer.stop()  # this check supersedes the pending one
        self._mark(self.query_one("#export-restriction-status", Static), "checking on the server…", None)
        self.check_then_add(leaf)

    def _add_checked(self, leaf: Leaf, result: Check) -> None:
        if not result.ok:
            self.notify(f"not added: {result.msg}", severity="error", markup=False)
            return
        if leaf in self.leaves:
            return  # Enter pressed twice while the check ran
        self._add_leaves([leaf], {leaf: result})
        if result.rows == 0:
            self.notify(f"added leaf {len(self.leaves)}, but it matches 0 rows of {display_name(leaf.table)}: "
                        "it exports nothing (x in the Leaves table removes it)", severity="warning", markup=False)
        elif result.warnings:
            self.notify(f"added leaf {len(self.leaves)}; {result.msg}", severity="warning", markup=False)
        field = self.query_one("#export-restriction", Input)
        current, _ = self._typed()
        if current == leaf:
            field.value = ""

    def _add_leaves(self, leaves: list[Leaf], checks: dict[Leaf, Check]) -> None:
        for leaf in leaves:
            if leaf not in self.leaves:
                self.leaves.append(leaf)
        self._leaf_checks.update(checks)
        self._refresh_leaves()

    # -- leaves from a paper's export log or a leaves file (the CLI's --paper / --leaves) ----------

    def action_load_leaves(self) -> None:
        if self.graph is None:
            self.notify("the graph is still loading", severity="warning")
            return
        self.app.push_screen(ExportLoadDialog(), self._load_chosen)

    def _load_chosen(self, choice: LoadChoice | None) -> None:
        if choice is not None:
            self.load_leaves(choice)

    @work(thread=True, exclusive=True, group="export-load", exit_on_error=False)
    def load_leaves(self, choice: LoadChoice) -> None:
        """The CLI's services read the leaves; each is counted as a typed one is (its own rows)."""
        from djtui.services.export import paper_leaves

        source = str(choice.file) if choice.file is not None else f"paper {choice.paper}"
        try:
            if choice.file is not None:
                from djtui.services.export.recording import read_leaves
                leaves = read_leaves(choice.file)
            else:
                leaves = paper_leaves(self.ctx.db, choice.paper, choice.analysis, choice.export_log)
        except UserError as exc:
            self.app.call_from_thread(self.notify, f"cannot load leaves: {exc.render()}", severity="error",
                                      markup=False)
            return
        except Exception as exc:
            self.app.call_from_thread(self.notify, f"cannot load leaves from {source}: {exc}", severity="error",
                                      markup=False)
            return
        graph = self.graph
        unknown = [lf for lf in leaves if graph is None or lf.table not in graph]
        known = [lf for lf in leaves if lf not in unknown]
        checks = self.checks.count_loaded(self.ctx.db, known, self.ctx.config.export.statement_timeout_s)
        self.app.call_from_thread(self._loaded, source, known, unknown, checks)

    def _loaded(self, source: str, known: list[Leaf], unknown: list[Leaf], checks: dict[Leaf, Check]) -> None:
        bad = [lf for lf in known if not checks[lf].ok]
        good = [lf for lf in known if checks[lf].ok and lf not in self.leaves]
        self._add_leaves(good, {lf: checks[lf] for lf in good})
        empty = [lf for lf in good if checks[lf].rows == 0]
        text = f"loaded {len(good)} lea{'f' if len(good) == 1 else 'ves'} from {source}"
        if empty:
            text += f"; {len(empty)} match{'es' if len(empty) == 1 else ''} 0 rows"
        problems = [f"{lf.table}: not in the loaded graph (schema prefixes?)" for lf in unknown]
        problems += [f"{lf.table}: {checks[lf].msg}" for lf in bad]
        if problems:
            text += "; not loaded: " + "; ".join(problems)
        self.notify(text, severity="warning" if problems or empty else "information", timeout=15, markup=False)

    def action_remove_leaf(self) -> None:
        table = self.query_one("#export-leaves", DataTable)
        if self.focused is not table:
            # x elsewhere (the table picker, the counts) must not drop a leaf the user cannot see is meant
            self.notify("x removes the highlighted leaf of the Leaves table: move there first (Tab)",
                        severity="warning")
            return
        if not self.leaves or table.cursor_row is None or table.cursor_row >= len(self.leaves):
            return
        del self.leaves[table.cursor_row]
        self._refresh_leaves()

    def _refresh_leaves(self) -> None:
        table = self.query_one("#export-leaves", DataTable)
        table.clear()
        for i, leaf in enumerate(self.leaves):
            check = self._leaf_checks.get(leaf)
            rows = Text("…" if check is None else str(check.rows),
                        style="bold yellow" if check is not None and (check.rows == 0 or check.warnings) else "")
            table.add_row(str(i + 1), rows, Text(display_name(leaf.table)), Text(leaf.restriction or "(all rows)"))
        self.recount()

    def _prepare(self, leaves: list[Leaf]) -> Any:
        """The export plan of these leaves on the loaded graph: the same call as ``djtui export``'s."""
        from djtui.services.export import prepare_export

        return prepare_export(self.ctx.db, leaves, graph=self.graph,
                              statement_timeout=self.ctx.config.export.statement_timeout_s)

    @work(thread=True, exclusive=True, group="export-count", exit_on_error=False)
    def recount(self) -> None:
        from djtui.services.export import count_plan

        leaves = list(self.leaves)
        if not leaves or self.ctx.db is None or self.graph is None:
            self.app.call_from_thread(self._show_counts, leaves, [], [], "no leaves yet")
            return
        self.app.call_from_thread(self._status, "counting…")
        try:
            plan = count_plan(self.ctx.db, self._prepare(leaves), self.ctx.config.stores)
        except UserError as exc:
            self.app.call_from_thread(self._show_counts, leaves, [], [], exc.what)
            return
        except OperationFailed as exc:
            self.app.call_from_thread(self._show_counts, leaves, [], [], str(exc).splitlines()[0])
            return
        files = list(plan.files or ())
        size = sum(f.size or 0 for f in files)
        missing = sum(1 for f in files if f.exists is False)
        unknown = sum(1 for f in files if f.exists is None)
        summary = (f"{len(plan.tables)} tables, {plan.rows} rows; {len(files)} stored files, {size / 1e6:.1f} MB"
                   + (f", {missing} MISSING" if missing else "")
                   + (f", {unknown} not checked" if unknown else "")
                   + (" (f: files and problems)" if missing or unknown or any(f.problem for f in files) else ""))
        self.app.call_from_thread(self._show_counts, leaves, list(plan.tables), files, summary)

    def _show_counts(self, leaves: list[Leaf], counts: list, files: list, summary: str) -> None:
        if leaves != self.leaves:
            return  # a newer count is on its way
        with self.app.batch_update():
            fill_counts(self.query_one("#export-counts", DataTable), counts)
            self.plan_tables = tuple(c.table for c in counts)
            self.files = list(files)
            fill_files(self.query_one("#export-files", DataTable), self.query_one("#export-file-problems", Static),
                       self.files)
        self.summary = summary
        self._status(summary)

    def action_toggle_files(self) -> None:
        showing = not self.has_class("show-files")
        self.set_class(showing, "show-files")
        self.query_one("#export-lower-heading", Label).update(
            "Stored files  (f: rows)" if showing else "Rows per table  (f: files)")
        hidden, shown = ("#export-counts", "#export-files") if showing else ("#export-files", "#export-counts")
        if self.focused is None or self.focused is self.query_one(hidden, DataTable):
            self.query_one(shown, DataTable).focus()  # so the next `f` is a key, not a letter in a field

    # -- writing ---------------------------------------------------------------

    def _out_dir(self) -> Path:
        base = self.ctx.config.export.out_dir or (self.ctx.config.state_dir / "exports")
        return Path(base) / f"export-{time.strftime('%Y%m%d-%H%M%S')}"

    def _refuse_readonly(self, what: str) -> bool:
        if self.ctx.readonly:
            self.notify(f"read-only: {what} writes files and is refused", severity="warning")
            return True
        return False

    def action_write(self) -> None:
        if self._refuse_readonly("writing the export"):
            return
        if not self.leaves:
            self.notify("add a leaf first", severity="warning")
            return
        leaves = list(self.leaves)
        n = len(leaves)
        summary = f"{n} lea{'f' if n == 1 else 'ves'}" + (f"; {self.summary}" if self.summary else "")
        self.app.push_screen(ExportWriteDialog(self._out_dir(), self.ctx.config.export.strip_charset, summary),
                             lambda choice: self._write_chosen(leaves, choice))

    def _write_chosen(self, leaves: list[Leaf], choice: WriteChoice | None) -> None:
        if choice is None or self._refuse_readonly("writing the export"):
            return
        self.write_export(leaves, choice)

    @work(thread=True, exclusive=True, group="export-write", exit_on_error=False)
    def write_export(self, leaves: list[Leaf], choice: WriteChoice) -> None:
        from djtui.services.export import write_plan

        cfg = self.ctx.config.export
        out = choice.out_dir
        total = len(self.plan_tables) or 1
        done = [0]

        def progress(table: str, rows: int) -> None:
            done[0] += 1
            self.app.call_from_thread(self._progress, done[0], total, f"wrote {table}: {rows} rows")

        self.app.call_from_thread(self._progress, 0, total, f"writing the {choice.fmt} export to {out}…")
        try:
            manifest = write_plan(self.ctx.db, self._prepare(leaves), out, fmt=choice.fmt, strip=choice.strip,
                                  batch_rows=cfg.insert_batch_rows, progress=progress, stores=self.ctx.config.stores)
        except UserError as exc:
            self.app.call_from_thread(self._progress, None, total, f"write failed: {exc.render()}")
            return
        except Exception as exc:
            self.app.call_from_thread(self._progress, None, total, f"write failed: {exc}")
            return
        tables = len(manifest["tables"])
        rows = sum(t["rows"] for t in manifest["tables"])
        files = len(manifest.get("files", []))
        self.app.call_from_thread(self._written, out)
        self.app.call_from_thread(
            self._progress, None, total,
            f"wrote the {choice.fmt} export to {out}: {tables} table{'' if tables == 1 else 's'}, "
            f"{rows} row{'' if rows == 1 else 's'}, {files} file{'' if files == 1 else 's'}")

    def _written(self, out: Path) -> None:
        self.last_export = out

    def _progress(self, done: int | None, total: int, text: str) -> None:
        bar = self.query_one("#export-progress", ProgressBar)
        bar.set_class(done is not None, "busy")
        if done is not None:
            bar.update(total=total, progress=done)
        else:
            failed = text.startswith("write failed")
            self.notify(text, severity="error" if failed else "information", timeout=10, markup=False)
        self._status(text)

    def action_save_graph(self) -> None:
        if self._refuse_readonly("saving the graph"):
            return
        if not self.plan_tables or self.graph is None:
            self.notify("add a leaf first: the graph saved is the export's", severity="warning")
            return
        self.save_graph(self.last_export or self._out_dir())

    @work(thread=True, exclusive=True, group="export-save-graph", exit_on_error=False)
    def save_graph(self, out: Path) -> None:
        """The graph as Mermaid and DOT, next to the last export written (else in a new directory)."""
        from djtui.services.export import save_graph_text

        try:
            path = save_graph_text(out, self.graph, self.plan_tables, "mermaid")
            dot = save_graph_text(out, self.graph, self.plan_tables, "dot")
            self.app.call_from_thread(lambda: self.notify(f"saved the graph: {path} and {dot.name}", markup=False))
        except OSError as exc:
            self.app.call_from_thread(self.notify, f"cannot save the graph in {out}: {exc}", severity="error")

    # -- verifying (the service `djtui export verify` runs) -------------------------------------

    def _export_to_verify(self) -> Path | None:
        """The export written last here, else the newest one in the export folder."""
        if self.last_export is not None:
            return self.last_export
        base = Path(self.ctx.config.export.out_dir or (self.ctx.config.state_dir / "exports"))
        try:
            found = [d for d in base.iterdir() if (d / "manifest.json").is_file()]
        except OSError:
            return None
        return max(found, key=lambda d: d.stat().st_mtime, default=None)

    def action_verify_export(self) -> None:
        target = self._export_to_verify()
        if target is None:
            self.notify("no export to verify: write one first (w), or run `djtui export verify DIR`",
                        severity="warning", markup=False)
            return
        self.verify_export(target)

    @work(thread=True, exclusive=True, group="export-verify", exit_on_error=False)
    def verify_export(self, target: Path) -> None:
        from djtui.services.export import verify_export

        self.app.call_from_thread(self._status, f"verifying {target}: loading it into a scratch server…")
        try:
            checks = verify_export(target)
        except UserError as exc:
            self.app.call_from_thread(self._verified, target, f"✗ cannot verify {target}: {exc.render()}", False)
            return
        except Exception as exc:
            self.app.call_from_thread(self._verified, target, f"✗ cannot verify {target}: {exc}", False)
            return
        bad = [c for c in checks if not c.ok]
        if bad:
            text = (f"✗ {target.name}: {len(bad)} of {len(checks)} table(s) differ from the manifest: "
                    + ", ".join(c.table for c in bad[:5]))
        else:
            text = f"✓ verified {target.name}: {len(checks)} table(s) match the manifest (rows and checksums)"
        self.app.call_from_thread(self._verified, target, text, not bad)

    def _verified(self, target: Path, text: str, ok: bool) -> None:
        self._status(text)
        self.notify(text, severity="information" if ok else "error", timeout=15, markup=False)

    def action_focus_search(self) -> None:
        self.query_one("#export-search", Input).focus()

    def action_focus_restriction(self) -> None:
        self.query_one("#export-restriction", Input).focus()
