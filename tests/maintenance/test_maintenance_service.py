"""Disk runway, temp cleaning and notifications, on real files and local servers."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import psutil
import pytest

from djtui.config import Drive, NotifySettings, Secret, parse_config
from djtui.services import maintenance, notify
from djtui.services.database import Database

DAY = 86400


def _old(p: Path, days: float) -> Path:
    t = time.time() - days * DAY
    os.utime(p, (t, t), follow_symlinks=False)
    return p


def test_runway_from_shrinking_history():
    pts = [(0.0, 100 * 10**9), (DAY, 90 * 10**9), (2 * DAY, 80 * 10**9)]
    assert abs(maintenance.runway_days(pts, 80 * 10**9) - 8.0) < 1e-6
    assert maintenance.runway_days([(0.0, 5), (DAY, 9)], 9) is None  # growing
    assert maintenance.runway_days([(0.0, 5)], 5) is None


def test_check_disks_appends_history_and_uses_it(tmp_path):
    hist = tmp_path / "h.csv"
    drive = Drive(path=tmp_path, min_free_gb=10**9)  # always "low"
    now = datetime.now()
    # a made-up history: 2 TB more free two days ago -> shrinking fast -> a short runway
    free_now = psutil.disk_usage(str(tmp_path)).free
    maintenance.append_history(hist, [(now - timedelta(days=2), str(tmp_path), free_now + 2 * 10**12, 1)])
    (st,) = maintenance.check_disks([drive], hist, now=now)
    assert st.low and st.error is None
    assert st.runway_days is not None and st.runway_days < 2 * free_now / 10**12 + 1
    rows = maintenance.read_history(hist)
    assert len(rows) == 2 and rows[-1][1] == str(tmp_path) and rows[-1][2] > 0
    (missing,) = maintenance.check_disks([Drive(tmp_path / "nope", 1)], hist)
    assert missing.error and not missing.low


@pytest.fixture
def lab(server, tmp_path):
    """A config (quarantine under tmp_path/state) and a Database: the orphans service scans through both."""
    cfg = parse_config(f'state_dir: "{tmp_path / "state"}"\naudit_log: "{tmp_path / "audit.jsonl"}"\n')
    db = Database(server.settings)
    yield cfg, db
    db.close()


def _clean(lab, roots, **kw):
    cfg, db = lab
    return maintenance.clean_temp(cfg, db, roots, now=time.time(), **kw)


def _quarantined(tmp_path: Path) -> dict[str, bytes]:
    """Every file under the quarantine, by name: what the clean moved there."""
    q = tmp_path / "state" / "quarantine"
    return {p.name: p.read_bytes() for p in q.rglob("*") if p.is_file() and not p.is_symlink()}


def test_clean_temp_old_files_then_empty_dirs_never_links(tmp_path, lab):
    root = tmp_path / "tmp"
    outside = tmp_path / "precious"
    outside.mkdir()
    keep_outside = outside / "data.bin"
    keep_outside.write_bytes(b"x")
    _old(keep_outside, 30)
    (root / "a" / "b").mkdir(parents=True)
    old1 = root / "old.txt"
    old1.write_text("old")
    old2 = root / "a" / "b" / "deep.txt"
    old2.write_text("deep")
    fresh = root / "a" / "fresh.txt"
    fresh.write_text("new")
    (root / "link_dir").symlink_to(outside)
    (root / "link_file").symlink_to(keep_outside)
    (root / "empty_old").mkdir()
    (root / "empty_new").mkdir()
    for p in (old1, old2, root / "link_dir", root / "link_file"):
        _old(p, 10)
    for d in (root / "a" / "b", root / "a", root / "empty_old"):
        _old(d, 10)

    dry = _clean(lab, [root], dry_run=True)
    assert {p.name for p in dry.files} == {"old.txt", "deep.txt"}
    assert old1.exists() and old2.exists()

    res = _clean(lab, [root])
    assert {p.name for p in res.files} == {"old.txt", "deep.txt"}
    assert not old1.exists() and not old2.exists() and fresh.exists()
    # one cleaner: the stale files went into the orphans quarantine, not away
    q = _quarantined(tmp_path)
    assert q.get("old.txt") == b"old" and q.get("deep.txt") == b"deep" and len(res.batches) == 1
    assert {p.name for p in res.dirs} == {"b", "empty_old"}  # "a" still holds fresh.txt
    assert (root / "empty_new").exists() and (root / "a").exists()
    assert keep_outside.exists() and (root / "link_dir").is_symlink() and (root / "link_file").is_symlink()
    assert res.skipped_links == 2
    assert root.exists()


def test_clean_temp_refuses_symlinked_root(tmp_path, lab):
    real = tmp_path / "real"
    real.mkdir()
    f = real / "f"
    f.write_text("x")
    _old(f, 30)
    link = tmp_path / "tmp"
    link.symlink_to(real)
    res = _clean(lab, [link])
    assert res.errors and f.exists()


def test_notify_email_and_slack(smtp_inbox, hook_inbox):
    s = NotifySettings(smtp_host="127.0.0.1", smtp_port=smtp_inbox.port, smtp_from="djtui@lab.org",
                       smtp_to=("a@lab.org", "b@lab.org"),
                       slack_webhook=Secret(f"http://127.0.0.1:{hook_inbox.port}/services/T/B/secret"))
    res = notify.notify(s, "disk low", "only 3 GiB left on /data")
    assert res.sent == ["email", "slack"] and not res.errors
    (mail,) = smtp_inbox.messages
    assert mail["rcpt"] == ["<a@lab.org>", "<b@lab.org>"]
    assert "Subject: disk low" in mail["data"] and "only 3 GiB left" in mail["data"]
    (hook,) = hook_inbox.messages
    assert hook["path"] == "/services/T/B/secret" and hook["type"] == "application/json"
    assert "only 3 GiB left" in hook["json"]["text"]


def test_notify_reports_unreachable_channels_without_raising():
    s = NotifySettings(smtp_host="127.0.0.1", smtp_port=1, smtp_to=("a@lab.org",),
                       slack_webhook=Secret("http://127.0.0.1:1/hook-secret-xyz"))
    res = notify.notify(s, "x", "y")
    assert res.sent == [] and len(res.errors) == 2
    assert not any("hook-secret-xyz" in e for e in res.errors)


def test_nightly_quarantines_stale_temp_files_then_summarises_the_orphans(tmp_path, server):
    """The nightly workflow without the CLI: the temp step goes through the orphans quarantine, and the
    orphan summary that follows sees the temp directory clean."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    stale = tmp / "stale.part"
    stale.write_bytes(b"12345")
    _old(stale, 30)
    fresh = tmp / "fresh.part"
    fresh.write_bytes(b"x")
    cfg = parse_config(f'state_dir: "{tmp_path / "state"}"\naudit_log: "{tmp_path / "audit.jsonl"}"\n'
                       f'maintenance:\n  temp_dirs: ["{tmp}"]\n')
    db = Database(server.settings)
    try:
        out = maintenance.run_nightly(cfg, db, backup=False, orphans=True)
    finally:
        db.close()
    assert out.problems == [] and out.notified == []
    assert "temp clean: quarantined 1 files (5 bytes)" in out.report[0]
    assert not stale.exists() and fresh.exists()
    assert _quarantined(tmp_path).get("stale.part") == b"12345"
    (summary,) = [r for r in out.report if r.startswith("orphans:")]
    assert f"dir:{tmp}: 0 orphans, 0 bytes" in summary
