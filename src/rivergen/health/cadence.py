"""When scheduled checks are due, how long one may take, and how long a claim on one lasts.

Pure functions of the interval and the clock, shared by the data-source service (first due time),
the claim query (next due time, lease) and the check runner (timeout), so the in-process scheduler
and the Celery workers follow exactly the same rules:

* The first check of a source is due right after its interval is set, plus a small random phase
  (up to 10 % of the interval, at most 10 s) so sources created in bulk do not fire in lockstep.
* Afterwards checks keep their cadence: the next one is due `interval` after the previous due
  time, so small delays do not accumulate. A check that starts late by more than a tenth of its
  interval (a source just created, a claim that expired with a dead worker) moves the following
  ones: the next is due one interval after it, so two checks are never closer than the interval.
  When a whole interval was missed (workers down, store unreachable) the missed checks are not
  replayed in a burst: the next one is due one interval (plus phase jitter) from now.
* A scheduled probe gets `interval - 1` seconds (between 1 s and the default test timeout), and a
  claim lasts `max(interval, 2)` seconds from the start of the check. So a check always ends inside
  its claim (nothing overlaps), and when the process holding a claim dies, the claim expires by the
  time the next check is due: only the check it held is lost.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from rivergen.store.base import utcnow

MAX_PHASE_JITTER_SECONDS = 10.0
PHASE_JITTER_FRACTION = 0.1
# A check starting later than this fraction of its interval moves the following ones with it.
ON_TIME_FRACTION = 0.1


def phase_jitter(interval_seconds: int) -> timedelta:
    """A random offset in [0, min(10 % of the interval, 10 s)) spreading sources' due times."""
    spread = min(interval_seconds * PHASE_JITTER_FRACTION, MAX_PHASE_JITTER_SECONDS)
    return timedelta(seconds=random.uniform(0.0, spread))


def first_check_at(interval_seconds: int | None, now: datetime | None = None) -> datetime | None:
    """When the first check is due after the interval is set; None when checks are off."""
    if interval_seconds is None:
        return None
    return (now or utcnow()) + phase_jitter(interval_seconds)


def next_due_after(due_at: datetime, interval_seconds: int, now: datetime) -> datetime:
    """The due time following the check due at `due_at` and claimed at `now`."""
    interval = timedelta(seconds=interval_seconds)
    late = now - due_at
    if late <= interval * ON_TIME_FRACTION:
        return due_at + interval
    if late < interval:
        return now + interval
    return now + interval + phase_jitter(interval_seconds)


def lease_seconds(interval_seconds: int) -> int:
    """How long a claim on one check lasts, counted from its start."""
    return max(interval_seconds, 2)


def scheduled_timeout(interval_seconds: int, default_timeout_seconds: int) -> int:
    """The probe timeout of a scheduled check: always shorter than its claim."""
    return max(1, min(default_timeout_seconds, interval_seconds - 1))
