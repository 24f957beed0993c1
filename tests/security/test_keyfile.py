"""The one writer of generated secret files (JWT secret, encryption keys): private, atomic, new."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rivergen.security.keyfile import create_private_file, read_or_create
from tests.fixtures.threads import run_at_once


@pytest.fixture(params=[0o000, 0o277], ids=["umask-000", "umask-277"])
def umask(request: pytest.FixtureRequest) -> Iterator[None]:
    """A permissive umask and one that even takes the owner's write bit away."""
    previous = os.umask(request.param)
    try:
        yield
    finally:
        os.umask(previous)


# A real failure mid-write: writes past 16 bytes fail with EFBIG, as on a full disk. In a child
# process, because the limit applies to every file the process writes (pytest's capture too).
_FAILING_WRITE = """
import errno, resource, signal, sys
from pathlib import Path
from rivergen.security.keyfile import create_private_file
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a core dump
resource.setrlimit(resource.RLIMIT_FSIZE, (16, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    create_private_file(Path(sys.argv[1]), b"x" * 64)
except OSError as exc:
    sys.exit(0 if exc.errno == errno.EFBIG else 3)
sys.exit(4)
"""


@pytest.mark.usefixtures("umask")
def test_created_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    assert create_private_file(path, b"s3cret\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"s3cret\n"
    assert list(tmp_path.iterdir()) == [path]  # the temporary file is gone


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"kept\n")
    path.chmod(0o640)
    assert not create_private_file(path, b"new\n")
    assert path.read_bytes() == b"kept\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # not ours to change
    assert list(tmp_path.iterdir()) == [path]


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    child = subprocess.run(
        [sys.executable, "-c", _FAILING_WRITE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, f"exit {child.returncode}: {child.stderr}"  # EFBIG was raised
    assert list(tmp_path.iterdir()) == []  # neither the file nor a partial temporary one


def test_a_large_content_is_written_whole(tmp_path: Path) -> None:
    content = secrets.token_bytes(1 << 20)
    path = tmp_path / "secret"
    assert create_private_file(path, content)
    assert path.read_bytes() == content


def test_read_or_create_generates_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "jwt.key"
    assert read_or_create(path, lambda: "first") == ("first", True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def never() -> str:
        raise AssertionError("an existing secret must not be generated again")

    assert read_or_create(path, never) == ("first", False)


def test_read_or_create_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "jwt.key"
    path.write_text("configured-by-hand\n")
    assert read_or_create(path, lambda: "generated") == ("configured-by-hand", False)
    assert path.read_text() == "configured-by-hand\n"


def test_read_or_create_leaves_no_file_when_generation_fails(tmp_path: Path) -> None:
    def broken() -> str:
        raise RuntimeError("no entropy")

    with pytest.raises(RuntimeError):
        read_or_create(tmp_path / "jwt.key", broken)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_read_or_create_agrees_on_one_value(tmp_path: Path) -> None:
    path = tmp_path / "jwt.key"
    results = run_at_once(lambda: read_or_create(path, lambda: secrets.token_urlsafe(48)), 8)
    assert len(results) == 8
    assert len({value for value, _ in results}) == 1
    assert results[0][0]  # a racer never reads an empty file
    assert sum(created for _, created in results) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["jwt.key"]
