"""Response bodies of the health endpoint."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class HealthSummaryOut(BaseModel):
    """Statistics over the requested window, computed by the store."""

    checks: int = Field(description="Records in the window")
    successful: int
    failed: int
    uptime_percent: float | None = Field(
        description="successful / checks * 100, two decimals; null without checks"
    )
    avg_response_time_ms: float | None = Field(
        description="Mean response time of the successful checks, one decimal"
    )
    p95_response_time_ms: float | None = Field(
        description="95th percentile (continuous, linear interpolation as PostgreSQL's "
        "percentile_cont) of the successful checks' response times, one decimal"
    )
    last_success_at: datetime | None
    last_failure_at: datetime | None
    consecutive_failures: int = Field(
        description="Failed checks after the newest successful one in the window"
    )


class HealthRecordOut(BaseModel):
    """One test of the data source, manual or scheduled."""

    tested_at: datetime
    connection_successful: bool
    response_time_ms: float | None
    error_code: str | None
    error_message: str | None
    error_phase: str | None
    ssh_tunnel_established: bool
    database_version: str | None
    triggered_by: str = Field(examples=["manual", "schedule"])
    user_id: int | None


class HealthOut(BaseModel):
    """A data source's status, the window's summary and a page of its history, newest first."""

    data_source_id: int
    status: str
    summary: HealthSummaryOut
    history: list[HealthRecordOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same since/until) for the next, older page; "
        "null on the last page"
    )
