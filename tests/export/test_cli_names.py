"""`djtui export plan` takes DataJoint class names as leaves and says when the server coerced a value."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.export.conftest import config_text
from tests.export.test_screen_names import _lab


def _plan(cfg, schema, *leaves):
    args = [a for leaf in leaves for a in ("--leaf", leaf)]
    return subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "export", "plan", "--prefix", schema,
                           *args], capture_output=True, text=True, timeout=120)


def test_class_name_leaves_and_coerced_values(server, admin_conn, schema, tmp_path):
    _lab(admin_conn, schema)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path))
    cfg.chmod(0o600)
    by_class = _plan(cfg, schema, f'{schema}.Probe.Electrode:{{"electrode_id": 1}}', f"{schema}.LFPBand:session_id = 2")
    by_sql = _plan(cfg, schema, f"{schema}.probe__electrode:(`electrode_id` = 1)",
                   f"{schema}.__l_f_p_band:session_id = 2")
    assert by_class.returncode == 0, by_class.stderr
    assert by_class.stdout == by_sql.stdout and f"{schema}.__l_f_p_band" in by_class.stdout
    run = subprocess.run([sys.executable, "-m", "djtui", "--config", str(cfg), "export", "plan", "--prefix", schema,
                          "--leaf", f"{schema}.Session:session_id = 1", "--json"], capture_output=True, text=True,
                         timeout=120)
    assert {r["table"] for r in json.loads(run.stdout)} == {f"{schema}.session"}


def test_plan_says_when_the_server_coerced_a_value(server, admin_conn, schema, tmp_path):
    """MariaDB compares a date column with '2026-13-45' by truncating it (a warning): every row matches."""
    _lab(admin_conn, schema)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path))
    cfg.chmod(0o600)
    run = _plan(cfg, schema, f"{schema}.session:session_date > '2026-13-45'")
    assert run.returncode == 0, run.stderr
    assert "coerced a value" in run.stderr and "2026-13-45" in run.stderr, run.stderr
