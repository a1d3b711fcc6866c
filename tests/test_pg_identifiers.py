"""PostgreSQL names over 63 bytes (NAMEDATALEN - 1): the server would cut them silently, so two names
that differ after byte 63 would be one. djtui refuses to quote one (a UserError: exit 2) instead."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from djtui.cli import main
from djtui.domain.dialects import POSTGRES
from djtui.domain.dialects.postgres import MAX_IDENT_BYTES
from djtui.errors import UserError
from djtui.services.servers.postgres import PrivatePostgres
from tests.accounts.pg import PgLab, pg_lab
from tests.names import unique


def test_63_bytes_pass_and_64_are_refused_with_the_length_and_the_limit() -> None:
    ok = "a" * 63
    assert POSTGRES.ident(ok) == f'"{ok}"'
    with pytest.raises(UserError) as e:
        POSTGRES.ident("b" * 64)
    assert "64 bytes" in e.value.what and "63" in e.value.what and "b" * 64 in e.value.what
    assert e.value.exit_code == 2 and e.value.hint


def test_bytes_not_characters_count() -> None:
    assert POSTGRES.ident("é" * 31)  # 62 bytes
    with pytest.raises(UserError, match="64 bytes"):
        POSTGRES.ident("é" * 32)  # 32 characters, 64 bytes


def test_schema_table_and_column_names_are_checked() -> None:
    long = "sess_" + "x" * 60
    with pytest.raises(UserError, match=long):
        POSTGRES.table(long, "t")
    with pytest.raises(UserError, match=long):
        POSTGRES.table("s", long)
    assert MAX_IDENT_BYTES == 63


def test_the_server_really_truncates_at_63_bytes(pg_server: PrivatePostgres) -> None:
    """The premise: without the check, two table names that differ after byte 63 collide."""
    conn = pg_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT %s::name = %s::name", ("t" * 63 + "_one", "t" * 63 + "_two"))
            assert cur.fetchone()[0] is True
    finally:
        conn.close()


@pytest.fixture(scope="module")
def lab(pg_server: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgLab]:
    with pg_lab(pg_server, tmp_path_factory.mktemp("pg_ident"), unique("ident_")) as lab:
        assert main(["--config", str(lab.cfg), "roles", "init"]) == 0
        yield lab


def _cli(lab: PgLab, capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["--config", str(lab.cfg), *argv])
    out = capsys.readouterr()
    return rc, out.out + out.err


@pytest.mark.parametrize("argv", [
    ("export", "plan", "--leaf", "common_x.{long}:"),
    ("export", "plan", "--leaf", "{long}.t:"),
    ("export", "plan", "--paper", "p1", "--export-log", "{long}"),
])
def test_export_names_over_63_bytes_exit_2(lab: PgLab, capsys, argv) -> None:
    long = "n" * 64
    rc, text = _cli(lab, capsys, *(a.format(long=long) for a in argv))
    assert rc == 2, text
    assert "Traceback" not in text


def test_a_restore_into_a_name_over_63_bytes_exits_2(lab: PgLab, capsys, tmp_path) -> None:
    """dbbackup restore --as: the new schema's name is checked in bytes before anything runs."""
    lab.sql("CREATE SCHEMA ident_src", "CREATE TABLE ident_src.t (id int PRIMARY KEY)")
    rc, text = _cli(lab, capsys, "dbbackup", "run", "--out", str(tmp_path / "b"), "--no-copy")
    assert rc == 0, text
    (backup,) = [p for p in (tmp_path / "b").iterdir() if p.is_dir()]
    rc, text = _cli(lab, capsys, "dbbackup", "restore", str(backup), "--schema", "ident_src",
                    "--as", "é" * 27, "--dry-run")  # 54 bytes + 9 = 63: fits
    assert rc == 0, text
    rc, text = _cli(lab, capsys, "dbbackup", "restore", str(backup), "--schema", "ident_src",
                    "--as", "é" * 28, "--dry-run")  # 56 + 9 = 65 bytes
    assert rc == 2, text
    assert "63" in text and "Traceback" not in text
