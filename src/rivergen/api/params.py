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


# Literal paths beside `/data-sources/{data_source_id}`: the unsaved configuration's test.
DATA_SOURCE_LITERALS = ("test",)


class SourceIdConvertor(Convertor[str]):
    """`{data_source_id:source_id}`: any segment but the literal paths beside the id.

    Without it `/data-sources/test` also matches `/data-sources/{data_source_id}`, so a PATCH
    there answered as if `test` were an id (422) instead of 405 with `Allow: POST`. Any other
    segment still reaches the route, whose validation answers 422 for one that is no integer.
    The convertor leaves the OpenAPI path as `{data_source_id}`.
    """

    regex = "(?!(?:" + "|".join(DATA_SOURCE_LITERALS) + ")$)[^/]+"

    def convert(self, value: str) -> str:
        """The segment as given; the route's validation makes it an integer."""
        return value

    def to_string(self, value: str) -> str:
        """The segment as it appears in a path."""
        return str(value)


register_url_convertor("source_id", SourceIdConvertor())

ObjectId = Annotated[int, Path(ge=MIN_ID, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]

# PostgreSQL text cannot hold U+0000 (a 500 before this rule); no filter has a use for it.
NO_NUL = r"^[^\x00]*$"
