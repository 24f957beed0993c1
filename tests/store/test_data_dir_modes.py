"""The data directory is the owner's only from the very first start: 0700, every file 0600.

Run against the real commands (`rivergen migrate`, then `rivergen serve`) with a umask that
would leave files readable by others, so the modes come from the service and not the umask.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.serve import clean_env, serve, sign_in

PERMISSIVE_UMASK = 0o022


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Run the test (and the processes it starts) under umask 022."""
    previous = os.umask(PERMISSIVE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    """The permission bits of `path`."""
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(data_dir: Path) -> None:
    """The directory is 0700 and every file in it 0600."""
    assert mode(data_dir) == 0o700, oct(mode(data_dir))
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert files, "the data directory is empty"
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o600) for p in files}


@pytest.mark.usefixtures("permissive_umask")
def test_migrate_creates_a_private_directory_and_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    result = subprocess.run(
        [sys.executable, "-m", "rivergen", "migrate"],
        cwd=tmp_path,
        env=clean_env(RIVERGEN_DATA_DIR=str(data_dir)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (data_dir / "rivergen.db").exists()
    assert_private(data_dir)


@pytest.mark.usefixtures("permissive_umask")
def test_the_first_serve_leaves_only_private_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    password = "first-start-password-1"
    env = {"RIVERGEN_DATA_DIR": str(data_dir), "RIVERGEN_ADMIN_PASSWORD": password}
    with serve(tmp_path, "first", **env) as server:
        # A sign-in writes to the store, so the WAL and shared-memory files exist by now.
        assert sign_in(server, "admin@rivergen.local", password).status_code == 200
        names = {p.name for p in data_dir.iterdir()}
        assert {"rivergen.db", "rivergen.db-wal", "rivergen.db-shm"} <= names, names
        assert {"secret.key", "jwt.key"} <= names, names
        assert_private(data_dir)
    assert_private(data_dir)


@pytest.mark.usefixtures("permissive_umask")
def test_an_existing_data_directory_open_to_others_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    store = data_dir / "rivergen.db"
    store.touch()
    os.chmod(store, 0o644)
    env = {"RIVERGEN_DATA_DIR": str(data_dir), "RIVERGEN_ADMIN_PASSWORD": "some-password-12"}
    with serve(tmp_path, "tighten", **env):
        assert_private(data_dir)
