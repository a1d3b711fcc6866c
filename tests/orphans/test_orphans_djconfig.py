"""Stores come from the lab's DataJoint config too (0.14 and 2.x layouts); djtui's own `stores:` wins."""

from __future__ import annotations

import json

from orphans_lab import config_text

from djtui.cli import main
from djtui.config import Secret, datajoint_stores, load_config


def write(path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)


def test_014_files_in_datajoint_order(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "work"
    write(home / ".datajoint_config.json", {"stores": {
        "main": {"protocol": "file", "location": "/global/main"},
        "only_home": {"protocol": "file", "location": "/global/only"}}})
    write(cwd / "dj_local_conf.json", {"database.host": "db", "stores": {
        "main": {"protocol": "file", "location": "/local/main"},
        "raw": {"protocol": "s3", "endpoint": "minio:9000", "bucket": "lab", "location": "raw",
                "access_key": "AK", "secret_key": "SK"},
        "cloud": {"protocol": "gcs", "bucket": "b", "location": "x"},
        "rel": {"protocol": "file", "location": "relative/dir"}}})
    stores, warnings = datajoint_stores(cwd=cwd, home=home, env={})
    by = {s.name: s for s in stores}
    assert set(by) == {"main", "only_home", "raw"}
    assert by["main"].location == "/local/main"  # dj_local_conf.json over the home file, as DataJoint does
    raw = by["raw"]
    assert (raw.protocol, raw.endpoint, raw.bucket, raw.location) == ("s3", "minio:9000", "lab", "raw")
    assert raw.secret_key == Secret("SK") and "SK" not in repr(raw)
    assert raw.secure is False  # 0.14's default
    assert any("stores.cloud" in w and "gcs" in w for w in warnings)
    assert any("stores.rel" in w and "absolute" in w for w in warnings)


def test_2x_datajoint_json_with_secrets_and_flat_keys(tmp_path):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    write(project / "datajoint.json", {
        "database": {"host": "db"},
        "stores": {"default": "main", "main": {"protocol": "s3", "endpoint": "s3.example.org", "bucket": "lab",
                                               "location": "dj"}},
        "stores.scratch.protocol": "file", "stores.scratch.location": "/scratch/dj"})
    write(project / ".secrets" / "stores.main.access_key", "AK2\n")
    write(project / ".secrets" / "stores.main.secret_key", "SK2\n")
    cwd = project / "src" / "analysis"
    cwd.mkdir(parents=True)
    stores, warnings = datajoint_stores(cwd=cwd, home=tmp_path / "nohome", env={})
    by = {s.name: s for s in stores}
    assert set(by) == {"main", "scratch"} and warnings == ()  # `default: "main"` is a pointer, not a store
    assert by["main"].access_key == Secret("AK2") and by["main"].secret_key == Secret("SK2")
    assert by["main"].secure is True  # 2.x defaults to HTTPS
    assert (by["scratch"].protocol, by["scratch"].location) == ("file", "/scratch/dj")
    # DJ_STORES (2.3) replaces the stores of the files
    env = {"DJ_STORES": json.dumps({"envstore": {"protocol": "file", "location": "/env"}})}
    stores, _ = datajoint_stores(cwd=cwd, home=tmp_path / "nohome", env=env)
    assert [s.name for s in stores] == ["envstore"]


def test_config_file_stores_win_and_scan_uses_the_rest(server, tmp_path, legacy_lab, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / ".git").mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DJ_STORES", raising=False)
    write(work / "dj_local_conf.json", {"stores": {
        "main": {"protocol": "file", "location": str(legacy_lab.location)},
        "other": {"protocol": "file", "location": "/from/datajoint"}}})
    text = config_text(server, tmp_path, "stores:\n  other:\n    protocol: file\n    location: /from/djtui\n")
    cfg_path = tmp_path / "djtui.yaml"
    cfg_path.write_text(text.replace("use_datajoint_config: false", "use_datajoint_config: true"))
    cfg_path.chmod(0o600)
    cfg = load_config(cfg_path)
    assert {s.name: s.location for s in cfg.stores} == {"other": "/from/djtui", "main": str(legacy_lab.location)}
    # the store only DataJoint's config names is scanned like one of djtui's own
    assert main(["--config", str(cfg_path), "orphans", "scan", "--json"]) == 0
    names = {s["name"]: s["orphans"] for s in json.loads(capsys.readouterr().out)["sources"]}
    assert names[f"external:{legacy_lab.schema}:main"] == 4
    # and with use_datajoint_config: false, DataJoint's files are left alone
    cfg_path.write_text(text)
    assert [s.name for s in load_config(cfg_path).stores] == ["other"]
    write(work / "dj_local_conf.json", "{not json")
    cfg_path.write_text(text.replace("use_datajoint_config: false", "use_datajoint_config: true"))
    assert main(["--config", str(cfg_path), "orphans", "scan"]) == 2
    assert "dj_local_conf.json" in capsys.readouterr().err
