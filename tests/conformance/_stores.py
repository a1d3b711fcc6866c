"""What the store conformance tests share: djtui run as its own CLI, store listings, the truth from the server.

djtui runs here exactly as a lab runs it: ``python -m djtui`` in a subprocess whose working
directory holds the lab's DataJoint config (``dj_local_conf.json`` for 0.14, ``datajoint.json``
for 2.x) and whose ``HOME`` is a scratch folder (so no one's ``~/.datajoint_config.json`` leaks in).
Its own YAML names the private server and sets the orphans policy; the stores come from the
DataJoint config, unchanged, the very file the real tool reads.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request otherwise


def write_djtui_config(server: Any, folder: Path, extra: str = "", *, use_datajoint_config: bool = True) -> Path:
    """djtui's own YAML (0600: it holds the password) beside the lab's DataJoint config."""
    path = folder / "djtui.yaml"
    path.write_text(
        f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: {server.settings.user}\n"
        f"  password: {server.password.reveal()}\n"
        f"  use_datajoint_config: {'true' if use_datajoint_config else 'false'}\n"
        f"state_dir: {folder}/state\n" + extra)
    path.chmod(0o600)
    return path


def djtui(config: Path, *args: str, cwd: Path, home: Path, check: bool = True,
          timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m djtui --config CONFIG ARGS...`` as a lab would run it from ``cwd``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "DJTUI_", "PYTHON"))}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    home.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([sys.executable, "-m", "djtui", "--config", str(config), *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"djtui {' '.join(args)} exited {res.returncode}:\n{res.stdout[-3000:]}\n"
                             f"{res.stderr[-3000:]}")
    return res


def djtui_json(config: Path, *args: str, cwd: Path, home: Path) -> Any:
    res = djtui(config, *args, "--json", cwd=cwd, home=home)
    return json.loads(res.stdout)


def by_reason(items: list[dict]) -> dict[str, set[str]]:
    """A scan's items as reason -> set of paths (rows as their key text)."""
    out: dict[str, set[str]] = {}
    for i in items:
        ident = i.get("path") or ",".join(f"{k}={v}" for k, v in sorted(i.get("key", {}).items()))
        out.setdefault(i["reason"], set()).add(ident)
    return out


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_tree(root: Path, under: str = "") -> dict[str, bytes]:
    """Every regular file below ``root/under``, as root-relative posix path -> bytes."""
    base = root / under if under else root
    if not base.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def s3_client(endpoint: str):
    import boto3
    return boto3.client("s3", endpoint_url=f"http://{endpoint}", aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1")


def s3_tree(client: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object of ``bucket`` under ``prefix`` (as given: no slash added), key -> bytes."""
    out: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", ()):
            out[o["Key"]] = client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def age_s3_objects(bucket: str, keys: list[str] | None = None, *, hours: float) -> int:
    """Backdate objects of the in-process moto server, as ``os.utime`` backdates files.

    The moto server of the ``s3_server`` fixture runs in this process, so its objects' ``LastModified``
    can be set to the past: the only way to have S3 objects older than a grace age without waiting.
    ``keys=None`` ages every object of the bucket. Returns how many were aged.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    b = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[bucket]
    wanted = set(b.keys.keys()) if keys is None else set(keys)
    then = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(hours=hours)
    n = 0
    for k in wanted:
        for obj in b.keys.getlist(k):
            obj.last_modified = then
            n += 1
    return n


def fk_truth_014(conn: Any, db: str, store: str) -> tuple[dict[str, dict], set[str]]:
    """The truth for one 0.14 store table, from the server alone.

    Returns every ``~external_<store>`` row (32-hex hash -> its attachment name and filepath) and the
    hashes that some row of some table references through a foreign key onto that table: the
    referencing columns come from ``information_schema.key_column_usage``, NULLs reference nothing.
    """
    table = f"~external_{store}"
    with conn.cursor() as cur:
        cur.execute(f"SELECT LOWER(HEX(hash)), attachment_name, filepath FROM `{db}`.`{table}`")
        rows = {h: {"attachment_name": a, "filepath": f} for h, a, f in cur.fetchall()}
        cur.execute("SELECT table_schema, table_name, column_name FROM information_schema.key_column_usage "
                    "WHERE referenced_table_schema = %s AND referenced_table_name = %s", (db, table))
        refs: set[str] = set()
        for s, t, c in cur.fetchall():
            cur.execute(f"SELECT DISTINCT LOWER(HEX(`{c}`)) FROM `{s}`.`{t}` WHERE `{c}` IS NOT NULL")
            refs |= {r[0] for r in cur.fetchall()}
    return rows, refs


def hex_of(u: str) -> str:
    return uuid.UUID(u).hex


# the start of every script run in the dj014 venv: DataJoint 0.14 connected to the suite's server from DJ_*
DJ014_CONNECT = r"""
import json
import os
from pathlib import Path

import datajoint as dj
import numpy as np

dj.config["database.host"] = os.environ["DJ_HOST"]
dj.config["database.port"] = int(os.environ["DJ_PORT"])
dj.config["database.user"] = os.environ["DJ_USER"]
dj.config["database.password"] = os.environ["DJ_PASS"]
dj.config["database.use_tls"] = False
dj.config["safemode"] = False
"""
