"""The success and error envelopes every endpoint answers with."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """`{"success": true, "data": ..., "message": "..."}`."""

    success: bool = True
    data: T
    message: str = ""


class ErrorBody(BaseModel):
    """The `error` object of a failed request."""

    code: str = Field(examples=["NOT_FOUND"])
    message: str = Field(examples=["Data source not found"])
    details: Any = None


class ErrorEnvelope(BaseModel):
    """`{"success": false, "error": {"code", "message", "details"}}`."""

    success: bool = False
    error: ErrorBody


class Page(BaseModel, Generic[T]):
    """A page of a list: the items and how many there are in all."""

    items: list[T]
    total: int


def ok(data: Any, message: str = "") -> dict[str, Any]:
    """Wrap `data` in the success envelope."""
    return {"success": True, "data": data, "message": message}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON response carrying the error envelope."""
    body = {"success": False, "error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring the error envelope for `statuses`."""
    descriptions = {
        400: "Bad request",
        401: "Missing, malformed, expired or revoked token",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        422: "Validation error",
        429: "Rate limited (see Retry-After)",
        500: "Internal error",
        503: "Service busy, or the metadata store unreachable (see Retry-After)",
    }
    return {s: {"model": ErrorEnvelope, "description": descriptions[s]} for s in statuses}
