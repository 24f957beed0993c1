"""Request and response bodies of data sources.

`connection` is validated per engine by the service (the engine is only known once `type` is
read), so here it is an object; the OpenAPI document shows each body as the union of its
per-engine variants (`documented.py`), and `GET /api/v1/data-source-types` lists the fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from rivergen.core.validation import JsonInt
from rivergen.datasources.documented import all_engine_names, documented_as_union
from rivergen.tunnels.schemas import SshTunnelConfig

MASK = "********"
Status = Literal["pending", "active", "failed"]


def exact_engine_name(value: str | None) -> str | None:
    """Refuse a `type` that is not, exactly, an engine's key or alias (as documented)."""
    if value is not None and value not in all_engine_names():
        known = ", ".join(all_engine_names())
        raise PydanticCustomError("enum", "Unknown type; one of: {known}", {"known": known})
    return value


class DataSourceCreate(BaseModel):
    """A new data source."""

    model_config = ConfigDict(extra="forbid")
    __get_pydantic_json_schema__ = classmethod(documented_as_union())

    name: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=32, examples=["postgresql"])
    description: str | None = Field(default=None, max_length=2000)
    connection: dict[str, Any] = Field(
        description="Engine-specific fields; see GET /api/v1/data-source-types",
        examples=[
            {
                "host": "10.0.3.7",
                "port": 5432,
                "database": "analytics",
                "username": "reader",
                "password": "s3cret",
                "ssl_mode": "require",
            }
        ],
    )
    ssh_tunnel: SshTunnelConfig | None = None
    health_check_interval_seconds: JsonInt | None = Field(default=None, ge=1, le=7 * 86400)

    _type_is_exact = field_validator("type")(exact_engine_name)


class DataSourceUpdate(BaseModel):
    """A partial change: omitted fields keep their value; `connection` keys merge into stored ones.

    A secret that is omitted or sent as "********" keeps the stored one, unless the host, port,
    engine or tunnel host changes: stored secrets never follow a new destination.
    """

    model_config = ConfigDict(extra="forbid")
    __get_pydantic_json_schema__ = classmethod(documented_as_union(patch=True))

    name: str | None = Field(default=None, min_length=1, max_length=200)
    type: str | None = Field(default=None, min_length=1, max_length=32)
    description: str | None = Field(default=None, max_length=2000)
    connection: dict[str, Any] | None = None
    ssh_tunnel: dict[str, Any] | None = None
    health_check_interval_seconds: JsonInt | None = Field(default=None, ge=1, le=7 * 86400)

    _type_is_exact = field_validator("type")(exact_engine_name)


class DataSourceOut(BaseModel):
    """A data source as shown to users: secrets appear as "********"."""

    id: int
    organization_id: int
    name: str
    type: str
    description: str | None
    connection: dict[str, Any]
    ssh_tunnel: dict[str, Any] | None
    health_check_interval_seconds: JsonInt | None
    status: Status
    last_tested_at: datetime | None
    last_connected_at: datetime | None
    last_response_time_ms: float | None
    last_error_code: str | None
    last_error_message: str | None
    database_version: str | None
    ssh_host_key_fingerprint: str | None
    secret_fingerprints: dict[str, str] = Field(
        default_factory=dict,
        description="For each set secret (e.g. connection.password) a keyed HMAC, never the "
        "value: compare with POST /data-sources/{id}/secret-fingerprints",
    )

    @field_validator("secret_fingerprints", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        # Rows written before fingerprints were kept have none.
        return {} if value is None else value

    created_by: int | None
    created_at: datetime
    updated_at: datetime


class EngineField(BaseModel):
    """One connection field of an engine."""

    name: str
    type: str
    required: bool
    default: Any = None
    secret: bool
    description: str | None = None


class EngineOut(BaseModel):
    """An engine the service can test."""

    type: str
    label: str
    aliases: list[str]
    default_port: int | None
    file_based: bool
    driver_installed: bool
    default_test_query: str
    fields: list[EngineField]
    allowed_options: list[str]
    help: str = ""


class SecretCandidates(BaseModel):
    """Secret values whose fingerprints a client wants, to compare with the stored ones."""

    model_config = ConfigDict(extra="forbid")

    connection: dict[str, Annotated[str, Field(max_length=65536)]] = Field(
        default_factory=dict, max_length=16
    )
    ssh_tunnel: dict[str, Annotated[str, Field(max_length=65536)]] = Field(
        default_factory=dict, max_length=8
    )
