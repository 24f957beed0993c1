"""JsonInt: an integer as JSON Schema's `integer` means it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from rivergen.core.validation import JsonInt


class Body(BaseModel):
    value: JsonInt = Field(ge=1, le=300)


@pytest.mark.parametrize(("raw", "expected"), [("5", 5), ("174.0", 174), ("1e2", 100)])
def test_integral_numbers_are_integers(raw: str, expected: int) -> None:
    parsed = Body.model_validate_json(f'{{"value": {raw}}}').value
    assert parsed == expected
    assert type(parsed) is int


@pytest.mark.parametrize("raw", ["true", '"5"', "2.5", "null", "0", "301.0"])
def test_anything_else_is_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        Body.model_validate_json(f'{{"value": {raw}}}')


def test_the_schema_says_integer() -> None:
    schema: dict[str, Any] = Body.model_json_schema()["properties"]["value"]
    assert schema["type"] == "integer"
