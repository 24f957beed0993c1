"""A typed client of the RiverGen API (what the remote `rivergen` commands use).

```python
from rivergen.client import Client, NotFound

with Client("https://rivergen.example.com", token="rgt_...") as api:
    for source in api.list_sources():
        result = api.test_source(source.id, timeout_seconds=10)
        print(source.name, "ok" if result.connection_successful else result.error_code)
    try:
        api.get_source(12345)
    except NotFound as exc:
        print(exc.code, exc.message)
```

Every call has a connect timeout and a read timeout (a test's read timeout is its own
`timeout_seconds` plus a margin); every unsuccessful answer raises a `RiverGenError` subclass
carrying the server's error code, message and details.
"""

from rivergen.client.api import Client
from rivergen.client.errors import (
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    RiverGenError,
    ServerError,
    Unauthorized,
)

__all__ = [
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "RateLimited",
    "RiverGenError",
    "ServerError",
    "Unauthorized",
]
