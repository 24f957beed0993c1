"""The console's own scripts and stylesheet, served with the same security headers as its pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from rivergen.console.session import SECURITY_HEADERS

STATIC_DIR = Path(__file__).parent / "static"


class ConsoleStatic(StaticFiles):
    """StaticFiles that adds the console's headers (CSP, nosniff, no framing) to each file."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file, or 404, with the security headers."""
        response: Response = await super().get_response(path, scope)
        response.headers.update({**SECURITY_HEADERS, "Cache-Control": "no-cache"})
        return response


def console_static(**kwargs: Any) -> ConsoleStatic:
    """The mounted app serving /console-static."""
    return ConsoleStatic(directory=STATIC_DIR, **kwargs)
