"""Errors of the remote client, one class per kind of answer, built from the error envelope."""

from __future__ import annotations

from typing import Any

import httpx


class RiverGenError(Exception):
    """A request that did not succeed; `code` and `message` come from the server's envelope."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "CLIENT_ERROR",
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f"HTTP {self.status} " if self.status is not None else ""
        return f"{where}{self.code}: {self.message}"


class ConnectionFailed(RiverGenError):
    """The server could not be reached or did not answer in time."""


class Unauthorized(RiverGenError):
    """401: the token is missing, malformed, expired or revoked."""


class Forbidden(RiverGenError):
    """403: the token's role does not allow this."""


class NotFound(RiverGenError):
    """404: no such object for this caller."""


class Conflict(RiverGenError):
    """409: for instance a name already taken."""


class InvalidRequest(RiverGenError):
    """400 or 422: the server refused the input; `details` lists the fields."""


class RateLimited(RiverGenError):
    """429: come back after `retry_after` seconds."""


class ServerError(RiverGenError):
    """5xx: the server failed or is busy (`retry_after` when it says so)."""


_BY_STATUS: dict[int, type[RiverGenError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
    429: RateLimited,
}


def error_from(response: httpx.Response) -> RiverGenError:
    """The error an unsuccessful response stands for, from its envelope when it has one."""
    code, message, details = "HTTP_ERROR", response.reason_phrase or "request failed", None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        details = error.get("details")
    retry = response.headers.get("retry-after")
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = ServerError if response.status_code >= 500 else RiverGenError
    return kind(
        message,
        status=response.status_code,
        code=code,
        details=details,
        retry_after=float(retry) if retry and retry.isdigit() else None,
    )
