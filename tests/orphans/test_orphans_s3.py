"""The same 0.14 store on a local S3 server (moto, 127.0.0.1): scan, quarantine, restore, purge."""

from __future__ import annotations

import time

import pytest
from orphans_lab import make_config

from djtui.domain import stores as ds
from djtui.services.database import Database
from djtui.services.orphans import OrphanService

boto3 = pytest.importorskip("boto3")




def test_s3_store_scan_quarantine_restore_purge(server, tmp_path, legacy_lab, s3_endpoint):
    client = boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    bucket = f"lab-{legacy_lab.schema.replace('_', '-')}"
    client.create_bucket(Bucket=bucket)
    young = set()
    for p in legacy_lab.location.rglob("*"):
        if p.is_file():
            rel = p.relative_to(legacy_lab.location).as_posix()
            client.put_object(Bucket=bucket, Key=f"loc/{rel}", Body=p.read_bytes())
            if p.stat().st_mtime > time.time() - 3600:
                young.add(rel)
    cfg = make_config(server, tmp_path, (
        f"stores:\n  main:\n    protocol: s3\n    location: loc\n    endpoint: {s3_endpoint}\n"
        f"    bucket: {bucket}\n    access_key: testing\n    secret_key: testing\n    secure: false\n"
        "orphans:\n  grace_hours: 0\n  max_share: 0.5\n"))
    db = Database(server.settings)
    try:
        svc = OrphanService(cfg, db)
        src = f"external:{legacy_lab.schema}:main"
        result = svc.scan(svc.resolve(src))
        expected = {k: set(v) for k, v in legacy_lab.expected.items()}
        expected[ds.UNTRACKED_OBJECT] |= young  # on S3 every object is fresh: grace 0 here
        got: dict[str, set[str]] = {}
        for i in result.items:
            got.setdefault(i.reason, set()).add(i.path)
        assert got == expected
        assert svc.scan(svc.resolve(f"external:{legacy_lab.schema_v2}:main")).items == ()

        done = svc.quarantine_source(src, dry_run=False, reasons=[ds.UNTRACKED_OBJECT])
        assert done.acted == len(expected[ds.UNTRACKED_OBJECT])
        keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
        for rel in expected[ds.UNTRACKED_OBJECT]:
            assert f"loc/{rel}" not in keys
            assert f"_djtui_quarantine/{done.batch_id}/loc/{rel}" in keys

        svc.restore(done.batch_id)
        for rel in expected[ds.UNTRACKED_OBJECT]:
            body = client.get_object(Bucket=bucket, Key=f"loc/{rel}")["Body"].read()
            assert body == (legacy_lab.location / rel).read_bytes()

        again = svc.quarantine_source(src, dry_run=False, reasons=[ds.UNTRACKED_OBJECT])
        assert [b.batch_id for b in svc.purge(0)] == [again.batch_id]
        keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
        assert not any(k.startswith("_djtui_quarantine/") for k in keys)
    finally:
        db.close()


def test_datajoint_cleaner_toml_runs_through_the_safe_path(server, tmp_path, legacy_lab, s3_endpoint, capsys):
    from orphans_lab import config_text

    from djtui.cli import main
    client = boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    bucket = f"cl-{legacy_lab.schema.replace('_', '-')}"
    client.create_bucket(Bucket=bucket)
    (untracked,) = legacy_lab.expected[ds.UNTRACKED_OBJECT]
    v2_key = None
    for p in legacy_lab.location.rglob("*"):
        rel = p.relative_to(legacy_lab.location).as_posix()
        if p.is_file() and p.stat().st_mtime < time.time() - 3600:
            client.put_object(Bucket=bucket, Key=f"objs/{rel}", Body=p.read_bytes())
            if rel.startswith(legacy_lab.schema_v2 + "/"):
                v2_key = f"objs/{rel}"
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(config_text(server, tmp_path, "orphans:\n  grace_hours: 0\n  max_share: 0.5\n"))
    toml = tmp_path / "datajoint-cleaner.toml"
    toml.write_text(
        f'[database_servers.lab]\nhost = "127.0.0.1:{server.port}"\nuser = "djadmin"\n'
        f'password = "{server.password.reveal()}"\n\n'
        f'[storage_servers.minio.local]\nendpoint = "{s3_endpoint}"\naccess_key = "testing"\n'
        'secret_key = "testing"\nsecure = false\n\n'
        f'[[cleaning_runs]]\ndatabase_server = "lab"\nschema = "{legacy_lab.schema}"\nstore = "main"\n'
        f'storage_server = "minio.local"\nbucket = "{bucket}"\nlocation = "objs"\n')
    base = ["--config", str(cfg), "orphans", "clean", "--cleaner-config", str(toml)]
    assert main([*base, "--dry-run", "--json"]) == 0
    out = capsys.readouterr()
    assert '"items": 1' in out.out and server.password.reveal() not in out.out + out.err
    assert main([*base, "--confirm", "QUARANTINE"]) == 0
    capsys.readouterr()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"objs/{untracked}" not in keys
    assert v2_key in keys  # the schema_v2 object is never an orphan of the schema
    toml.write_text("[database_servers.lab]\nhost = 'x'\n")
    assert main(base) == 2
    assert "storage_servers" in capsys.readouterr().err


def test_s3_objects_younger_than_the_grace_age_are_never_orphans(server, tmp_path, legacy_lab, s3_endpoint):
    client = boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    bucket = f"young-{legacy_lab.schema.replace('_', '-')}"
    client.create_bucket(Bucket=bucket)
    for p in legacy_lab.location.rglob("*"):
        if p.is_file():
            client.put_object(Bucket=bucket, Key=f"loc/{p.relative_to(legacy_lab.location).as_posix()}",
                              Body=p.read_bytes())
    # every object was just written: LastModified says so, whatever the files' mtimes were
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert all(time.time() - o["LastModified"].timestamp() < 600 for o in listed)
    cfg = make_config(server, tmp_path, (
        f"stores:\n  main:\n    protocol: s3\n    location: loc\n    endpoint: {s3_endpoint}\n"
        f"    bucket: {bucket}\n    access_key: testing\n    secret_key: testing\n    secure: false\n"
        "orphans:\n  grace_hours: 1\n  max_share: 0.9\n"))
    db = Database(server.settings)
    try:
        svc = OrphanService(cfg, db)
        src = f"external:{legacy_lab.schema}:main"
        young = svc.scan(svc.resolve(src))
        reasons = {i.reason for i in young.items}
        assert ds.UNTRACKED_OBJECT not in reasons and ds.ZERO_BYTE not in reasons
        assert svc.quarantine_source(src, dry_run=True, reasons=[ds.UNTRACKED_OBJECT, ds.ZERO_BYTE]).acted == 0

        # two hours later the same objects are past the grace age: now they are orphans
        later = OrphanService(cfg, db, now=lambda: time.time() + 2 * 3600)
        old = {i.path for i in later.scan(later.resolve(src)).items if i.reason == ds.UNTRACKED_OBJECT}
        assert legacy_lab.expected[ds.UNTRACKED_OBJECT] < old  # plus the in-flight one, old by then too
        assert {i.path for i in later.scan(later.resolve(src)).items if i.reason == ds.ZERO_BYTE} == \
            legacy_lab.expected[ds.ZERO_BYTE]
        # and the re-check at the moment of action applies the same rule: `now` is back to the real time
        keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
        (untracked,) = legacy_lab.expected[ds.UNTRACKED_OBJECT]
        done = svc.quarantine_source(src, dry_run=False, only=[f"{ds.UNTRACKED_OBJECT}:{untracked}"])
        assert done.files == 0 and {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]} == keys
        # an empty object past the grace age goes through the S3 quarantine and comes back
        (zero,) = legacy_lab.expected[ds.ZERO_BYTE]
        moved = later.quarantine_source(src, dry_run=False, reasons=[ds.ZERO_BYTE])
        assert moved.files == 1 and f"loc/{zero}" not in {o["Key"] for o in client.list_objects_v2(
            Bucket=bucket)["Contents"]}
        later.restore(moved.batch_id)
        assert client.get_object(Bucket=bucket, Key=f"loc/{zero}")["Body"].read() == b""
    finally:
        db.close()
