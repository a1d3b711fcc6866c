"""S3 listing of a 0.14 schema: one paginated listing, a listing by prefix in parallel, and the adaptive
listing djtui uses (one listing that goes by prefix once the store looks large).

``python -m bench orphans_s3_list [--objects N] [--workers 8] [--rounds 5] [--per-prefix 1000]``. The local
S3 server (moto, as the tests use) runs in a process of its own so it does not share this one's GIL; the
three ways take turns, the order rotating round by round, and all must list the same keys. The adaptive
way is reported against one listing, with the way it took and why (from the command log);
``--per-prefix`` lowers its threshold to time a switch on a store this small.
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
    ap.add_argument("--per-prefix", type=int, default=None, help="the adaptive way's threshold (default: djtui's)")
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
        from djtui.services import commandlog
        from djtui.services.orphans.streamed import PREFIX_MIN, adaptive_list, parallel_list
        from djtui.services.stores import open_store
        cfg = parse_config(f"stores:\n  main:\n    protocol: s3\n    location: loc\n    endpoint: 127.0.0.1:{port}\n"
                           "    bucket: bench\n    access_key: testing\n    secret_key: testing\n    secure: false\n")
        store = open_store(next(st for st in cfg.stores if st.name == "main"))
        never = lambda: False  # noqa: E731
        per_prefix = a.per_prefix or PREFIX_MIN
        ways = {"one": lambda: store.list(schema),
                "par": lambda: parallel_list(store, schema, cancelled=never, workers=a.workers),
                "ada": lambda: adaptive_list(store, schema, (2, 2), cancelled=never, workers=a.workers,
                                             per_prefix=per_prefix)}
        times: dict[str, list[float]] = {w: [] for w in ways}
        want = sorted(k[len("loc/"):] for k in keys)
        said = ""
        for r in range(a.rounds):
            order = list(ways)[r % 3:] + list(ways)[:r % 3]
            for name in order:
                commandlog.clear()
                t0 = time.perf_counter()
                got = sorted(o.path for o in ways[name]())
                times[name].append(time.perf_counter() - t0)
                assert got == want, name
                if name == "ada":
                    said = next(e.text for e in commandlog.entries() if "s3 list" in e.text)
        one, par, ada = times["one"], times["par"], times["ada"]

        def ratio(xs: list[float]) -> str:
            rs = sorted(o / x for o, x in zip(one, xs, strict=True))
            return f"median {rs[len(rs) // 2]:.2f}x (paired range {rs[0]:.2f}-{rs[-1]:.2f})"

        def fig(xs: list[float]) -> str:
            return f"{statistics.median(xs):.2f}s (range {min(xs):.2f}-{max(xs):.2f})"

        print(f"{a.objects} objects, {a.rounds} rounds, order rotating: one listing {fig(one)}, "
              f"by prefix x{a.workers} {fig(par)}, adaptive {fig(ada)}")
        print(f"speed-up over one listing: by prefix {ratio(par)}, adaptive {ratio(ada)}")
        print(f"adaptive took: {said}")
    finally:
        srv.terminate()
        srv.wait(10)
    return 0
