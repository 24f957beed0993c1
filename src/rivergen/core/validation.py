"""Turning pydantic validation errors into the envelope's per-field details."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


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
