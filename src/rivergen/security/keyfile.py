"""Secrets generated on first start and kept in the data directory, readable by the owner only."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, generate: Callable[[], str]) -> tuple[str, bool]:
    """Return the file's content (created with mode 0600 if absent) and whether it was created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL with mode 0600 at creation: the file is never readable by others, even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), False
    value = generate()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value, True
