"""In-process sliding-window counters for login throttling and rate limits."""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class SlidingWindow:
    """Counts events per key over the last `window` seconds; thread-safe, bounded memory."""

    def __init__(self, limit: int, window_seconds: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window_seconds
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self.max_keys:
                self._evict(now)
            events = self._events[key] = deque()
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def _evict(self, now: float) -> None:
        stale = [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]
        for key in stale:
            del self._events[key]
        if len(self._events) >= self.max_keys:
            # Still full of live keys: drop the oldest-touched half rather than grow without end.
            for key in sorted(self._events, key=lambda k: self._events[k][-1])[
                : self.max_keys // 2
            ]:
                del self._events[key]

    def retry_after(self, key: str) -> int | None:
        """Seconds until `key` may act again, or None when it is under the limit."""
        now = time.monotonic()
        with self._lock:
            events = self._prune(key, now)
            if len(events) < self.limit:
                return None
            return max(1, math.ceil(events[0] + self.window - now))

    def hit(self, key: str) -> int | None:
        """Record one event unless over the limit; return the wait when over it."""
        now = time.monotonic()
        with self._lock:
            events = self._prune(key, now)
            if len(events) >= self.limit:
                return max(1, math.ceil(events[0] + self.window - now))
            events.append(now)
            return None

    def record(self, key: str) -> None:
        """Record one event whatever the count (e.g. a failed login)."""
        now = time.monotonic()
        with self._lock:
            self._prune(key, now).append(now)

    def reset(self, key: str) -> None:
        """Forget `key` (e.g. after a successful login)."""
        with self._lock:
            self._events.pop(key, None)
