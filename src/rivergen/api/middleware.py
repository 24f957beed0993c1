"""Pure ASGI middleware: a request id per request, an access log line, and a last-resort 500
(503 when the metadata store cannot be reached)."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rivergen.api.envelope import error_response
from rivergen.api.store_outage import unavailable
from rivergen.core.errors import STATUS_BY_CODE
from rivergen.store.outage import describe, store_unreachable

log = structlog.get_logger("rivergen.http")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Binds a request id to every log line and answers unexpected exceptions with the envelope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._request_id(scope)
        # When the request arrived, so that deadlines can count the time spent before a handler.
        scope.setdefault("state", {})["arrived_at"] = time.monotonic()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            details = {"request_id": request_id}
            if store_unreachable(exc):
                # An outage, not a bug: one line an operator can alert on, no trace.
                log.warning("store_unreachable", path=scope.get("path"), error=describe(exc))
                error = unavailable(details)
                headers = {"Retry-After": str(error.retry_after)}
                response = error_response(
                    STATUS_BY_CODE[error.code], error.code, error.message, details, headers
                )
            else:
                # The trace goes to the log (scrubbed by the logging pipeline), never the client.
                log.exception("unhandled_error", path=scope.get("path"))
                response = error_response(
                    500, "INTERNAL_ERROR", "An internal error occurred", details
                )
            if not response_started:
                await response(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()

    @staticmethod
    def _request_id(scope: Scope) -> str:
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SAFE_REQUEST_ID.match(candidate):
                    return str(candidate)
        return uuid.uuid4().hex
