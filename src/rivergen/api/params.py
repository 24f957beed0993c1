"""Bounds of path and query parameters that reach the store.

Ids are the store's integer keys (PostgreSQL `integer`): a number outside that range cannot
name anything, and reaching the store it was a 500 (PostgreSQL refuses it as a parameter of an
`integer` column, SQLite cannot even bind one beyond 64 bits). Inside the range an id that
names nothing stays a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from starlette.convertors import Convertor, register_url_convertor

MIN_ID, MAX_ID = -(2**31), 2**31 - 1


class IdConvertor(Convertor[int]):
    """`{name:id}` in a route path: only an integer is an id there.

    For ids beside a literal segment: without it `/data-sources/test` also matches
    `/data-sources/{data_source_id}`, so a PATCH there answered as if `test` were an id (422)
    instead of 405 with `Allow: POST`. Such a path that is no integer names nothing (404).
    Starlette's own `int` refuses negative numbers, which the schema of ids allows. The
    convertor leaves the OpenAPI path as `{name}`.
    """

    regex = "-?[0-9]+"

    def convert(self, value: str) -> int:
        """The id as an integer."""
        return int(value)

    def to_string(self, value: int) -> str:
        """The id as it appears in a path."""
        return str(value)


register_url_convertor("id", IdConvertor())

ObjectId = Annotated[int, Path(ge=MIN_ID, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]

# PostgreSQL text cannot hold U+0000 (a 500 before this rule); no filter has a use for it.
NO_NUL = r"^[^\x00]*$"
