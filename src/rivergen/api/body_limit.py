"""Refuse request bodies over 1 MiB with 413 before anything reads them whole.

Runs outside every other body reader (the NUL guard, FastAPI's JSON parsing): a declared
Content-Length over the limit is refused without reading a byte, and a body without one
(chunked) is counted as it arrives and refused as soon as it passes the limit, so no more than
the limit is ever held in memory. No route of this API takes anything near that size.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rivergen.api.envelope import error_response

MAX_BODY_BYTES = 1024 * 1024
CODE = "PAYLOAD_TOO_LARGE"
MESSAGE = "The request body is larger than the limit of 1 MiB"


class BodyLimitMiddleware:
    """Pure ASGI middleware: 413 PAYLOAD_TOO_LARGE for bodies over `limit` bytes."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send)
            return
        # Read what arrives up to the limit, then hand the same bytes to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, replay_first([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                chunks.clear()
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        chunks.clear()
        await self.app(scope, replay_first([body], receive), send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
        # The connection is closed after the answer (uvicorn does not read an unread body).
        response = error_response(413, CODE, MESSAGE, headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server already refuses a malformed length
    return None


def replay_first(messages: list[Message], receive: Receive) -> Receive:
    """A receive callable that yields `messages` first, then whatever `receive` gives."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
