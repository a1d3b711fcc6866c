"""`djtui orphans ...` end to end: JSON shapes, confirmation, exit codes, restore and purge."""

from __future__ import annotations

import json

import pytest
from orphans_lab import config_text

from djtui.cli import main
from djtui.domain import stores as ds


@pytest.fixture
def cfg_file(server, tmp_path, legacy_lab):
    path = tmp_path / "djtui.yaml"
    path.write_text(config_text(server, tmp_path,
                                f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n"))
    path.chmod(0o600)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_scan_json_shape(capsys, cfg_file, legacy_lab):
    code, out, _ = run(capsys, "--config", str(cfg_file), "orphans", "scan", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"sources"}
    by_name = {s["name"]: s for s in data["sources"]}
    src = f"external:{legacy_lab.schema}:main"
    assert set(by_name[src]) == {"name", "kind", "orphans", "bytes"}
    assert by_name[src]["kind"] == "external" and by_name[src]["orphans"] == 4
    assert by_name[f"external:{legacy_lab.schema_v2}:main"]["orphans"] == 0

    code, out, _ = run(capsys, "--config", str(cfg_file), "orphans", "scan", "--source", src, "--json")
    data = json.loads(out)
    assert [s["name"] for s in data["sources"]] == [src]
    got = {(i["reason"], i["path"]) for i in data["items"]}
    assert got == {(r, p) for r, paths in legacy_lab.expected.items() for p in paths}
    assert all(set(i) <= {"path", "key", "size", "reason"} and i["reason"] in ds.REASONS for i in data["items"])


def test_quarantine_needs_confirmation_then_restore_and_purge(capsys, cfg_file, legacy_lab):
    src = f"external:{legacy_lab.schema}:main"
    (untracked,) = legacy_lab.expected[ds.UNTRACKED_OBJECT]
    path = legacy_lab.location / untracked
    base = ("--config", str(cfg_file), "orphans")

    base_q = ("quarantine", "--source", src, "--reason", "untracked-object")
    code, out, _ = run(capsys, *base, *base_q, "--dry-run")
    assert code == 0 and "dry run: 1 item" in out and path.exists()

    code, _, err = run(capsys, *base, *base_q)  # no tty under pytest
    assert code == 2 and "--confirm" in err and path.exists()
    code, _, err = run(capsys, *base, *base_q, "--confirm", "yes")
    assert code == 2 and path.exists()
    code, _, err = run(capsys, "--readonly", *base, *base_q, "--confirm", "QUARANTINE")
    assert code == 2 and "read-only" in err and path.exists()

    code, out, _ = run(capsys, *base, *base_q, "--confirm", "QUARANTINE", "--json")
    assert code == 0 and not path.exists()
    batch = json.loads(out)["batch"]

    code, out, _ = run(capsys, *base, "list-quarantine", "--json")
    (listed,) = json.loads(out)["batches"]
    assert listed["batch"] == batch and listed["items"] == 1 and listed["state"] == "done"

    code, out, _ = run(capsys, *base, "restore", batch)
    assert code == 0 and path.read_bytes() == legacy_lab.untracked_bytes[untracked]

    code, out, _ = run(capsys, *base, *base_q, "--confirm", "QUARANTINE", "--json")
    batch2 = json.loads(out)["batch"]
    code, out, _ = run(capsys, *base, "purge", "--older-than", "0", "--json")
    assert code == 0 and [b["batch"] for b in json.loads(out)["purged"]] == [batch2]
    code, _, err = run(capsys, *base, "restore", batch2)
    assert code == 2 and "purged" in err


def test_bad_source_names_exit_2(capsys, cfg_file):
    for bad in ("nonsense", "table:nodot", "dir:/not/configured", "external:x:nostore"):
        code, _, err = run(capsys, "--config", str(cfg_file), "orphans", "scan", "--source", bad)
        assert code == 2, bad
        assert "--source" in err or "stores" in err
    code, _, err = run(capsys, "--config", str(cfg_file), "orphans", "restore", "no-such-batch")
    assert code == 2 and "list-quarantine" in err


def test_scan_can_skip_the_empty_check(capsys, cfg_file, legacy_lab):
    src = f"external:{legacy_lab.schema}:main"
    code, out, _ = run(capsys, "--config", str(cfg_file), "orphans", "scan", "--source", src, "--json",
                       "--skip-empty-check")
    assert code == 0
    assert {i["reason"] for i in json.loads(out)["items"]} == set(legacy_lab.expected) - {ds.ZERO_BYTE}
