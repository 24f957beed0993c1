"""Secrets generated on first start and kept in the data directory, readable by the owner only."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path


def _write_new(path: Path, content: bytes) -> None:
    """Create `path` with mode 0600 and write all of `content`; FileExistsError if it exists.

    On any failure the file this call created is removed, so no partial file stays behind.
    """
    # O_EXCL makes creation atomic and mode 0o600 is applied at creation, so the file is never
    # readable by others even for an instant; fchmod covers an umask that removes owner bits.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _sync_directory(directory: Path) -> None:
    """Make a new directory entry durable; skipped where directories cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def create_private_file(path: Path, content: bytes) -> bool:
    """Create `path` holding `content`, mode 0600, complete or not at all; never overwrite.

    Returns False, leaving the existing file untouched, when `path` already exists (another
    process may have won the race).
    """
    # Write a private temporary file first and hard-link it into place: the link either
    # appears complete or not at all, so a concurrent reader never sees an empty file, and
    # linking fails rather than replacing a file that appeared meanwhile.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    _write_new(tmp, content)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:
        # Some file systems have no hard links; fall back to exclusive creation in place.
        try:
            _write_new(path, content)
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _sync_directory(path.parent)
    return True


def read_or_create(path: Path, generate: Callable[[], str]) -> tuple[str, bool]:
    """Return the file's content (created with mode 0600 if absent) and whether it was created."""
    ensure_private_dir(path.parent)
    if not path.exists():
        value = generate()
        if create_private_file(path, (value + "\n").encode("utf-8")):
            return value, True
    return path.read_text(encoding="utf-8").strip(), False


def ensure_private_dir(path: Path, *, tighten: bool = False) -> None:
    """Create `path` (and missing parents) with mode 0700; `tighten` also fixes an existing one.

    Only the service's own data directory is tightened: a SQLite file configured elsewhere must
    not change the mode of a directory the service does not own.
    """
    missing = not path.exists()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkdir's mode goes through the umask, and parents get the default mode: set it exactly.
    if missing or (tighten and stat.S_IMODE(path.stat().st_mode) & 0o077):
        os.chmod(path, 0o700)


def ensure_private_file(path: Path) -> None:
    """Create `path` empty, mode 0600, unless it exists; an existing one loses group/other bits."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, mode & 0o700)
    finally:
        os.close(fd)
