"""GET /data-sources/{id}/health: summary and history against records counted by hand."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from rivergen.health.models import HealthRollup
from tests.fixtures.app import Api
from tests.health.helpers import (
    T0,
    Org,
    context_of,
    data_of,
    error_code_of,
    insert,
    record,
    sign_in,
)

pytestmark = pytest.mark.anyio

# (seconds after T0, successful, response time): 11 records, 6 successful.
SERIES: list[tuple[int, bool, float | None]] = [
    (0, True, 10),
    (10, True, 20),
    (20, False, None),
    (30, True, 30),
    (40, True, 40),
    (50, False, None),
    (60, True, 50),
    (70, True, 60),
    (80, False, 1000),  # a timeout's duration: not a response time of the database
    (90, False, None),
    (100, False, None),
]


def iso(seconds: float) -> str:
    """T0 + seconds as the API writes it."""
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont, as the reference."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (position - lower) * (ordered[upper] - ordered[lower])


@pytest.fixture
async def org(api: Api) -> Org:
    return await sign_in(api)


async def series_source(org: Org) -> int:
    source_id = await org.create_source()
    other_id = await org.create_source()
    records = [record(source_id, org.organization_id, t, ok, rt) for t, ok, rt in SERIES]
    # Another source's records in the same period must not count.
    records += [record(other_id, org.organization_id, t + 5, True, 999) for t in (0, 50, 95)]
    await insert(org.api, records)
    return source_id


async def test_summary_over_all_history(org: Org) -> None:
    source_id = await series_source(org)
    data = data_of(await org.health(source_id))
    assert data["data_source_id"] == source_id
    assert data["status"] == "pending"
    assert data["summary"] == {
        "checks": 11,
        "successful": 6,
        "failed": 5,
        "uptime_percent": 54.55,
        "avg_response_time_ms": 35.0,
        # sorted 10..60, position 0.95 * 5 = 4.75: 50 + 0.75 * (60 - 50)
        "p95_response_time_ms": 57.5,
        "last_success_at": iso(70),
        "last_failure_at": iso(100),
        "consecutive_failures": 3,
    }


async def test_summary_over_a_window(org: Org) -> None:
    source_id = await series_source(org)
    data = data_of(await org.health(source_id, since=iso(30), until=iso(80)))
    assert data["summary"] == {
        "checks": 5,
        "successful": 4,
        "failed": 1,
        "uptime_percent": 80.0,
        "avg_response_time_ms": 45.0,
        # sorted 30..60, position 0.95 * 3 = 2.85: 50 + 0.85 * (60 - 50)
        "p95_response_time_ms": 58.5,
        "last_success_at": iso(70),
        "last_failure_at": iso(50),
        "consecutive_failures": 0,
    }
    assert [h["tested_at"] for h in data["history"]] == [iso(t) for t in (70, 60, 50, 40, 30)]


async def test_summary_of_a_window_without_success(org: Org) -> None:
    source_id = await series_source(org)
    data = data_of(await org.health(source_id, since=iso(75)))
    assert data["summary"] == {
        "checks": 3,
        "successful": 0,
        "failed": 3,
        "uptime_percent": 0.0,
        "avg_response_time_ms": None,
        "p95_response_time_ms": None,
        "last_success_at": None,
        "last_failure_at": iso(100),
        "consecutive_failures": 3,
    }


async def test_empty_window(org: Org) -> None:
    source_id = await series_source(org)
    data = data_of(await org.health(source_id, since=iso(1000)))
    assert data["summary"] == {
        "checks": 0,
        "successful": 0,
        "failed": 0,
        "uptime_percent": None,
        "avg_response_time_ms": None,
        "p95_response_time_ms": None,
        "last_success_at": None,
        "last_failure_at": None,
        "consecutive_failures": 0,
    }
    assert data["history"] == []
    assert data["next_cursor"] is None


async def test_history_items_newest_first_with_every_field(org: Org) -> None:
    source_id = await series_source(org)
    response = await org.health(source_id, limit=3)
    body = response.json()
    assert body["message"] == "Health history retrieved"
    history = body["data"]["history"]
    assert [h["tested_at"] for h in history] == [iso(100), iso(90), iso(80)]
    assert history[0] == {
        "tested_at": iso(100),
        "connection_successful": False,
        "response_time_ms": None,
        "error_code": "CONNECTION_ERROR",
        "error_message": "Connection refused",
        "error_phase": "tcp",
        "ssh_tunnel_established": False,
        "database_version": None,
        "triggered_by": "schedule",
        "user_id": None,
    }
    assert body["data"]["next_cursor"]
    # The summary covers the whole window, not the page.
    assert body["data"]["summary"]["checks"] == 11


async def test_consecutive_failures_follow_id_order_on_equal_times(org: Org) -> None:
    source_id = await org.create_source()
    oid = org.organization_id
    await insert(
        org.api,
        [
            record(source_id, oid, 0, False),
            record(source_id, oid, 10, True, 5),
            record(source_id, oid, 10, False),  # same instant, written after the success
            record(source_id, oid, 20, False),
        ],
    )
    summary = data_of(await org.health(source_id))["summary"]
    assert summary["consecutive_failures"] == 2
    assert summary["last_success_at"] == iso(10)


@pytest.mark.parametrize(
    ("count", "whole_ms"),
    [(1, False), (2, False), (20, False), (101, False), (2, True), (57, True)],
)
async def test_p95_is_percentile_cont(org: Org, count: int, whole_ms: bool) -> None:
    rng = random.Random(count)
    if whole_ms:  # as probes report them: few distinct values, many ties
        values = [float(rng.randint(3, 9)) for _ in range(count)]
    else:
        values = [round(rng.uniform(1, 500), 3) for _ in range(count)]
    source_id = await org.create_source()
    records = [record(source_id, org.organization_id, i, True, v) for i, v in enumerate(values)]
    records += [record(source_id, org.organization_id, count + i, False, 5000) for i in range(3)]
    await insert(org.api, records)
    summary = data_of(await org.health(source_id))["summary"]
    assert summary["p95_response_time_ms"] == round(percentile_cont(values, 0.95), 1)
    assert summary["avg_response_time_ms"] == round(sum(values) / count, 1)
    assert summary["checks"] == count + 3
    # The same over a window (computed from the records instead of the latency counts).
    windowed = data_of(await org.health(source_id, since=iso(0)))["summary"]
    assert windowed == summary


async def test_cursor_pages_through_everything_once(org: Org) -> None:
    source_id = await org.create_source()
    # 25 records, several sharing a timestamp across page boundaries.
    times = [i // 3 for i in range(25)]
    await insert(
        org.api,
        [record(source_id, org.organization_id, t, t % 2 == 0, 10) for t in times],
    )
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        data = data_of(await org.health(source_id, limit=7, cursor=cursor))
        seen += data["history"]
        pages += 1
        assert data["summary"]["checks"] == 25
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert len(seen) == 25
    stamps = [h["tested_at"] for h in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert sorted(stamps) == sorted(iso(t) for t in times)


async def test_cursor_with_window(org: Org) -> None:
    source_id = await series_source(org)
    first = data_of(await org.health(source_id, limit=2, since=iso(20), until=iso(90)))
    assert [h["tested_at"] for h in first["history"]] == [iso(80), iso(70)]
    second = data_of(
        await org.health(
            source_id, limit=10, since=iso(20), until=iso(90), cursor=first["next_cursor"]
        )
    )
    assert [h["tested_at"] for h in second["history"]] == [iso(t) for t in (60, 50, 40, 30, 20)]
    assert second["next_cursor"] is None


async def test_exact_last_page_has_no_cursor(org: Org) -> None:
    source_id = await series_source(org)
    data = data_of(await org.health(source_id, limit=11))
    assert len(data["history"]) == 11
    assert data["next_cursor"] is None


async def test_naive_and_offset_times_are_utc(org: Org) -> None:
    source_id = await series_source(org)
    naive = (T0 + timedelta(seconds=60)).replace(tzinfo=None).isoformat()
    shifted = (T0 + timedelta(seconds=60)).astimezone().isoformat()
    for since in (naive, shifted):
        data = data_of(await org.health(source_id, since=since))
        assert data["summary"]["checks"] == 5


async def test_bad_parameters(org: Org) -> None:
    source_id = await series_source(org)
    for params in (
        {"cursor": "not-a-cursor"},
        {"cursor": "bm9wZQ"},  # base64 of "nope"
        {"since": iso(50), "until": iso(50)},
        {"since": "yesterday"},
        {"limit": 0},
        {"limit": 1001},
        {"cursor": "MjAyNi0wMS0wMVQxMjowMDowMCswMDowMHw5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"},
    ):
        response = await org.health(source_id, **params)
        assert error_code_of(response, 422) == "VALIDATION_ERROR", params


async def test_extreme_times_are_harmless(org: Org) -> None:
    source_id = await series_source(org)
    extremes: list[dict[str, Any]] = [
        {"since": "0001-01-01T00:00:00", "until": "9999-12-31T23:59:59"},
        {"since": "9999-12-31T23:30:00+00:00"},
        {"until": "0001-01-01T00:30:00-05:00"},
        {"since": "0001-01-01T00:00:00+05:00"},
    ]
    for params in extremes:
        response = await org.health(source_id, **params)
        assert response.status_code == 200, (params, response.text)
    everything = data_of(
        await org.health(source_id, since="0001-01-01T00:00:00", until="9999-12-31T23:59:59")
    )
    assert everything["summary"]["checks"] == 11
    assert error_code_of(await org.health(2**31), 422) == "VALIDATION_ERROR"


async def test_who_may_read(org: Org) -> None:
    source_id = await series_source(org)
    viewer = await org.member("viewer")
    assert data_of(await org.health(source_id, headers=viewer))["summary"]["checks"] == 11
    other_org = await org.other_organization()
    outsider = await org.member("admin", other_org)
    assert error_code_of(await org.health(source_id, headers=outsider), 404) == "NOT_FOUND"
    assert error_code_of(await org.health(999_999), 404) == "NOT_FOUND"
    unauthenticated = await org.api.client.get(f"/api/v1/data-sources/{source_id}/health")
    assert error_code_of(unauthenticated, 401) == "UNAUTHORIZED"


async def test_member_without_organization_is_forbidden(org: Org) -> None:
    source_id = await series_source(org)
    viewer = await org.member("viewer")
    me = data_of(await org.api.client.get("/api/v1/auth/me", headers=viewer))
    removed = await org.api.client.delete(
        f"/api/v1/organizations/{org.organization_id}/members/{me['id']}", headers=org.owner
    )
    data_of(removed)
    assert error_code_of(await org.health(source_id, headers=viewer), 403) == "FORBIDDEN"


async def test_manual_test_appears_in_history(org: Org) -> None:
    source_id = await org.create_source()
    tested = await org.api.client.post(
        f"/api/v1/data-sources/{source_id}/test", json={"timeout_seconds": 5}, headers=org.owner
    )
    result = data_of(tested)
    data = data_of(await org.health(source_id))
    assert data["status"] == result["status"]
    (item,) = data["history"]
    assert item["triggered_by"] == "manual"
    assert item["user_id"] is not None
    assert item["connection_successful"] is result["connection_successful"]
    assert item["tested_at"] == result["tested_at"]


def reference_summary(series: list[tuple[float, bool, float | None]]) -> dict[str, Any]:
    """The summary computed in Python from the records themselves."""
    ordered = sorted(series, key=lambda item: item[0])
    successes = [t for t, ok, _ in ordered if ok]
    failures = [t for t, ok, _ in ordered if not ok]
    times = [rt for _, ok, rt in ordered if ok and rt is not None]
    last_success = successes[-1] if successes else None
    streak = [t for t in failures if last_success is None or t > last_success]
    checks = len(ordered)
    return {
        "checks": checks,
        "successful": len(successes),
        "failed": len(failures),
        "uptime_percent": round(len(successes) * 100 / checks, 2) if checks else None,
        "avg_response_time_ms": round(sum(times) / len(times), 1) if times else None,
        "p95_response_time_ms": round(percentile_cont(times, 0.95), 1) if times else None,
        "last_success_at": iso(successes[-1]) if successes else None,
        "last_failure_at": iso(failures[-1]) if failures else None,
        "consecutive_failures": len(streak),
    }


async def test_windows_across_hours_match_the_records(org: Org) -> None:
    """Whole hours come from the rollups, partial ones from the records: same numbers."""
    rng = random.Random(7)
    # Five hours and a bit, a record every 7 minutes, about 15 % failures.
    series: list[tuple[float, bool, float | None]] = []
    for i in range(46):
        ok = rng.random() > 0.15
        series.append((i * 420.0, ok, round(rng.uniform(1, 90), 2) if ok else None))
    source_id = await org.create_source()
    await insert(
        org.api, [record(source_id, org.organization_id, t, ok, rt) for t, ok, rt in series]
    )
    hour = 3600.0
    windows: list[tuple[float | None, float | None]] = [
        (None, None),
        (1000.0, None),
        (None, 9000.0),
        (1000.0, 9000.0),
        (hour, 3 * hour),  # exact hour boundaries
        (hour - 1, 3 * hour + 1),
        (hour + 60, hour + 1800),  # inside one hour
        (2 * hour + 600, 3 * hour + 600),  # straddles one boundary
        (50 * hour, None),  # empty
    ]
    for since, until in windows:
        selected = [
            item
            for item in series
            if (since is None or item[0] >= since) and (until is None or item[0] < until)
        ]
        data = data_of(
            await org.health(
                source_id,
                since=None if since is None else iso(since),
                until=None if until is None else iso(until),
            )
        )
        assert data["summary"] == reference_summary(selected), (since, until)


async def test_rollups_follow_deletes(org: Org) -> None:
    source_id = await series_source(org)
    before = data_of(await org.health(source_id))["summary"]
    assert before["checks"] == 11
    deleted = await org.api.client.delete(f"/api/v1/data-sources/{source_id}", headers=org.owner)
    data_of(deleted)
    async with context_of(org.api).sessions() as session:
        left = await session.scalar(
            select(func.count()).where(HealthRollup.data_source_id == source_id)
        )
    assert left == 0
