"""Refuse NUL characters in JSON request bodies before any route sees them.

PostgreSQL text (and the drivers that bind it) cannot hold U+0000: such a value reaching the
store was a 500 on PostgreSQL, and silently stored on SQLite. No field of this API has a use for
it, so it is refused at the edge, the same way on both stores: 422 VALIDATION_ERROR naming each
field, like any other validation error. (Query parameters that reach the store declare the same
rule themselves: `NO_NUL` in api/params.py.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rivergen.api.body_limit import replay_first
from rivergen.api.envelope import error_response

_NUL = "\x00"
_MAX_DETAILS = 20
_MESSAGE = "Text must not contain NUL (U+0000) characters"


def _nul_paths(value: Any, path: str) -> Iterator[str]:
    """Paths (body.a.0.b) of the strings, or keys, in a JSON value that contain NUL."""
    if isinstance(value, str):
        if _NUL in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key.replace(_NUL, '')}"
            if _NUL in key:
                yield child
            else:
                yield from _nul_paths(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, f"{path}.{index}")


def _details(fields: list[str]) -> list[dict[str, str]]:
    unique = list(dict.fromkeys(fields))[:_MAX_DETAILS]
    return [{"field": field, "message": _MESSAGE, "type": "string_nul"} for field in unique]


class TextGuardMiddleware:
    """Pure ASGI middleware answering 422 for NUL in a string (or a key) of a JSON body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return

        # Read the body once (BodyLimitMiddleware already bounded it), check it, then hand the
        # same bytes to the app.
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, replay_first([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if b"\\u0000" in body or b"\x00" in body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None  # not JSON: the app answers it (400 for a malformed body)
            fields = list(_nul_paths(parsed, "body"))
            if fields:
                await self._refuse(fields, scope, receive, send)
                return
        replayed: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay_first([replayed], receive), send)

    @staticmethod
    async def _refuse(fields: list[str], scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            422, "VALIDATION_ERROR", "The request is not valid", _details(fields)
        )
        await response(scope, receive, send)
