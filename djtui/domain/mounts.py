"""Mount points: which one holds a path, read from the text of /proc/self/mountinfo (no filesystem call,
so a hung mount cannot hang the question), and the one remount hint the app gives."""

from __future__ import annotations

import re
from collections.abc import Iterable


def remount_hint(mount_point: str | None) -> str:
    """The one remount hint: it names the mount point, never a session folder, or says it is not known."""
    if mount_point:
        return f"remount it: sudo umount -l {mount_point} && sudo mount {mount_point}"
    return "remount its share (mount point not known: `findmnt -T <destination base path>` names it)"


def unescape_mountinfo(field_text: str) -> str:
    """A path as /proc/self/mountinfo writes it (space, tab, newline and backslash as octal escapes)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_text)


def mount_points(mountinfo: str) -> list[str]:
    """The mount points listed in the text of /proc/self/mountinfo (field 5 of each line)."""
    out = []
    for line in mountinfo.splitlines():
        parts = line.split(" ")
        if len(parts) > 4:
            out.append(unescape_mountinfo(parts[4]))
    return out


def nearest_mount(path: str, points: Iterable[str]) -> str | None:
    """The deepest mount point that holds ``path`` (by its components, no filesystem call); never ``/``."""
    best: str | None = None
    for mp in points:
        if mp == "/":
            continue
        mp = mp.rstrip("/")
        if (path == mp or path.startswith(mp + "/")) and (best is None or len(mp) > len(best)):
            best = mp
    return best
