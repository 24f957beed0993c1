"""What the console computes for display: the stale badge, "3 min ago", chart points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rivergen.console.service import ago, badge, chart_points
from rivergen.datasources.schemas import DataSourceOut
from rivergen.health.schemas import HealthRecordOut

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _source(**fields: Any) -> DataSourceOut:
    values: dict[str, Any] = {
        "id": 1, "organization_id": 1, "name": "s", "type": "postgresql", "description": None,
        "connection": {}, "ssh_tunnel": None, "health_check_interval_seconds": 60,
        "status": "active", "last_tested_at": NOW - timedelta(seconds=100),
        "last_connected_at": None, "last_response_time_ms": 3.0, "last_error_code": None,
        "last_error_message": None, "database_version": None, "ssh_host_key_fingerprint": None,
        "created_by": None, "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip
    values.update(fields)
    return DataSourceOut(**values)


def test_stale_only_past_twice_the_interval() -> None:
    assert badge(_source(), NOW) == "active"
    assert badge(_source(last_tested_at=NOW - timedelta(seconds=121)), NOW) == "stale"
    assert badge(_source(status="failed", last_tested_at=NOW - timedelta(days=1)), NOW) == "stale"
    # No schedule: nothing is expected, so nothing is stale.
    old = NOW - timedelta(days=9)
    assert badge(_source(health_check_interval_seconds=None, last_tested_at=old), NOW) == "active"
    assert badge(_source(status="pending", last_tested_at=None), NOW) == "pending"


def test_ago() -> None:
    assert ago(None, NOW) == "never"
    assert ago(NOW - timedelta(seconds=5), NOW) == "5 s ago"
    assert ago(NOW - timedelta(minutes=3, seconds=20), NOW) == "3 min ago"
    assert ago(NOW - timedelta(hours=2), NOW) == "2 h ago"
    assert ago(NOW - timedelta(days=3), NOW) == "3 d ago"


def test_chart_points_are_oldest_first_and_scaled() -> None:
    def record(minutes: int, ms: float | None, ok: bool = True) -> HealthRecordOut:
        return HealthRecordOut(
            tested_at=NOW - timedelta(minutes=minutes), connection_successful=ok,
            response_time_ms=ms, error_code=None, error_message=None, error_phase=None,
            ssh_tunnel_established=False, database_version=None, triggered_by="manual",
            user_id=None,
        )  # fmt: skip

    points = chart_points([record(1, 10.0), record(2, None, ok=False), record(3, 20.0)])
    assert [p.ms for p in points] == [20.0, 0.0, 10.0]
    assert [p.x for p in points] == [0.0, 300.0, 600.0]
    assert points[0].y < points[2].y < points[1].y  # the slowest check is drawn highest
    assert [p.ok for p in points] == [True, False, True]
