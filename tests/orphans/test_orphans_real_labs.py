"""Issue 12: orphans on real labs' configs and layouts (the cleaner's port, 2.x sidecars, store keys,
managed-directory layouts, batches restorable from what their manifest holds)."""

from __future__ import annotations

import json
import uuid

import pytest
from orphans_lab import config_text, ext_ddl, make_config, put

from djtui.config import ConfigError, datajoint_stores, parse_config
from djtui.domain import stores as ds
from djtui.services.database import Database
from djtui.services.orphans import OrphanService, cleaner_service
from djtui.services.servers.mariadb import PrivateServer


@pytest.fixture
def db(server):
    d = Database(server.settings)
    yield d
    d.close()


def reasons(items) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for i in items:
        out.setdefault(i.reason, set()).add(i.path)
    return out


# --- 1. the cleaner TOML's port ----------------------------------------------------------------------


def _toml_data(host: str, port=None) -> dict:
    server = {"host": host, "user": "u", "password": "p"}
    if port is not None:
        server["port"] = port
    return {"database_servers": {"lab": server},
            "storage_servers": {"minio": {"m": {"endpoint": "e:9000", "access_key": "a", "secret_key": "s"}}},
            "cleaning_runs": [{"database_server": "lab", "schema": "s", "store": "main", "storage_server": "minio.m",
                               "bucket": "b", "location": "l"}]}


def test_cleaner_toml_port_is_read_as_dj_cleaner_passes_it_to_pymysql(tmp_path):
    (run,) = ds.parse_cleaner_config(_toml_data("db.lab.org", 3307))
    assert (run.db_host, run.db_port) == ("db.lab.org", 3307)
    svc = cleaner_service(make_config_stub(tmp_path), run)
    assert (svc.db.settings.host, svc.db.settings.port) == ("db.lab.org", 3307)  # not 3306
    assert ds.parse_cleaner_config(_toml_data("db.lab.org:3310"))[0].db_port == 3310
    assert ds.parse_cleaner_config(_toml_data("db.lab.org"))[0].db_port == 3306
    for bad in ("x", 0, True):
        with pytest.raises(ValueError, match=r"database_servers\.lab\.port"):
            ds.parse_cleaner_config(_toml_data("h", bad))
    with pytest.raises(ValueError, match="two ports"):
        ds.parse_cleaner_config(_toml_data("h:3310", 3307))
    # dj-cleaner hands a server's table to pymysql whole: a socket is where it connects, other keys warn
    data = _toml_data("h", 3307)
    data["database_servers"]["lab"].update(unix_socket="/run/db.sock", charset="utf8mb4")
    data["storage_servers"]["minio"]["m"]["region"] = "eu"
    data["logging"] = {"level": "INFO"}
    assert ds.parse_cleaner_config(data)[0].db_socket == "/run/db.sock"
    assert cleaner_service(make_config_stub(tmp_path), ds.parse_cleaner_config(data)[0]).db.settings.socket == \
        "/run/db.sock"
    assert ds.cleaner_config_warnings(data) == [
        "`logging` is not read by djtui (ignored)", "`database_servers.lab.charset` is not read by djtui (ignored)",
        "`storage_servers.minio.m.region` is not read by djtui (ignored)"]


def make_config_stub(tmp_path):
    return parse_config(f"state_dir: {tmp_path}/state\ndatabase:\n  use_datajoint_config: false\n")


boto3 = pytest.importorskip("boto3")




@pytest.fixture(scope="module")
def other_server(tmp_path_factory):
    """A second private server: the one djtui's own config names (never the machine's own)."""
    srv = PrivateServer(tmp_path_factory.mktemp("other"), buffer_pool_mb=64)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _lab_on(conn, db: str, live: list[uuid.UUID]) -> None:
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}`")
        cur.execute(ext_ddl(db, "main"))
        cur.execute(f"CREATE TABLE `{db}`.rec (id INT PRIMARY KEY, data BINARY(16) NULL, CONSTRAINT rec_data "
                    f"FOREIGN KEY (data) REFERENCES `~external_main` (hash)) ENGINE=InnoDB")
        for n, h in enumerate(live):
            cur.execute(f"INSERT INTO `{db}`.`~external_main` (hash, size, timestamp) "
                        "VALUES (%s, 4, NOW() - INTERVAL 3 HOUR)", (h.bytes,))
            cur.execute(f"INSERT INTO `{db}`.rec VALUES (%s, %s)", (n, h.bytes))


def test_clean_acts_on_the_toml_server_port_then_restores_from_its_manifest(server, other_server, admin_conn,
                                                                          schema_name, tmp_path, s3_endpoint,
                                                                          capsys):
    """The TOML names server A by host and port; djtui's own config names server B. The object that only
    B's rows track is an orphan on A: it must go (A is where the run acts), and B must stay untouched.
    The batch then restores with no store in djtui's config: the manifest holds where, the TOML the keys."""
    from djtui.cli import main
    client = boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    bucket = f"port-{schema_name.replace('_', '-')}"
    client.create_bucket(Bucket=bucket)
    live, only_b = uuid.uuid4(), uuid.uuid4()
    _lab_on(admin_conn, schema_name, [live])  # A: the TOML's server
    b_conn = other_server.connect()
    try:
        _lab_on(b_conn, schema_name, [live, only_b])  # B: djtui's own config's server
    finally:
        b_conn.close()
    body = b"orphan on A, live on B"
    for h, data in ((live, b"live"), (only_b, body)):
        client.put_object(Bucket=bucket, Key=f"objs/{ds.legacy_blob_path(schema_name, h)}", Body=data)
    cfg = tmp_path / "djtui.yaml"  # no stores: at all
    cfg.write_text(config_text(other_server, tmp_path, "orphans:\n  grace_hours: 0\n  max_share: 0.9\n"))
    cfg.chmod(0o600)
    toml = tmp_path / "datajoint-cleaner.toml"
    toml.write_text(
        f'[database_servers.lab]\nhost = "127.0.0.1"\nport = {server.port}\nuser = "djadmin"\n'
        f'password = "{server.password.reveal()}"\n\n'
        f'[storage_servers.minio.local]\nendpoint = "{s3_endpoint}"\naccess_key = "testing"\n'
        'secret_key = "testing"\nsecure = false\n\n'
        f'[[cleaning_runs]]\ndatabase_server = "lab"\nschema = "{schema_name}"\nstore = "main"\n'
        f'storage_server = "minio.local"\nbucket = "{bucket}"\nlocation = "objs"\n')
    assert main(["--config", str(cfg), "orphans", "clean", "--cleaner-config", str(toml), "--confirm",
                 "QUARANTINE", "--json"]) == 0
    out = capsys.readouterr()
    (run,) = json.loads(out.out)["runs"]
    assert run["items"] == 1
    assert f"acting on server 127.0.0.1:{server.port} (MariaDB" in out.err or \
        f"acting on server 127.0.0.1:{server.port} (MySQL" in out.err
    assert "user djadmin@" in out.err and server.password.reveal() not in out.out + out.err
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"objs/{ds.legacy_blob_path(schema_name, only_b)}" not in keys
    assert f"objs/{ds.legacy_blob_path(schema_name, live)}" in keys
    b_conn = other_server.connect()
    try:
        with b_conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{schema_name}`.`~external_main`")
            assert cur.fetchone()[0] == 2  # B untouched
    finally:
        b_conn.close()

    # the manifest says where the batch lives, never a secret
    manifest = (tmp_path / "state" / "quarantine" / run["batch"] / "manifest.json").read_text()
    spec = json.loads(manifest)["store_spec"]
    assert spec == {"protocol": "s3", "endpoint": s3_endpoint, "bucket": bucket, "location": "objs",
                    "secure": False}
    assert "testing" not in manifest and server.password.reveal() not in manifest
    # without keys it says where to get them (not `protocol: file`)
    assert main(["--config", str(cfg), "orphans", "restore", run["batch"]]) == 2
    err = capsys.readouterr().err
    assert "--cleaner-config" in err and "protocol: file" not in err
    assert main(["--config", str(cfg), "orphans", "restore", run["batch"], "--cleaner-config", str(toml)]) == 0
    capsys.readouterr()
    got = client.get_object(Bucket=bucket, Key=f"objs/{ds.legacy_blob_path(schema_name, only_b)}")["Body"].read()
    assert got == body


# --- 2. DataJoint 2.x folder objects and their manifest --------------------------------------------------


def _json_table(conn, db: str, values: list[dict]) -> None:
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}`")
        cur.execute(f"CREATE TABLE `{db}`.rec (id INT PRIMARY KEY, obj JSON)")
        for n, v in enumerate(values):
            cur.execute(f"INSERT INTO `{db}`.rec VALUES (%s, %s)", (n, json.dumps(v)))


def test_2x_folder_manifest_lives_and_goes_with_its_object(server, db, admin_conn, schema_name, tmp_path):
    loc = tmp_path / "s2"
    live = ds.schema_path(schema_name, "rec", "id=1", "obj_tok1")
    dead = ds.schema_path(schema_name, "rec", "id=2", "obj_tok2")
    for folder in (live, dead):
        put(loc, f"{folder}/a.bin", b"a")
        put(loc, f"{folder}/sub/b.bin", b"b")
        put(loc, f"{folder}.manifest.json", b'{"files": []}')
    put(loc, "datajoint_store.json", b"{}")
    _json_table(admin_conn, schema_name, [{"path": live, "store": "s2", "schema": schema_name}])
    svc = OrphanService(make_config(server, tmp_path, f"stores:\n  s2:\n    protocol: file\n    location: {loc}\n"
                                    "orphans:\n  max_share: 0.9\n"), db)
    r = svc.scan(svc.resolve("store:s2"))
    assert reasons(r.items) == {ds.UNTRACKED_OBJECT: {f"{dead}/a.bin", f"{dead}/sub/b.bin",
                                                      f"{dead}.manifest.json"}}
    done = svc.quarantine_source("store:s2", dry_run=False)
    assert done.files == 3
    assert (loc / f"{live}.manifest.json").read_bytes() == b'{"files": []}'
    assert not (loc / f"{dead}.manifest.json").exists() and (loc / "datajoint_store.json").exists()
    svc.restore(done.batch_id)
    assert (loc / f"{dead}.manifest.json").exists()


# --- 4. store settings keys ------------------------------------------------------------------------------


def test_2x_store_prefixes_change_where_djtui_looks(server, db, admin_conn, schema_name, tmp_path):
    loc, old = tmp_path / "deep", tmp_path / "pre231"
    live_h, dead_h = ds.content_hash(b"live"), ds.content_hash(b"dead")
    live = ds.hash_path(schema_name, live_h, prefix="blobs", folds=(2, 3))
    put(loc, live, b"live")
    put(loc, ds.hash_path(schema_name, dead_h, prefix="blobs", folds=(2, 3)), b"dead")
    put(loc, ds.schema_path(schema_name, "rec", "id=9", "x.npy", prefix="objects"), b"npy")
    put(loc, "_hash/elsewhere/not-this-stores-section", b"?")
    # a store written by 2.x before 2.3.1: schema-addressed objects at {schema}/... (schema_prefix "")
    legacy_live = f"{schema_name}/rec/id=1/x.npy"
    put(old, legacy_live, b"npy")
    put(old, f"{schema_name}/rec/id=3/x.npy", b"npy")
    put(old, "datajoint_store.json", b"{}")
    put(old, "_hash/other/abc", b"?")  # the hash section with another prefix list: not schema objects
    _json_table(admin_conn, schema_name, [{"hash": live_h, "path": live, "store": "deep", "schema": schema_name},
                                          {"path": legacy_live, "store": "old", "schema": schema_name}])
    svc = OrphanService(make_config(server, tmp_path, (
        f"stores:\n  deep:\n    protocol: file\n    location: {loc}\n    hash_prefix: blobs\n"
        "    schema_prefix: objects\n    subfolding: [2, 3]\n"
        f"  old:\n    protocol: file\n    location: {old}\n    schema_prefix: ''\n    hash_prefix: _hash\n"
        "orphans:\n  max_share: 0.9\n")), db)
    assert reasons(svc.scan(svc.resolve("store:deep")).items) == {ds.UNTRACKED_OBJECT: {
        ds.hash_path(schema_name, dead_h, prefix="blobs", folds=(2, 3)),
        ds.schema_path(schema_name, "rec", "id=9", "x.npy", prefix="objects")}}
    got = reasons(svc.scan(svc.resolve("store:old")).items)[ds.UNTRACKED_OBJECT]
    assert f"{schema_name}/rec/id=3/x.npy" in got and legacy_live not in got and "datajoint_store.json" not in got


def test_014_subfolding_changes_where_djtui_looks(server, db, admin_conn, schema_name, tmp_path):
    loc = tmp_path / "store"
    live, unused, stray = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema_name}`")
        cur.execute(ext_ddl(schema_name, "main"))
        cur.execute(f"CREATE TABLE `{schema_name}`.rec (id INT PRIMARY KEY, data BINARY(16) NULL, CONSTRAINT "
                    "rec_data FOREIGN KEY (data) REFERENCES `~external_main` (hash)) ENGINE=InnoDB")
        for h in (live, unused):
            cur.execute(f"INSERT INTO `{schema_name}`.`~external_main` (hash, size, timestamp) "
                        "VALUES (%s, 4, NOW() - INTERVAL 3 HOUR)", (h.bytes,))
        cur.execute(f"INSERT INTO `{schema_name}`.rec VALUES (1, %s)", (live.bytes,))
    for h in (live, unused, stray):
        put(loc, ds.legacy_blob_path(schema_name, h, (1,)), b"data")
    svc = OrphanService(make_config(server, tmp_path, (
        f"stores:\n  main:\n    protocol: file\n    location: {loc}\n    subfolding: [1]\n    stage: /tmp/stage\n"
        "orphans:\n  max_share: 0.9\n")), db)
    r = svc.scan(svc.resolve(f"external:{schema_name}:main"))
    assert reasons(r.items) == {ds.UNUSED_ROW: {ds.legacy_blob_path(schema_name, unused, (1,))},
                                ds.UNTRACKED_OBJECT: {ds.legacy_blob_path(schema_name, stray, (1,))}}


def test_datajoint_store_settings_load_unchanged_and_unknown_keys_warn(tmp_path):
    cfg = parse_config(
        "stores:\n  raw:\n    protocol: file\n    location: /data/raw\n    subfolding: [2, 2]\n    stage: /stage\n"
        "  new:\n    protocol: s3\n    location: lab\n    endpoint: s3:9000\n    bucket: b\n    hash_prefix: h\n"
        "    schema_prefix: s\n    filepath_prefix: f\n    partition_pattern: '{subject}'\n    token_length: 8\n"
        "    proxy_server: null\n    project_name: lab\n    from_the_future: 1\n", source="cfg.yaml")
    raw, new = cfg.stores
    assert raw.legacy_folds == (2, 2) and raw.stage == "/stage"
    assert (new.hash_prefix, new.schema_prefix, new.filepath_prefix) == ("h", "s", "f")
    assert any("`from_the_future`" in w for w in cfg.warnings)
    with pytest.raises(ConfigError, match="subfolding"):
        parse_config("stores:\n  x:\n    protocol: file\n    location: /x\n    subfolding: two\n")

    (tmp_path / "dj_local_conf.json").write_text(json.dumps({"stores": {
        "raw": {"protocol": "file", "location": "/data/raw", "subfolding": [1], "stage": "/stage", "mystery": 2}}}))
    found, warnings = datajoint_stores(cwd=tmp_path, home=tmp_path / "nohome", env={})
    (raw,) = found
    assert raw.legacy_folds == (1,) and raw.stage == "/stage"
    assert any("`mystery`" in w for w in warnings)


# --- 3. managed directories: by path, in the table's layout ------------------------------------------------


def test_a_copy_with_a_tracked_name_in_the_wrong_place_is_untracked(server, db, admin_conn, schema_name, tmp_path):
    d, raw = tmp_path / "analysis", tmp_path / "raw"
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema_name}`")
        cur.execute(f"CREATE TABLE `{schema_name}`.analysis_nwbfile (analysis_file_name VARCHAR(64) PRIMARY KEY)")
        cur.execute(f"INSERT INTO `{schema_name}`.analysis_nwbfile VALUES ('j1620210710_ABCD.nwb'), "
                    "('old_FLAT.nwb')")
        cur.execute(f"CREATE TABLE `{schema_name}`.nwbfile (nwb_file_name VARCHAR(64) PRIMARY KEY)")
        cur.execute(f"INSERT INTO `{schema_name}`.nwbfile VALUES ('j1620210710_.nwb')")
    put(d, "j1620210710/j1620210710_ABCD.nwb", b"x")  # Spyglass's place
    put(d, "old_FLAT.nwb", b"x")  # Spyglass's legacy flat place
    put(d, "backup_2022/j1620210710_ABCD.nwb", b"x")  # a stray copy
    put(raw, "j1620210710_.nwb", b"x")
    put(raw, "copies/j1620210710_.nwb", b"x")
    svc = OrphanService(make_config(server, tmp_path, (
        "orphans:\n  max_share: 0.9\n  directories:\n"
        f"    - {{path: {d}, table: {schema_name}.analysis_nwbfile, column: analysis_file_name}}\n"
        f"    - {{path: {raw}, table: {schema_name}.nwbfile, column: nwb_file_name, layout: flat}}\n")), db)
    (stray,) = svc.scan(svc.resolve(f"dir:{d}")).items
    assert (stray.reason, stray.path) == (ds.UNTRACKED_FILE, "backup_2022/j1620210710_ABCD.nwb")
    assert stray.detail == (f"name is tracked by {schema_name}.analysis_nwbfile, but it belongs at "
                            "j1620210710/j1620210710_ABCD.nwb")
    assert stray.to_json()["detail"] == stray.detail
    assert {i.path for i in svc.scan(svc.resolve(f"dir:{raw}")).items} == {"copies/j1620210710_.nwb"}
    with pytest.raises(ConfigError, match="layout"):
        parse_config(f"orphans:\n  directories:\n    - {{path: {d}, table: a.b, column: c, layout: nested}}\n")


def test_layout_paths_follow_spyglass_rule():
    assert ds.spyglass_analysis_dir("j1620210710_ABCD.nwb") == "j1620210710"
    assert ds.spyglass_analysis_dir("a_b_C.nwb") == "a_b"
    assert ds.layout_paths("j1620210710_ABCD.nwb", ds.SPYGLASS_ANALYSIS) == (
        "j1620210710/j1620210710_ABCD.nwb", "j1620210710_ABCD.nwb")
    assert ds.layout_paths("sub/x.nwb", ds.FLAT) == ("x.nwb",)
    assert ds.layout_paths("sub/x.nwb", ds.RELATIVE) == ("sub/x.nwb",)



def test_quarantine_names_the_server_dj_variables_chose(server, table_lab, tmp_path, monkeypatch, capsys):
    """djtui's config has no database host: DataJoint's DJ_* variables name the server, so before it
    deletes anything djtui says which server answered (and where that came from)."""
    from djtui.cli import main
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for k, v in (("DJ_HOST", "127.0.0.1"), ("DJ_PORT", str(server.port)), ("DJ_USER", "djadmin"),
                 ("DJ_PASS", server.password.reveal())):
        monkeypatch.setenv(k, v)
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(f"state_dir: {tmp_path}/state\norphans:\n  max_share: 0.9\n"
                   f"  tables: [{table_lab.schema}.interval_list]\n")
    cfg.chmod(0o600)
    src = f"table:{table_lab.schema}.interval_list"
    assert main(["--config", str(cfg), "orphans", "quarantine", "--source", src, "--confirm", "QUARANTINE"]) == 0
    out = capsys.readouterr()
    assert f"acting on server 127.0.0.1:{server.port} (" in out.err and "named by environment (DJ_*)" in out.err
    assert server.password.reveal() not in out.out + out.err
    # a server djtui's own config names is djtui's to know: no line
    cfg.write_text(config_text(server, tmp_path, f"orphans:\n  tables: [{table_lab.schema}.interval_list]\n"))
    assert main(["--config", str(cfg), "orphans", "quarantine", "--source", src, "--confirm", "QUARANTINE"]) == 0
    assert "acting on server" not in capsys.readouterr().err


def test_a_filepath_column_names_the_one_place_of_its_file(server, db, admin_conn, schema_name, tmp_path):
    """Spyglass's AnalysisNwbfile also keeps ``analysis_file_abs_path: filepath@analysis``: its
    ``~external_analysis`` row says which of the layout's two places the file is at; a copy at the other
    place is untracked."""
    d = tmp_path / "analysis"
    h_sub, h_flat = uuid.uuid4(), uuid.uuid4()
    with admin_conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{schema_name}`")
        cur.execute(ext_ddl(schema_name, "analysis"))
        cur.execute(f"CREATE TABLE `{schema_name}`.analysis_nwbfile (analysis_file_name VARCHAR(64) PRIMARY KEY, "
                    "analysis_file_abs_path BINARY(16) NOT NULL, CONSTRAINT fp FOREIGN KEY (analysis_file_abs_path) "
                    "REFERENCES `~external_analysis` (hash)) ENGINE=InnoDB")
        for h, fp in ((h_sub, "alpha/alpha_SUB1.nwb"), (h_flat, "alpha_FLAT1.nwb")):
            cur.execute(f"INSERT INTO `{schema_name}`.`~external_analysis` (hash, size, filepath) VALUES (%s, 1, %s)",
                        (h.bytes, fp))
        cur.execute(f"INSERT INTO `{schema_name}`.analysis_nwbfile VALUES ('alpha_SUB1.nwb', %s), "
                    "('alpha_FLAT1.nwb', %s)", (h_sub.bytes, h_flat.bytes))
    for rel in ("alpha/alpha_SUB1.nwb", "alpha_SUB1.nwb", "alpha_FLAT1.nwb", "alpha/alpha_FLAT1.nwb"):
        put(d, rel, b"x")
    text = (f"orphans:\n  max_share: 0.9\n  directories:\n"
            f"    - {{path: {d}, table: {schema_name}.analysis_nwbfile, column: analysis_file_name}}\n")
    svc = OrphanService(make_config(server, tmp_path, f"stores:\n  analysis: {{protocol: file, location: {d}}}\n"
                                    + text), db)
    items = svc.scan(svc.resolve(f"dir:{d}")).items
    assert {i.path: i.detail for i in items} == {
        "alpha_SUB1.nwb": f"name is tracked by {schema_name}.analysis_nwbfile, but it belongs at alpha/alpha_SUB1.nwb",
        "alpha/alpha_FLAT1.nwb": f"name is tracked by {schema_name}.analysis_nwbfile, but it belongs at "
                                 "alpha_FLAT1.nwb"}
    # without the store configured, where its paths start is unknown: the layout's two places both count
    svc = OrphanService(make_config(server, tmp_path, text), db)
    assert svc.scan(svc.resolve(f"dir:{d}")).items == ()
