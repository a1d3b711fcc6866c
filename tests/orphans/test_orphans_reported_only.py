"""A confirmed quarantine reports the referenced missing-object rows it keeps, as its dry run did (issue 13)."""

from __future__ import annotations

import json

from orphans_lab import config_text

from djtui.cli import main
from djtui.domain import stores as ds


def test_confirmed_run_reports_the_referenced_rows_of_its_preview(capsys, server, tmp_path, legacy_lab):
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path,
                               f"stores:\n  main:\n    protocol: file\n    location: {legacy_lab.location}\n"))
    cfg.chmod(0o600)
    base = ("--config", str(cfg), "orphans", "quarantine", "--source", f"external:{legacy_lab.schema}:main",
            "--reason", ds.MISSING_OBJECT, "--reason", ds.UNTRACKED_OBJECT, "--json")
    assert main([*base, "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["reported_only"], dry["files"]) == (1, 1)
    assert main([*base, "--confirm", "QUARANTINE"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert (done["reported_only"], done["files"]) == (1, 1)
