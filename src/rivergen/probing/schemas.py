"""Bodies of the connection-test endpoints; the ten fields of the spec keep their meaning."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rivergen.core.validation import JsonInt
from rivergen.datasources.schemas import DataSourceCreate

DEFAULT_TIMEOUT_SECONDS = 30


class TestRequest(BaseModel):
    """Optional body of POST /data-sources/{id}/test."""

    model_config = ConfigDict(extra="forbid")
    __test__ = False  # not a pytest test class

    test_query: str | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        examples=["SELECT 1"],
        description="One read-only statement; the engine's default when omitted",
    )
    timeout_seconds: JsonInt = Field(
        default=DEFAULT_TIMEOUT_SECONDS,
        ge=1,
        le=300,
        description="Bounds the whole test, SSH tunnel included",
    )


class UnsavedTestRequest(DataSourceCreate):
    """A configuration to test without saving it, plus the test options."""

    __test__ = False

    test_query: str | None = Field(default=None, min_length=1, max_length=10_000)
    timeout_seconds: JsonInt = Field(default=DEFAULT_TIMEOUT_SECONDS, ge=1, le=300)
    name: str = Field(default="unsaved", min_length=1, max_length=200)


class SecurityOut(BaseModel):
    """How the test's connection was protected; null where the driver cannot tell."""

    tls: bool | None = Field(default=None, description="Whether the connection used TLS")
    tls_verified: bool | None = Field(
        default=None,
        description="Whether the server's certificate was verified (ssl_mode verify-ca/full)",
    )
    tls_version: str | None = Field(default=None, examples=["TLSv1.3"])
    auth_method: str | None = Field(
        default=None,
        examples=["scram-sha-256", "mysql_native_password", "AUTH (cleartext)", "none"],
        description="How the credentials were presented to the server",
    )


class TestResultOut(BaseModel):
    """The spec's response `data`, plus error_phase, timings_ms, hint, the SSH fingerprint,
    security and test_query_result_truncated."""

    __test__ = False

    data_source_id: int | None
    status: Literal["active", "failed"]
    connection_successful: bool
    response_time_ms: int | None
    test_query_result: str | None
    tested_at: datetime
    ssh_tunnel_established: bool
    database_version: str | None
    error_message: str | None
    error_code: str | None
    error_phase: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    hint: str | None = None
    ssh_host_key_fingerprint: str | None = None
    test_query_result_truncated: bool = Field(
        default=False,
        description="test_query_result holds only the first 1024 characters of the first cell",
    )
    security: SecurityOut = Field(default_factory=SecurityOut)
