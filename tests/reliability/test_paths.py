"""Hostile paths end to end: sync (real rsync), verify (size and checksum), delete, quarantine, restore.

The shell tool passed paths through ``eval``: a quote or ``$`` broke it. Here every awkward name a
lab's disks can hold goes the whole way, and symlinks that point out of the source base or out
of a managed directory never lead a delete or a quarantine outside.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from djtui.cli import main
from reliability._r2_lab import PathLab, build_path_lab
from reliability._r2_tree import files_of, snapshot

HOSTILE = [
    b"with space.mp4", b"  leading and trailing  ", b"it's.mp4", b'q"uote.mp4', b"$HOME.mp4", b"$(touch PWNED).mp4",
    b"`id`.mp4", b"semi;colon&amp|pipe.mp4", b"new\nline.mp4", b"tab\there.mp4", b"cr\rreturn.mp4",
    b"latin1-\xe9\xff.mp4", b"-rf", b"--delete", b"*star?.mp4", b"[bracket].mp4", b"back\\slash.mp4",
    b"\xc3\xbcn\xc3\xafc\xc3\xb8d\xc3\xa9 \xf0\x9f\xa7\xaa.mp4", b"#hash", b"~tilde", b"%percent%s",
    b"dir with space/inner 'q' $x.mp4", b"dir\nnl/\xfe\xfd.bin",
]


@pytest.fixture
def path_lab(server, schema_name, tmp_path):
    yield from build_path_lab(server, schema_name, tmp_path)


def run(lab: PathLab, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(lab.config_path), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _make_hostile_session(lab: PathLab, pid: str = "p001", date: str = "20250104") -> Path:
    d = lab.src_dir(pid, date)
    d.mkdir(parents=True)
    for i, name in enumerate(HOSTILE):
        p = os.path.join(os.fsencode(d), name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(os.urandom(100 + i))
    return d


def test_hostile_names_sync_verify_delete_end_to_end(path_lab: PathLab, capsys, monkeypatch):
    lab = path_lab
    monkeypatch.chdir(lab.root)  # a `$(touch PWNED)` run by a shell would land here
    src = _make_hostile_session(lab)
    neighbour = _make_hostile_session(lab, "p001", "20250105")
    lab.import_session("p001", "20250104")
    want = files_of(src)
    assert len(want) == len(HOSTILE)

    code, out, err = run(lab, capsys, "sync", "p001", "20250104")
    assert code == 0, out + err
    assert files_of(lab.dest_dir("p001", "20250104")) == want  # every name, every byte
    code, out, err = run(lab, capsys, "verify", "p001", "20250104", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"], out + err
    assert data["destinations"][0]["files"] == len(HOSTILE)
    code, out, err = run(lab, capsys, "verify", "p001", "20250104", "--checksum", "--json")
    assert code == 0, out + err
    data = json.loads(out)
    assert data["ok"] and data["destinations"][0]["hashed_now"] == 2 * len(HOSTILE), data
    # same-size corruption of the file with the nastiest name is found by the checksum
    target = os.path.join(os.fsencode(lab.dest_dir("p001", "20250104")), b"dir\nnl/\xfe\xfd.bin")
    with open(target, "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0xFF]))
    os.utime(target, (time.time() - 1000, time.time() - 1000))  # rsync's quick check sees whole seconds only
    code, out, _ = run(lab, capsys, "verify", "p001", "20250104", "--checksum", "--json")
    data = json.loads(out)
    assert code == 1 and len(data["destinations"][0]["hash_mismatch"]) == 1
    code, out, err = run(lab, capsys, "sync", "p001", "20250104", "--checksum")
    assert code == 0, out + err

    code, out, err = run(lab, capsys, "status", "p001", "20250104", "--json")
    assert code == 0 and json.loads(out)["safe"], out + err
    code, out, err = run(lab, capsys, "delete", "p001", "20250104", "--confirm", "DELETE", "--json")
    res = json.loads(out)
    assert code == 0 and res["ok"] and res["removed_files"] == len(HOSTILE), out + err
    assert not src.exists()
    assert files_of(lab.dest_dir("p001", "20250104")) == want  # the backup is untouched
    assert len(files_of(neighbour)) == len(HOSTILE)  # so is the next day's session
    assert not (lab.root / "PWNED").exists() and not Path("PWNED").exists()
    log = [json.loads(line) for line in (lab.root / "audit.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log] == ["intent", "outcome"] and log[1]["status"] == "ok"


def test_symlinks_out_of_the_source_base_never_lead_a_delete_outside(path_lab: PathLab, capsys):
    lab = path_lab
    (lab.outside / "precious.mp4").write_bytes(b"not yours" * 100)
    (lab.outside / "sub").mkdir()
    (lab.outside / "sub" / "deep.mp4").write_bytes(b"also not yours")
    # 1. links inside a session: to a file outside, to a folder outside, dangling, and a loop
    src = lab.src_dir("p001", "20250104")
    src.mkdir(parents=True)
    (src / "cam0.mp4").write_bytes(b"real" * 100)
    os.symlink(lab.outside / "precious.mp4", src / "link-file.mp4")
    os.symlink(lab.outside / "sub", src / "link-dir")
    os.symlink(lab.root / "nowhere", src / "dangling")
    os.symlink(".", src / "loop")
    # 2. a participant folder that is itself a link out of the base
    os.symlink(lab.outside, lab.source / "p002")
    (lab.outside / "20250104").mkdir()
    (lab.outside / "20250104" / "cam0.mp4").write_bytes(b"outside session")
    # 3. a session folder that is a link to another (real) session inside the base
    other = lab.src_dir("p003", "20250104")
    other.mkdir(parents=True)
    (other / "cam0.mp4").write_bytes(b"p003's" * 50)
    (lab.source / "p004").mkdir()
    os.symlink(other, lab.src_dir("p004", "20250104"))
    for pid in ("p001", "p002", "p003", "p004"):
        lab.import_session(pid, "20250104")
    outside_before = snapshot(lab.outside)

    code, out, err = run(lab, capsys, "sync", "p001", "20250104")
    assert code == 0, out + err
    dst = lab.dest_dir("p001", "20250104")
    assert os.path.islink(dst / "link-file.mp4")  # copied as a link (rsync -a), never as the target's bytes
    assert not (dst / "link-dir" / "deep.mp4").exists() or os.path.islink(dst / "link-dir")
    for pid in ("p002", "p004"):
        run(lab, capsys, "sync", pid, "20250104")
    code, out, _ = run(lab, capsys, "bulk-delete", "--confirm", "DELETE ALL", "--json")
    for pid in ("p001", "p002", "p004"):
        code, out, err = run(lab, capsys, "delete", pid, "20250104", "--confirm", "DELETE", "--json")
        res = json.loads(out)
        assert code == 1 and not res["ok"], (pid, out, err)
        assert any("symbolic link" in r or "outside" in r for r in res["reasons"]), res
    assert snapshot(lab.outside) == outside_before
    assert (src / "cam0.mp4").exists() and os.path.islink(src / "link-file.mp4")
    assert (other / "cam0.mp4").exists()


def test_hard_links_delete_one_name_and_keep_the_other(path_lab: PathLab, capsys):
    lab = path_lab
    keep = lab.outside / "shared.mp4"
    keep.write_bytes(b"shared bytes" * 1000)
    src = lab.src_dir("p001", "20250104")
    src.mkdir(parents=True)
    os.link(keep, src / "cam0.mp4")
    os.link(src / "cam0.mp4", src / "cam0-again.mp4")
    (src / "cam1.mp4").write_bytes(b"own" * 10)
    lab.import_session("p001", "20250104")
    code, out, err = run(lab, capsys, "sync", "p001", "20250104", "--checksum")
    assert code == 0, out + err
    dst = lab.dest_dir("p001", "20250104")
    assert (dst / "cam0.mp4").read_bytes() == keep.read_bytes() == (dst / "cam0-again.mp4").read_bytes()
    code, out, err = run(lab, capsys, "delete", "p001", "20250104", "--confirm", "DELETE", "--json")
    assert code == 0 and json.loads(out)["removed_files"] == 3, out + err
    assert not src.exists()
    assert keep.read_bytes() == b"shared bytes" * 1000 and keep.stat().st_nlink == 1


# ---------------------------------------------------------------------------
# quarantine of untracked files in a managed directory

OLD = time.time() - 3 * 3600


@pytest.fixture
def managed(server, schema_name, tmp_path):
    root = tmp_path / "analysis"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.nwb").write_bytes(b"keep me")
    (outside / "hard.nwb").write_bytes(b"hard-linked from outside")
    root.mkdir()
    tracked = {b"tracked 'one'.nwb": b"t1", b"sub dir/tracked $2.nwb": b"t2"}
    untracked = {name: os.urandom(50 + i) for i, name in enumerate(HOSTILE)}
    for name, data in {**tracked, **untracked}.items():
        p = os.path.join(os.fsencode(root), name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(data)
        os.utime(p, (OLD, OLD))
    os.link(outside / "hard.nwb", root / "hardlink.nwb")
    os.utime(root / "hardlink.nwb", (OLD, OLD))
    untracked[b"hardlink.nwb"] = b"hard-linked from outside"
    os.symlink(outside, root / "link-out")
    os.symlink(outside / "secret.nwb", root / "link-file.nwb")
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{schema_name}`")
            cur.execute(f"CREATE TABLE `{schema_name}`.analysis_nwbfile (analysis_file_name VARCHAR(255) PRIMARY KEY)")
            cur.executemany(f"INSERT INTO `{schema_name}`.analysis_nwbfile VALUES (%s)",
                            [(n.decode(),) for n in tracked])  # paths relative to the directory
        conn.commit()
    finally:
        conn.close()
    cfg = tmp_path / "djtui.yaml"
    cfg.write_text(f"database:\n  host: 127.0.0.1\n  port: {server.port}\n  user: djadmin\n"
                   f"  password: {server.password.reveal()}\n  use_datajoint_config: false\n"
                   f"state_dir: {tmp_path}/state\naudit_log: {tmp_path}/audit.jsonl\n"
                   f"orphans:\n  directories:\n"
                   f"    - {{path: {root}, table: {schema_name}.analysis_nwbfile, column: analysis_file_name, "
                   f"layout: relative}}\n"
                   f"  quarantine_dir: {tmp_path}/quarantine\n")
    cfg.chmod(0o600)
    return root, outside, cfg, tracked, untracked


def test_quarantine_and_restore_hostile_names_byte_identical(managed, capsys):
    root, outside, cfg, tracked, untracked = managed
    before = snapshot(root)
    outside_before = snapshot(outside)
    hard_inode = os.stat(root / "hardlink.nwb").st_ino
    src = f"dir:{root}"
    code = main(["--config", str(cfg), "orphans", "scan", "--source", src, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    code = main(["--config", str(cfg), "orphans", "quarantine", "--source", src, "--max-share", "1",
                 "--confirm", "QUARANTINE", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    done = json.loads(out)
    batch = done["batch"]
    assert done["files"] == len(untracked) and done["skipped"] == 0, done
    left = files_of(root)
    assert set(left) == set(tracked), sorted(left)  # every untracked file moved, tracked ones stay
    assert os.path.islink(root / "link-out") and os.path.islink(root / "link-file.nwb")  # links never moved
    assert snapshot(outside) == outside_before  # nothing reached through a link
    code = main(["--config", str(cfg), "orphans", "restore", batch, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert snapshot(root) == {k: v for k, v in before.items()}  # names, bytes, modes and mtimes back
    assert os.stat(root / "hardlink.nwb").st_ino == hard_inode and os.stat(outside / "hard.nwb").st_nlink == 2


def test_odd_participant_folders_on_disk_do_not_break_the_listing(path_lab: PathLab, capsys):
    """Folders an operator made by hand (quotes, spaces, a newline, latin-1 bytes) next to real sessions."""
    lab = path_lab
    good = lab.src_dir("p001", "20250104")
    good.mkdir(parents=True)
    (good / "cam0.mp4").write_bytes(b"v" * 10)
    lab.import_session("p001", "20250104")
    base = os.fsencode(lab.source)
    for odd in (b"p'1", b"p 2", b"p\n3", b"p\xe94", b"p$(id)", b"..p", b"-p6"):
        d = os.path.join(base, odd, b"20250104")
        os.makedirs(d)
        with open(os.path.join(d, b"cam0.mp4"), "wb") as fh:
            fh.write(b"x")
    before = snapshot(lab.root / "source")
    code, out, err = run(lab, capsys, "status-range", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert ("p001", "20250104") in {(r["participant_id"], r["session_date"]) for r in rows}
    assert "Traceback" not in err and "internal error" not in err
    assert err.count("is not a usable participant id") == 7, err  # named, not silently dropped
    assert "p\\udce94/20250104" in err, err  # the undecodable byte shown, not a crash
    code, out, err = run(lab, capsys, "status-range")
    assert code == 0 and "p001" in out, err
    code, out, err = run(lab, capsys, "bulk-delete", "--dry-run", "--json")
    assert code == 0, err
    assert snapshot(lab.root / "source") == before
