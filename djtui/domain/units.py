"""How sizes and ages read to a person, the same on every screen and in every command."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 session``, ``2 sessions`` (``many`` for words that do not take an s)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def human_bytes(n: float, *, compact: bool = False) -> str:
    """1536 -> '1.5 KB' (or '1.5K' when ``compact``, for narrow columns)."""
    units = ("B", "K", "M", "G", "T") if compact else ("B", "KB", "MB", "GB", "TB")
    sep = "" if compact else " "
    value = float(n)
    for unit in units:
        if value < 1024 or unit == units[-1]:
            return f"{int(value)}{sep}{unit}" if unit == "B" else f"{value:.1f}{sep}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_age(hours: float) -> str:
    """Hours under two days, days after."""
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"
