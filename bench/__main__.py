"""``python -m bench NAME [ARGS]``: run bench/NAME.py's ``main(argv)``; no NAME lists them."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)])
                  if not m.name.startswith("_") and hasattr(importlib.import_module(f"bench.{m.name}"), "main"))


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m bench NAME [ARGS]\n\nbenchmarks and generators:")
        for name in available():
            doc = (importlib.import_module(f"bench.{name}").__doc__ or "").strip().splitlines()
            print(f"  {name:<20} {doc[0] if doc else ''}")
        return 0
    name = argv[0]
    if name not in available():
        print(f"bench: no benchmark named {name!r}; run `python -m bench` for the list", file=sys.stderr)
        return 2
    return int(importlib.import_module(f"bench.{name}").main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
