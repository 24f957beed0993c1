"""Prometheus metrics of scheduled checks and retention (created once at import).

Checks run, their outcomes and latency by engine are in `rivergen_connection_tests_total` and
`rivergen_connection_test_seconds` with `trigger="schedule"`; these add what only the scheduler
knows.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SCHEDULED_CHECKS = Counter(
    "rivergen_scheduled_checks_total",
    "Scheduled checks by result: ok, failed (the target failed the test), busy (no probe "
    "capacity), lost (the claim expired before the check started), skipped (source deleted "
    "or checks switched off), error (the check could not be run)",
    ["result"],
)
SCHEDULED_CLAIMED = Counter(
    "rivergen_scheduled_checks_claimed_total", "Due checks claimed by this process"
)
SCHEDULED_IN_FLIGHT = Gauge(
    "rivergen_scheduled_checks_in_flight", "Scheduled checks claimed and not finished yet"
)
SCHEDULED_LATENESS = Histogram(
    "rivergen_scheduled_check_lateness_seconds",
    "How late scheduled checks start compared with their due time",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
HEALTH_RECORDS_PURGED = Counter(
    "rivergen_health_records_purged_total",
    "Health records deleted by the retention job (older than RIVERGEN_HEALTH_RETENTION_DAYS)",
)
