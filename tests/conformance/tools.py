"""The real tools, each in a virtualenv of its own, pinned, and cached between runs.

A conformance test asks a real tool a question by running a small script in that tool's
virtualenv (``run_tool``): the script reads the server's address from the environment
(``DJ_HOST``, ``DJ_PORT``, ``DJ_USER``, ``DJ_PASS``: the password reaches the child's
environment only, never its argv), prints one JSON document on stdout, and the test compares
it with djtui's answer on the same state.

The virtualenvs live under ``$DJTUI_CONFORMANCE_CACHE`` (default ``~/.cache/djtui/conformance``),
one folder per tool and pin set, so a second run installs nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

# what each tool is, pinned; the versions labs run today (FIELD.md section 7)
TOOLS: dict[str, tuple[str, ...]] = {
    # Spyglass 0.6 pins datajoint>=0.14.5,<2.0; it resolves to 0.14.10
    "spyglass": ("spyglass-neuro==0.6.0", "datajoint==0.14.10"),
    "dj014": ("datajoint==0.14.10", "boto3>=1.34,<2"),
    "dj23": ("datajoint==2.3.5", "boto3>=1.34,<2"),
    # DataJoint 2.3 on PostgreSQL: its `postgres` extra brings psycopg2 (issue 15)
    "dj23pg": ("datajoint[postgres]==2.3.5", "boto3>=1.34,<2"),
    "cleaner": ("datajoint-cleaner==0.1",),
}


def cache_root() -> Path:
    return Path(os.environ.get("DJTUI_CONFORMANCE_CACHE") or Path.home() / ".cache" / "djtui" / "conformance")


def tool_python(tool: str) -> Path:
    """The python of ``tool``'s virtualenv, installed on first use (under a lock) and reused after."""
    pins = TOOLS[tool]
    tag = hashlib.sha256("\n".join((sys.version, *pins)).encode()).hexdigest()[:12]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"{tool}-{tag}"
    py = venv / "bin" / "python"
    done = venv / ".installed"
    with open(root / f"{tool}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return py
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        res = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins],
                             capture_output=True, text=True)
        if res.returncode != 0:
            tail = "\n".join(res.stderr.splitlines()[-20:])
            raise RuntimeError(f"installing {tool} ({' '.join(pins)}) failed:\n{tail}")
        done.write_text("\n".join(pins) + "\n")
    return py


def server_env(server: Any, **extra: str) -> dict[str, str]:
    """The environment a tool's script connects with: our private server, never the machine's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "DJTUI_", "PYTHON"))}
    st = server.settings
    env.update(DJ_HOST=st.host, DJ_PORT=str(st.port), DJ_USER=st.user, DJ_PASS=st.password.reveal(), **extra)
    return env


def run_tool(tool: str, script: str, *, env: dict[str, str], cwd: Path | None = None,
             timeout: float = 600) -> Any:
    """Run ``script`` (Python source) in ``tool``'s virtualenv; return the JSON its last stdout line holds."""
    py = tool_python(tool)
    res = subprocess.run([str(py), "-c", textwrap.dedent(script)], env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=timeout)
    if res.returncode != 0:
        raise AssertionError(f"{tool} script failed ({res.returncode}):\n{res.stderr[-4000:]}")
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    if not lines:
        raise AssertionError(f"{tool} script printed nothing; stderr:\n{res.stderr[-4000:]}")
    return json.loads(lines[-1])
