"""DataJoint-Cleaner 0.1 and ``djtui orphans clean --cleaner-config`` on the same TOML and the same state.

DataJoint 0.14.10 builds the state on the local S3 server through its own API: a schema ``S`` and a
schema ``S_v2`` (each a ``blob@`` and an ``attach@`` column on one S3 store), a deleted row (its
object keeps its unused row), uploads whose transaction rolled back three hours ago (objects with
no row: the real orphans), one of them the same blob as a live row of ``S_v2`` (the same UUID in two
schemas), and an upload rolled back a moment ago (in flight, younger than the grace age).

The state is copied into two buckets. djtui cleans bucket A with the TOML (and its quarantine is
restored afterwards); the real cleaner, which has no dry run, cleans bucket B with the same TOML
but for the bucket, after djtui's dry run on that very file. The cleaner's TOML names its server
with ``host`` and ``port``: the private server's port, never 3306.

Where they differ, the truth (objects under ``<location>/<schema>/`` whose UUID has no row in that
schema's ``~external_<store>``, past the grace age) decides. DataJoint-Cleaner's mistakes, each
asserted: it lists ``<location>/<schema>`` without a trailing ``/`` and so deletes ``S_v2``'s live
objects as orphans of ``S``; it maps a UUID to one path, so of the shared UUID it deletes ``S_v2``'s
live copy and leaves ``S``'s orphan; it has no grace age, so it deletes the in-flight upload.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ._stores import (
    DJ014_CONNECT,
    age_s3_objects,
    djtui,
    djtui_json,
    fk_truth_014,
    s3_client,
    s3_tree,
    write_djtui_config,
)
from .tools import run_tool, server_env

LOCATION = "labdata"

PRELUDE = DJ014_CONNECT + r"""
dj.config["stores"] = {"cloud": json.loads(os.environ["CF_STORE"])}
src = Path(os.environ["CF_SRC"])
S = os.environ["CF_SCHEMA"]


def declare(name):
    schema = dj.Schema(name)

    @schema
    class Rec(dj.Manual):
        definition = '''
        rec_id : int
        ---
        data : blob@cloud
        notes : attach@cloud
        '''

    return schema, Rec


def attach(tag, i):
    p = src / f"{tag}{i}" / "notes.txt"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"{tag} notes of {i}\n")
    return str(p)


def rolled_back(schema, table, row):
    # a make() that fails after its uploads: the rows roll back, the objects stay
    try:
        with schema.connection.transaction:
            table.insert1(row)
            raise RuntimeError("make() failed after its upload")
    except RuntimeError:
        pass
"""

BUILD = PRELUDE + r"""
s, Rec = declare(S)
v2, Rec2 = declare(S + "_v2")
Rec.insert([dict(rec_id=i, data=np.arange(8.0) * i, notes=attach("s", i)) for i in range(1, 5)])
Rec2.insert([dict(rec_id=i, data=np.arange(9.0) * i, notes=attach("v2", i)) for i in range(1, 4)])
(Rec & "rec_id = 4").delete()  # its objects keep their (unused) rows: no tool here deletes them
rolled_back(s, Rec, dict(rec_id=7, data=np.arange(5.0) + 7000, notes=attach("lost", 7)))
# the same blob as S_v2's live row 2: one UUID, an orphan copy under S and a live one under S_v2
rolled_back(s, Rec, dict(rec_id=8, data=np.arange(9.0) * 2, notes=attach("lost", 8)))
print(json.dumps({"ok": True}))
"""

YOUNG = PRELUDE + r"""
s, Rec = declare(S)
rolled_back(s, Rec, dict(rec_id=9, data=np.arange(6.0) + 9000, notes=attach("young", 9)))
print(json.dumps({"ok": True}))
"""

CLEANER = r"""
import contextlib
import io
import json
import os

from dj_cleaner import toml_cli

out = io.StringIO()
with contextlib.redirect_stdout(out):
    toml_cli.clean(["--config-file", os.environ["CF_TOML"]])
print(json.dumps({"printed": out.getvalue().splitlines()}))
"""


def cleaner_toml(server, endpoint: str, bucket: str, schema: str) -> str:
    """A DataJoint-Cleaner config as its README lays it out: one run per schema."""
    runs = "".join(
        f'\n[[cleaning_runs]]\ndatabase_server = "lab"\nschema = "{db}"\nstore = "cloud"\n'
        f'storage_server = "minio.local"\nbucket = "{bucket}"\nlocation = "{LOCATION}"\n'
        for db in (schema, schema + "_v2"))
    return (f'[database_servers.lab]\nhost = "127.0.0.1"\nport = {server.port}\nuser = "{server.settings.user}"\n'
            f'password = "{server.password.reveal()}"\n\n'
            f'[storage_servers.minio.local]\nendpoint = "{endpoint}"\naccess_key = "testing"\n'
            'secret_key = "testing"\nsecure = false\n' + runs)


@dataclass
class CleanerLab:
    schema: str
    root: Path
    home: Path
    config: Path  # djtui's YAML: the server and the orphans policy, no store
    buckets: dict[str, str]  # "a" (djtui cleans it) and "b" (the real cleaner does) -> bucket name
    tomls: dict[str, Path]  # bucket -> its TOML
    young: set[str] = field(default_factory=set)  # keys of the in-flight upload
    shared: tuple[str, str] = ("", "")  # the orphan copy under S, the live copy under S_v2
    env: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def cleaner_lab(server, s3_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("cleaner")
    schema = f"cfcl_{os.getpid()}"
    buckets = {"a": f"cfcl-a-{os.getpid()}", "b": f"cfcl-b-{os.getpid()}"}
    client = s3_client(s3_server)
    for b in buckets.values():
        client.create_bucket(Bucket=b)
    store = {"protocol": "s3", "endpoint": s3_server, "bucket": buckets["a"], "location": LOCATION,
             "access_key": "testing", "secret_key": "testing", "secure": False}
    env = server_env(server, CF_SCHEMA=schema, CF_SRC=str(root / "src"), CF_STORE=json.dumps(store))
    run_tool("dj014", BUILD, env=env)
    old = set(s3_tree(client, buckets["a"]))
    run_tool("dj014", YOUNG, env=env)
    young = set(s3_tree(client, buckets["a"])) - old
    for key in s3_tree(client, buckets["a"]):
        client.copy_object(Bucket=buckets["b"], Key=key, CopySource={"Bucket": buckets["a"], "Key": key})
    for b in buckets.values():  # everything but the in-flight upload was written three hours ago
        assert age_s3_objects(b, sorted(old), hours=3) == len(old)
    tomls = {}
    for b in buckets.values():
        tomls[b] = root / f"{b}.toml"
        tomls[b].write_text(cleaner_toml(server, s3_server, b, schema))
        tomls[b].chmod(0o600)
    config = write_djtui_config(server, root, "orphans:\n  grace_hours: 1\n  max_share: 0.5\n",
                                use_datajoint_config=False)
    lab = CleanerLab(schema, root, root / "home", config, buckets, tomls, young=young, env=env)
    # the UUID of S_v2's live row 2 has a copy under S too
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT LOWER(HEX(data)) FROM `{schema}_v2`.`rec` WHERE rec_id = 2")
            h = cur.fetchone()[0]
    finally:
        conn.close()
    (lab.shared,) = [tuple(sorted(k for k in old if k.endswith("/" + h)))]
    assert lab.shared[0].startswith(f"{LOCATION}/{schema}/") and lab.shared[1].startswith(f"{LOCATION}/{schema}_v2/")

    yield lab
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            for db in (schema + "_v2", schema):
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    finally:
        conn.close()


def require_port(lab: CleanerLab, server) -> None:
    """djtui must reach the TOML's server on its ``port``: nothing runs that would try 3306, where this
    machine runs a server of its own."""
    from djtui.config import parse_config
    from djtui.services.orphans import cleaner_service, load_cleaner_runs
    run = load_cleaner_runs(lab.tomls[lab.buckets["a"]])[0]
    svc = cleaner_service(parse_config(lab.config.read_text()), run)
    try:
        port = svc.db.settings.port
    finally:
        svc.db.close()
    if port != server.port:
        pytest.fail(f"djtui reads the cleaner TOML's server as port {port}, not `port = {server.port}` "
                    "(issue 12 defect 1): not run, it would clean against another server")


def truth(lab: CleanerLab, conn, tree: dict[str, bytes]) -> dict[str, set[str]]:
    """Per schema, the objects under ``<location>/<schema>/`` whose UUID has no row in its ``~external_cloud``."""
    out = {}
    for db in (lab.schema, lab.schema + "_v2"):
        rows, _refs = fk_truth_014(conn, db, "cloud")
        prefix = f"{LOCATION}/{db}/"
        out[db] = {k for k in tree if k.startswith(prefix) and k.rsplit("/", 1)[-1][:32] not in rows}
    return out


def test_djtui_clean_quarantines_exactly_the_old_orphans_and_restores_them(cleaner_lab, server, s3_server,
                                                                            admin_conn):
    require_port(cleaner_lab, server)
    client = s3_client(s3_server)
    b = cleaner_lab.buckets["a"]
    before = s3_tree(client, b)
    orphans = truth(cleaner_lab, admin_conn, before)
    old_orphans = orphans[cleaner_lab.schema] - cleaner_lab.young
    assert len(old_orphans) == 4 and cleaner_lab.shared[0] in old_orphans and not orphans[cleaner_lab.schema + "_v2"]
    args = ("orphans", "clean", "--cleaner-config", str(cleaner_lab.tomls[b]))
    res = djtui(cleaner_lab.config, *args, "--confirm", "QUARANTINE", "--json", cwd=cleaner_lab.root,
                home=cleaner_lab.home)
    out = json.loads(res.stdout)
    # before it acts, it says which server it reached: the TOML's, on its port
    assert f"127.0.0.1:{server.port}" in res.stdout + res.stderr
    after = s3_tree(client, b)
    moved = {k for k in set(before) - set(after)}
    assert moved == old_orphans  # never S_v2's objects, never the in-flight upload
    assert [r["items"] for r in out["runs"]] == [4, 0]
    quarantined = {k for k in set(after) - set(before)}
    assert all(k.startswith("_djtui_quarantine/") for k in quarantined) and len(quarantined) == 4
    # the batch restores from what its manifest holds (the store was never in djtui's config); the
    # secrets come from the same TOML given again, where restore takes one
    helptext = djtui(cleaner_lab.config, "orphans", "restore", "--help", cwd=cleaner_lab.root,
                     home=cleaner_lab.home).stdout
    again = ("--cleaner-config", str(cleaner_lab.tomls[b])) if "--cleaner-config" in helptext else ()
    for r in out["runs"]:
        if r.get("batch"):
            djtui_json(cleaner_lab.config, "orphans", "restore", r["batch"], *again, cwd=cleaner_lab.root,
                       home=cleaner_lab.home)
    restored = s3_tree(client, b)
    assert {k: v for k, v in restored.items() if k.startswith(LOCATION + "/")} == before


def test_djtui_dry_run_on_the_file_the_real_cleaner_runs(cleaner_lab, server, s3_server, admin_conn):
    require_port(cleaner_lab, server)
    client = s3_client(s3_server)
    b = cleaner_lab.buckets["b"]
    before = s3_tree(client, b)
    old_orphans = truth(cleaner_lab, admin_conn, before)[cleaner_lab.schema] - cleaner_lab.young
    # the same four objects as djtui quarantines on bucket A; nothing changed
    dry = djtui_json(cleaner_lab.config, "orphans", "clean", "--cleaner-config", str(cleaner_lab.tomls[b]),
                     "--dry-run", cwd=cleaner_lab.root, home=cleaner_lab.home)
    assert [r["items"] for r in dry["runs"]] == [len(old_orphans), 0] and s3_tree(client, b) == before


def test_real_cleaner_deletes_live_objects_of_schema_v2_and_the_in_flight_upload(cleaner_lab, s3_server,
                                                                                  admin_conn):
    client = s3_client(s3_server)
    b = cleaner_lab.buckets["b"]
    toml = cleaner_lab.tomls[b]
    s, v2 = cleaner_lab.schema, cleaner_lab.schema + "_v2"
    before = s3_tree(client, b)
    orphans = truth(cleaner_lab, admin_conn, before)
    old_orphans = orphans[s] - cleaner_lab.young
    v2_live = {k for k in before if k.startswith(f"{LOCATION}/{v2}/")}
    assert len(v2_live) == 6 and not orphans[v2]

    res = run_tool("cleaner", CLEANER, env={**cleaner_lab.env, "CF_TOML": str(toml)})
    deleted = set(before) - set(s3_tree(client, b))
    assert res["printed"] == [f"Deleted {len(deleted)} objects from external storage.",
                              "Deleted 0 objects from external storage."]
    # where the cleaner is right, it agrees with djtui: the old orphans of S go (but one, below)
    assert old_orphans - {cleaner_lab.shared[0]} <= deleted
    # its mistake 1: the prefix `labdata/S` without `/` lists S_v2, whose live objects have no row in S
    assert v2_live <= deleted
    # its mistake 2: one path per UUID; of the shared UUID the live S_v2 copy went, S's orphan stayed
    assert cleaner_lab.shared[1] in deleted and cleaner_lab.shared[0] not in deleted
    # its mistake 3: no grace age; the in-flight upload (its row may be on its way) went too
    assert cleaner_lab.young <= deleted
    assert deleted == (old_orphans - {cleaner_lab.shared[0]}) | v2_live | cleaner_lab.young
