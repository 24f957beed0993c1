"""Errors a service raises; the HTTP layer maps each kind to a status and the error envelope."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base class: `code` is the envelope's error code, `message` is safe to show."""

    code = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        details: Any = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.retry_after = retry_after


class BadRequest(ServiceError):
    """The request cannot be understood."""

    code = "BAD_REQUEST"


class Unauthorized(ServiceError):
    """No valid credentials."""

    code = "UNAUTHORIZED"


class Forbidden(ServiceError):
    """Authenticated, but not allowed."""

    code = "FORBIDDEN"


class NotFound(ServiceError):
    """No such object for this caller (another organization's objects included)."""

    code = "NOT_FOUND"


class Conflict(ServiceError):
    """The change clashes with existing state (a duplicate name, the last owner)."""

    code = "CONFLICT"


class InvalidInput(ServiceError):
    """Input that passed the schema but breaks a rule; `details` lists the fields."""

    code = "VALIDATION_ERROR"


class RateLimited(ServiceError):
    """Too many requests; `retry_after` says when to come back."""

    code = "RATE_LIMITED"


class ServiceBusy(ServiceError):
    """No capacity right now; `retry_after` says when to come back."""

    code = "SERVICE_BUSY"


class ServiceUnavailable(ServiceError):
    """A dependency of every request (the metadata store) cannot be reached; try again later."""

    code = "SERVICE_UNAVAILABLE"


STATUS_BY_CODE: dict[str, int] = {
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "VALIDATION_ERROR": 422,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
    "SERVICE_BUSY": 503,
    "SERVICE_UNAVAILABLE": 503,
}
