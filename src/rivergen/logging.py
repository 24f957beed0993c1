"""Structured logging (structlog) with secrets scrubbed from every event."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from rivergen.security.scrub import scrub_event_dict


class ScrubbedBoundLogger(structlog.stdlib.BoundLogger):
    """A stdlib BoundLogger whose `exception()` leaves no raw exception on the log record.

    `logging.Logger.exception` attaches the exception to the record (`exc_info`), where any
    handler other than ours (an APM agent, a log shipper) would render it unscrubbed. Our chain
    has already rendered it, secrets masked, into the event's `exception` key.
    """

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        """Log at ERROR with the current exception rendered (and scrubbed) into the event."""
        kw.setdefault("exc_info", True)
        return self._proxy_to_logger("error", event, *args, **kw)


def configure_logging(level: str = "info", json: bool = False) -> None:
    """Send structlog and stdlib logging through one scrubbing pipeline to stderr."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        scrub_event_dict,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=ScrubbedBoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log would duplicate ours; its error log goes through the same pipeline.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    # aiosqlite's debug lines print every statement with its parameters (a name filter holding
    # a pasted token, ciphertexts): never part of the service's log.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
