"""A monotonic deadline shared by every phase of one connection test."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Deadline:
    """The moment (on the monotonic clock) by which a whole test must be over."""

    expires_at: float
    started_at: float = field(default_factory=time.monotonic)

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """Return a deadline `seconds` from now."""
        now = time.monotonic()
        return cls(expires_at=now + seconds, started_at=now)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - time.monotonic())

    def expired(self) -> bool:
        """Whether no time is left."""
        return self.remaining() <= 0.0

    def remaining_whole_seconds(self, minimum: int = 1) -> int:
        """Seconds left rounded up, for drivers that only take whole seconds."""
        return max(minimum, math.ceil(self.remaining()))

    def elapsed_ms(self) -> float:
        """Milliseconds since the deadline was created."""
        return (time.monotonic() - self.started_at) * 1000.0
