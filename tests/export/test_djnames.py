"""DataJoint's class names for SQL table names, checked on every class Spyglass 0.6 declares, and
names that fit a narrow column without a break inside a word."""

from __future__ import annotations

import pytest

from djtui.domain.djnames import camel, class_name, fit_name, middle_truncate, table_names, uncamel

SPYGLASS_NAMES = """
import ast, json, pathlib, spyglass
from datajoint.utils import from_camel_case
root = pathlib.Path(spyglass.__file__).parent
out = []
def tiered(cls):
    return any(isinstance(d, ast.Name) and d.id == "schema" or
               isinstance(d, ast.Attribute) and d.attr == "schema" for d in cls.decorator_list)
for path in sorted(root.rglob("*.py")):
    try:
        tree = ast.parse(path.read_text())
    except (SyntaxError, UnicodeDecodeError):
        continue
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and tiered(node):
            out.append([node.name, from_camel_case(node.name)])
            for sub in node.body:
                if isinstance(sub, ast.ClassDef) and any("Part" in ast.unparse(b) for b in sub.bases):
                    out.append([f"{node.name}.{sub.name}",
                                from_camel_case(node.name) + "__" + from_camel_case(sub.name)])
print(json.dumps(out))
"""


def test_every_spyglass_class_name_comes_back_from_its_table_name():
    """Spyglass's own classes (read from its source in its venv), named by DataJoint's own from_camel_case:
    djtui's reverse gives each class back (LFPBand, LFPBandV1, DLCPosV1, Probe.Electrode...)."""
    from tests.conformance.tools import run_tool

    try:
        pairs = run_tool("spyglass", SPYGLASS_NAMES, env={"PATH": "/usr/bin:/bin"})
    except Exception as exc:  # no network to install the tool on a fresh machine
        pytest.skip(f"no Spyglass venv: {exc}")
    assert len(pairs) > 150, len(pairs)
    wrong = {sql: (cls, class_name(sql)) for cls, sql in pairs if class_name(sql) != cls}
    assert wrong == {}
    for tier in ("", "#", "_", "__"):
        assert class_name(tier + "l_f_p_band") == "LFPBand"
    assert {c for c, _ in pairs} >= {"IntervalList", "LFPBand", "AnalysisNwbfile", "Probe.Electrode", "LFPBandV1"}
    assert all(uncamel(c.split(".")[-1]) == s.split("__")[-1] for c, s in pairs)


def test_names_without_a_class():
    assert class_name("~log") is None and class_name("~external_raw") is None and class_name("~jobs") is None
    assert class_name("foo_1") is None and class_name("Foo") is None and class_name("a__b__c") is None
    assert camel("l_f_p_band_v1") == "LFPBandV1" and camel("a1_b") == "A1B"
    names = table_names(["c.interval_list", "c.~log", "c.probe", "c.probe__electrode", "c.#l_f_p_band", "c.x_1"])
    assert [(n.shown, n.internal, n.part) for n in names] == [
        ("c.IntervalList", False, False), ("c.LFPBand", False, False), ("c.Probe", False, False),
        ("c.Probe.Electrode", False, True), ("c.x_1", False, False), ("c.~log", True, False)]
    band = names[1]
    assert band.matches("lfpband") and band.matches("l_f_p_band") and band.matches("c LFP")
    assert not band.matches("interval")


@pytest.mark.parametrize("width", range(8, 50))
def test_fitted_names_break_only_at_dots_or_truncate_in_the_middle(width):
    name = "lfp_band_v1.LFPBandSelection.LFPBandElectrode"
    lines = fit_name(name, width)
    assert all(len(line) <= width for line in lines)
    joined = "".join(line.strip() for line in lines)
    if "…" not in joined:
        assert joined == name  # broken only after a dot, nothing lost
        assert all(line.rstrip().endswith(".") for line in lines[:-1])


def test_middle_truncation_keeps_whole_words():
    assert middle_truncate("spikesorting_v1_curation.", 12) == "…curation."
    assert middle_truncate("common_ephys.LFPBandSelection", 40) == "common_ephys.LFPBandSelection"
    cut = middle_truncate("common_ephys.LFPBandSelectionElectrodeGroup", 26)
    assert len(cut) <= 26 and "…" in cut
    head, tail = cut.split("…")
    assert "common_ephys.LFPBandSelectionElectrodeGroup".startswith(head)
    assert tail in ("", "Group", "ElectrodeGroup", "SelectionElectrodeGroup")
