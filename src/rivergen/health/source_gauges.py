"""Per-source Prometheus gauges: up, last check time, last response time.

Labelled by organization, source id and engine, so Alertmanager users can alert on them without
our alerts. Set from every recorded outcome (and from the store when the process starts);
`RIVERGEN_SOURCE_METRICS_ENABLED=false` turns them off for installations with very many sources.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import Gauge

from rivergen.datasources.models import DataSource

_LABELS = ["organization_id", "data_source_id", "engine"]
SOURCE_UP = Gauge(
    "rivergen_data_source_up", "1 when the source's last check succeeded, else 0", _LABELS
)
SOURCE_LAST_CHECK = Gauge(
    "rivergen_data_source_last_check_timestamp_seconds",
    "When the source was last checked (Unix time)",
    _LABELS,
)
SOURCE_LAST_RESPONSE = Gauge(
    "rivergen_data_source_last_response_time_seconds",
    "Response time of the source's last successful check",
    _LABELS,
)


class SourceGauges:
    """Sets the gauges of sources, or nothing when switched off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def observe(self, rows: Iterable[DataSource]) -> None:
        """Set the gauges of these sources from their stored status."""
        if not self.enabled:
            return
        for row in rows:
            if row.last_tested_at is None:
                continue
            labels = (str(row.organization_id), str(row.id), row.type)
            SOURCE_UP.labels(*labels).set(1 if row.status == "active" else 0)
            SOURCE_LAST_CHECK.labels(*labels).set(_unix(row.last_tested_at))
            if row.last_response_time_ms is not None:
                SOURCE_LAST_RESPONSE.labels(*labels).set(row.last_response_time_ms / 1000.0)

    def forget(self, row: DataSource) -> None:
        """Drop a deleted source's series."""
        labels = (str(row.organization_id), str(row.id), row.type)
        for gauge in (SOURCE_UP, SOURCE_LAST_CHECK, SOURCE_LAST_RESPONSE):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)


def _unix(value: datetime) -> float:
    return value.timestamp()
