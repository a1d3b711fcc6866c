"""S3 listing of a 0.14 schema: one paginated listing against a listing by prefix in parallel.

``python -m bench orphans_s3_list [--objects N] [--workers 8] [--rounds 5]``. The local S3 server
(moto, as the tests use) runs in a process of its own so it does not share this one's GIL; the two
ways alternate, round by round, and both must list the same keys.
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str]) -> int:
    import boto3

    ap = argparse.ArgumentParser(prog="python -m bench orphans_s3_list")
    ap.add_argument("--objects", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    port = _free_port()
    srv = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                              aws_secret_access_key="testing", region_name="us-east-1")
        for _ in range(100):
            try:
                client.list_buckets()
                break
            except Exception:
                time.sleep(0.1)
        client.create_bucket(Bucket="bench")
        schema = "benchlab"
        keys = []
        for i in range(a.objects):
            h = hashlib.md5(f"s3:{i}".encode()).hexdigest()
            keys.append(f"loc/{schema}/{h[:2]}/{h[2:4]}/{h}")
        t0 = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: client.put_object(Bucket="bench", Key=k, Body=b""), keys))
        print(f"put {a.objects} objects in {time.perf_counter() - t0:.0f}s", flush=True)
        from djtui.config import parse_config
        from djtui.services.orphans.streamed import parallel_list
        from djtui.services.stores import open_store
        cfg = parse_config(f"stores:\n  main:\n    protocol: s3\n    location: loc\n    endpoint: 127.0.0.1:{port}\n"
                           "    bucket: bench\n    access_key: testing\n    secret_key: testing\n    secure: false\n")
        store = open_store(next(st for st in cfg.stores if st.name == "main"))
        one, par = [], []
        for r in range(a.rounds):
            ways = [("one", lambda: store.list(schema)),
                    ("par", lambda: parallel_list(store, schema, cancelled=lambda: False, workers=a.workers))]
            if r % 2:
                ways.reverse()
            for name, fn in ways:
                t0 = time.perf_counter()
                got = sorted(o.path for o in fn())
                dt = time.perf_counter() - t0
                assert got == sorted(k[len("loc/"):] for k in keys), name
                (one if name == "one" else par).append(dt)
        m1, mp = statistics.median(one), statistics.median(par)
        ratios = sorted(o / p for o, p in zip(one, par, strict=True))
        print(f"one listing {m1:.2f}s (range {min(one):.2f}-{max(one):.2f}), by prefix x{a.workers} {mp:.2f}s "
              f"(range {min(par):.2f}-{max(par):.2f}); speed-up median {ratios[len(ratios) // 2]:.2f}x "
              f"(paired range {ratios[0]:.2f}-{ratios[-1]:.2f}) over {a.rounds} alternating rounds")
    finally:
        srv.terminate()
        srv.wait(10)
    return 0
