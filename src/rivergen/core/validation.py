"""Turning pydantic validation errors into the envelope's per-field details."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BeforeValidator, StrictInt


def validation_details(errors: Iterable[Any], prefix: str = "") -> list[dict[str, str]]:
    """One entry per bad field, without echoing the input (it may hold a secret)."""
    details = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        field = ".".join([prefix, *location] if prefix else location)
        details.append(
            {
                "field": field,
                "message": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return details


def _integral_float(value: Any) -> Any:
    # JSON Schema's `integer` includes 174.0; pydantic's strict int does not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as JSON Schema means it: 5 and 5.0, never true, "5" or 5.5.
JsonInt = Annotated[StrictInt, BeforeValidator(_integral_float)]
