"""Prometheus metrics of connection tests (created once at import)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TESTS = Counter(
    "rivergen_connection_tests_total",
    "Connection tests run, by engine, trigger and outcome (ok or the error code)",
    ["engine", "trigger", "outcome"],
)
TEST_SECONDS = Histogram(
    "rivergen_connection_test_seconds",
    "Wall time of connection tests, by engine and trigger",
    ["engine", "trigger"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
