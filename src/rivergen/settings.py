"""One settings class: every option is an environment variable prefixed RIVERGEN_."""

from __future__ import annotations

from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rivergen.core.email import Email


class Settings(BaseSettings):
    """Service configuration read from the environment (and an optional `.env` file)."""

    model_config = SettingsConfigDict(
        env_prefix="RIVERGEN_", env_file=".env", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("./var")
    database_url: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = False

    admin_email: Email = "admin@rivergen.local"
    admin_password: str | None = None
    admin_organization: str = "Default"

    secret_keys: str | None = None
    jwt_secret: str | None = None
    jwt_issuer: str = "rivergen"
    jwt_audience: str = "rivergen-api"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86400)
    refresh_token_ttl_seconds: int = Field(default=14 * 86400, ge=60)
    # How long a verified sign-in session (user and roles) is trusted without the store: a
    # revocation or role change made by another server process takes effect within this time
    # (this process forgets at once). 0 checks the store on every request.
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=60)

    # Per-user daily budgets (shared by every server process through the store): organizations
    # created, and accounts created plus invitations sent.
    organizations_per_day_per_user: int = Field(default=10, ge=1)
    accounts_per_day_per_user: int = Field(default=100, ge=1)
    # How long an invitation's token may be accepted.
    invitation_ttl_seconds: int = Field(default=7 * 86400, ge=60, le=90 * 86400)

    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_client: int = Field(default=20, ge=1)
    login_failure_window_seconds: int = Field(default=300, ge=1)

    probe_workers: int = Field(default=32, ge=1, le=1024)
    probe_queue: int = Field(default=64, ge=0, le=100000)
    default_test_timeout_seconds: int = Field(default=30, ge=1, le=300)
    tests_per_minute_per_organization: int = Field(default=120, ge=1)
    tests_per_minute_per_user: int = Field(default=60, ge=1)

    allow_private_networks: bool = True
    # Targets on this machine (loopback, the machine's own addresses) reach services that only
    # trust local clients; a shared installation must opt in.
    allow_loopback: bool = False
    # Host-name lookups run in their own bounded pool: a DNS server that never answers holds
    # a thread per lookup until the system resolver gives up, and must not hold every thread.
    dns_workers: int = Field(default=8, ge=1, le=256)
    dns_queue: int = Field(default=32, ge=0, le=10000)
    allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or
    # networks). Empty: no forwarded header is trusted, from loopback neither, so the address
    # that sign-in throttling and the audit log see is the TCP peer's.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    file_sources_dir: Path | None = None

    scheduler_enabled: bool = True
    scheduler_max_concurrent: int = Field(default=4, ge=1, le=256)
    min_health_check_interval_seconds: int = Field(default=10, ge=1)
    health_retention_days: int = Field(default=30, ge=1)
    audit_retention_days: int = Field(default=365, ge=1)
    broker_url: str = "redis://127.0.0.1:6379/0"

    # Alerts: the outbox dispatcher runs in this process (server or worker) when enabled; its
    # claims keep each delivery to one dispatcher however many run.
    alerts_dispatcher_enabled: bool = True
    alert_delivery_timeout_seconds: float = Field(default=10.0, ge=0.1, le=120)
    alert_max_response_bytes: int = Field(default=64 * 1024, ge=0, le=16 * 1024 * 1024)
    alert_retry_base_seconds: float = Field(default=5.0, gt=0, le=3600)
    alert_retry_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    alert_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    alert_concurrency: int = Field(default=32, ge=1, le=1024)
    # Per-source Prometheus gauges (one series per source and gauge): off for huge installations.
    source_metrics_enabled: bool = True

    @field_validator("allowed_networks", "trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_networks", "trusted_proxies")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ip_network(item, strict=False)
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+psycopg://")
        return value

    @cached_property
    def effective_database_url(self) -> str:
        """The metadata store URL: the setting, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'rivergen.db').resolve()}"

    @cached_property
    def effective_file_sources_dir(self) -> Path:
        """The only directory file engines (sqlite, duckdb) may read from."""
        return (self.file_sources_dir or self.data_dir / "files").resolve()

    @cached_property
    def allowed_network_objects(self) -> list[IPv4Network | IPv6Network]:
        """The allow-list parsed into network objects."""
        return [ip_network(item, strict=False) for item in self.allowed_networks]


def load_settings() -> Settings:
    """Read settings, turning a validation error into a one-line message naming the setting."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "RIVERGEN_" + str(error["loc"][0]).upper() if error["loc"] else "RIVERGEN_*"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("; ".join(problems)) from None


class SettingsError(Exception):
    """A setting has a value the service cannot start with."""
