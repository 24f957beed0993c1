"""The answer to a request while the metadata store cannot be reached: 503 with Retry-After.

Which store errors mean "unreachable" is decided in `store/outage.py`; every other store error
stays 500.
"""

from __future__ import annotations

from rivergen.core.errors import ServiceUnavailable

# Long enough for a restarting store to come back, short enough not to idle a client.
RETRY_AFTER_SECONDS = 5
UNREACHABLE_MESSAGE = "The metadata store is not reachable; try again later"


def unavailable(details: object = None) -> ServiceUnavailable:
    """The error a request answers while the store cannot be reached."""
    return ServiceUnavailable(UNREACHABLE_MESSAGE, details, retry_after=RETRY_AFTER_SECONDS)
