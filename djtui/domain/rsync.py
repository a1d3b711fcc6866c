"""Reading rsync's output as a program: `--info=progress2` lines and `-i` itemize lines.

rsync writes progress lines ending in a bare carriage return and itemize
lines ending in a newline, on the same stream; :func:`split_records` cuts a
chunk of output on both. Exit codes that matter to an operator get words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from djtui.domain.units import human_bytes

_PROGRESS = re.compile(
    r"^\s*(?P<bytes>[\d,.]+)\s+(?P<pct>\d+)%\s+(?P<rate>[\d.,]+)(?P<unit>[kKMGT]?B)/s\s+(?P<eta>[\d?]+:[\d?]+:[\d?]+)"
    r"(?:\s+\(xfr#(?P<xfr>\d+),\s*(?P<chk>ir|to)-chk=(?P<rem>\d+)/(?P<tot>\d+)\))?\s*$"
)
_ITEM = re.compile(r"^(?P<code>[<>ch.*][fdLDS][cstpoguax.+ ?]{9}|\*deleting\s*) (?P<name>.+)$")
_UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}

EXIT_MEANING = {
    0: "ok",
    1: "syntax or usage error",
    2: "protocol incompatibility",
    3: "errors selecting input/output files or directories",
    5: "error starting client-server protocol",
    10: "error in socket I/O",
    11: "error in file I/O (disk full? destination not writable?)",
    12: "error in rsync protocol data stream",
    20: "killed by a signal (cancelled?)",
    23: "partial transfer due to error",
    24: "some source files vanished (is the acquisition still writing?)",
    30: "timeout in data send/receive (hung mount?)",
    35: "timeout waiting for daemon connection",
}


@dataclass(frozen=True)
class TransferProgress:
    """One progress2 reading: bytes so far, percent, rate (B/s), ETA seconds, file counters."""

    bytes: int
    percent: int
    rate: float
    eta_seconds: int | None
    transferred_files: int = 0
    remaining: int | None = None
    total: int | None = None
    total_final: bool = True  # False while incremental recursion is still finding files
    current_file: str = ""


@dataclass(frozen=True)
class ItemizedChange:
    code: str
    name: str

    @property
    def is_file_transfer(self) -> bool:
        return self.code.startswith((">f", "<f"))

    @property
    def deleting(self) -> bool:
        return self.code.startswith("*deleting")

    @property
    def is_dir(self) -> bool:
        return len(self.code) > 1 and self.code[1] == "d"


def split_records(buffer: str) -> tuple[list[str], str]:
    """Complete records (split on \\r and \\n) and the unfinished tail."""
    parts = re.split(r"[\r\n]", buffer)
    return [p for p in parts[:-1] if p.strip()], parts[-1]


def _eta(text: str) -> int | None:
    if "?" in text:
        return None
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


def parse_progress(line: str) -> TransferProgress | None:
    m = _PROGRESS.match(line)
    if not m:
        return None
    rate = float(m.group("rate").replace(",", "")) * _UNITS.get(m.group("unit"), 1)
    tot = m.group("tot")
    return TransferProgress(
        bytes=int(m.group("bytes").replace(",", "").replace(".", "")),
        percent=int(m.group("pct")),
        rate=rate,
        eta_seconds=_eta(m.group("eta")),
        transferred_files=int(m.group("xfr") or 0),
        remaining=int(m.group("rem")) if m.group("rem") else None,
        total=int(tot) if tot else None,
        total_final=m.group("chk") != "ir",
    )


def unescape_name(name: str) -> str:
    """rsync writes control characters in names as \\#ooo (octal)."""
    return re.sub(r"\\#([0-7]{3})", lambda m: chr(int(m.group(1), 8)), name)


def parse_itemize(line: str) -> ItemizedChange | None:
    m = _ITEM.match(line)
    if not m:
        return None
    return ItemizedChange(m.group("code").strip(), unescape_name(m.group("name")))


def exit_meaning(code: int) -> str:
    if code < 0:
        return f"killed by signal {-code}"
    return EXIT_MEANING.get(code, f"rsync exit code {code}")


def bwlimit_label(kib_per_s: float | None) -> str:
    """``bandwidth_limit`` (KB/s as rsync's --bwlimit reads them: 1024 bytes) in the units every rate
    on screen uses: ``limit 9.8 MB/s``; empty when there is no limit (None or 0)."""
    if not kib_per_s:
        return ""
    return f"limit {human_bytes(kib_per_s * 1024)}/s"
