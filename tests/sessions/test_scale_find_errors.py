"""`find`'s error lines at scale: hundreds of absent session folders are absent, not unreadable.

find runs by absolute path, so its lines start with "/usr/bin/find: "; before, more than 200 lines
(300 sessions not backed up yet) marked every folder of the batch unreadable and failed sound backups.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from djtui.services import filesystem, findscan
from djtui.services.transfers import verify_many
from tests.sessions.test_sessions_verify_batch import make_service, make_sessions


def test_300_sessions_without_backup_do_not_fail_the_5_sound_ones(tmp_path):
    svc = make_service(tmp_path)
    dest = svc.destinations[0]
    keys = make_sessions(svc, 305, 2)
    unsent = keys[5:]
    for k in unsent:  # copied to the source only: not backed up yet
        shutil.rmtree(svc.dest_path(dest, k))
    out = {o.key: o for o in verify_many(svc, keys, dest)}
    assert all(out[k].ok for k in keys[:5]), [out[k].message for k in keys[:5]]
    assert all(not out[k].ok and out[k].message.startswith("no backup at") for k in unsent)
    scans = filesystem.scan_columns([svc.dest_path(dest, k) for k in keys])
    assert [s.exists for s in scans] == [True] * 5 + [False] * 300
    assert all(s.error is None for s in scans)
    assert [s.count for s in scans[:5]] == [2] * 5
    assert set(svc.records.load_many(keys, dest.name)) == set(keys[:5])


def test_find_lines_are_read_whatever_find_is_called_and_however_a_name_is_quoted():
    roots = ["/a/p1/d", "/a/p 2/it's", "/a/p3/bad\udcffname", "/a/p4/d"]
    text = ("/usr/bin/find: '/a/p1/d/sub': Permission denied\n"
            "/usr/bin/find: '/a/p 2/it\\'s/x\\ny': Permission denied\n"
            "/usr/bin/find: '/a/p3/bad\\377name': No such file or directory\n")
    present = {"/a/p1/d", "/a/p 2/it's", "/a/p4/d"}
    got = findscan.find_errors(text, roots, present, "/usr/bin/find")
    assert got == {"/a/p1/d": "'/a/p1/d/sub': Permission denied",
                   "/a/p 2/it's": "'/a/p 2/it\\'s/x\\ny': Permission denied"}
    # a line no folder claims fails every present folder, however many absent ones there are
    many = "".join(f"/usr/bin/find: '/b/{i}': No such file or directory\n" for i in range(400))
    odd = many + "/usr/bin/find: fts_read failed: something odd\n"
    absent = [f"/b/{i}" for i in range(400)]
    got = findscan.find_errors(odd, ["/a/p1/d", *absent], {"/a/p1/d"}, "/usr/bin/find")
    assert set(got) == {"/a/p1/d"} and "something odd" in got["/a/p1/d"]
    assert findscan.find_errors(many, ["/a/p1/d", *absent], {"/a/p1/d"}, "/usr/bin/find") == {}


def _scan_without_dac(roots: list[str]) -> list[dict]:
    """Scan in a process that may not pass over file permissions (root without CAP_DAC_*)."""
    code = ("import json, sys; from djtui.services import filesystem; "
            "print(json.dumps([{'exists': s.exists, 'count': s.count, 'error': s.error} "
            "for s in filesystem.scan_columns(sys.argv[1:])]))")
    cmd = [sys.executable, "-c", code, *roots]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a closed folder cannot be made unreadable")
        drop = "-dac_override,-dac_read_search"
        cmd = [setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_an_unreadable_folder_still_fails_among_hundreds_of_absent_ones(tmp_path):
    roots = []
    for i in range(5):
        d = tmp_path / f"s{i}"
        (d / "sub").mkdir(parents=True)
        (d / "a.bin").write_bytes(b"a")
        (d / "sub" / "b.bin").write_bytes(b"bb")
        roots.append(str(d))
    closed = tmp_path / "s3" / "sub"
    roots += [str(tmp_path / f"gone{i}") for i in range(300)]
    closed.chmod(0)
    try:
        got = _scan_without_dac(roots)
    finally:
        closed.chmod(0o755)
    assert [g["exists"] for g in got] == [True] * 5 + [False] * 300
    assert [g["error"] is None for g in got[:5]] == [True, True, True, False, True]
    assert "Permission denied" in got[3]["error"] and got[3]["error"].startswith(f"'{closed}'")
    assert all(g["error"] is None for g in got[5:])
    assert [g["count"] for g in got[:5]] == [2, 2, 2, 1, 2]


def test_column_comparison_agrees_with_the_file_by_file_one_on_real_scans(tmp_path):
    from djtui.domain.sessions import compare_sizes
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "sub" / "deep").mkdir(parents=True)
        for rel, data in {"x": b"1", "sub/y": b"22", "sub/deep/z": b"333", "w": b"4444"}.items():
            (root / rel).write_bytes(data)
    (b / "x").write_bytes(b"11")  # another size
    (b / "sub" / "y").unlink()  # missing
    (b / "sub" / "extra").write_bytes(b"e")  # extra
    (a / "link").symlink_to("x")
    same = tmp_path / "same"
    shutil.copytree(a, same, symlinks=True)
    scans = filesystem.scan_columns([a, b, same])
    assert all(s.others for s in scans)  # the subfolders are entries too; they compare equal across trees
    for s, d in [(scans[0], scans[1]), (scans[1], scans[0]), (scans[0], scans[2])]:
        assert filesystem.compare_columns(s, d) == compare_sizes(s.listing(), d.listing())
    assert filesystem.compare_columns(scans[0], scans[2]).ok
    assert filesystem.compare_columns(scans[0], scans[1]).size_mismatch == ("x",)
    assert scans[0].size_map() == scans[2].size_map()  # no start point in a subfolder's entry


def test_status_listings_stay_columns_and_equal_the_plain_ones(tmp_path):
    from djtui.services.sessions.lazy import PathRenderer, ScanListing
    svc = make_service(tmp_path)
    keys = make_sessions(svc, 3, 7)
    (svc.source_path(keys[0]) / "clip.MP4").write_bytes(b"v")
    sts = svc.statuses(keys)
    for st in sts:
        plain = filesystem.scan(st.source_path)
        assert isinstance(st.source, ScanListing) and st.source == plain and plain == st.source
        assert (st.source.count, st.source.bytes) == (plain.count, plain.bytes)
        assert st.videos == plain.videos(svc.settings.video_extensions)
        assert st.destinations[0].drift == ("never verified",)
    assert sts[0].videos == 1 and sts[0].destinations[0].comparison.missing == ("clip.MP4",)
    assert all(st.destinations[0].comparison.ok for st in sts[1:])
    render = PathRenderer(svc.source_base, svc.backup.source.path_structure)
    assert [render(k) for k in keys] == [str(svc.source_path(k)) for k in keys]
