"""Bounds of path and query parameters that reach the store.

Ids are the store's integer keys (PostgreSQL `integer`): a number outside that range cannot
name anything, and reaching the store it was a 500 (PostgreSQL refuses it as a parameter of an
`integer` column, SQLite cannot even bind one beyond 64 bits). Inside the range an id that
names nothing stays a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MIN_ID, MAX_ID = -(2**31), 2**31 - 1

ObjectId = Annotated[int, Path(ge=MIN_ID, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]

# PostgreSQL text cannot hold U+0000 (a 500 before this rule); no filter has a use for it.
NO_NUL = r"^[^\x00]*$"
