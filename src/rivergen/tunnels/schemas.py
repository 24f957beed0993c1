"""The `ssh_tunnel` part of a data source: how to reach the database through a bastion."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rivergen.tunnels.host_keys import parse_host_key_pin

SSH_SECRET_FIELDS = frozenset({"password", "private_key", "private_key_passphrase"})


class SshTunnelConfig(BaseModel):
    """An SSH bastion to forward the database connection through.

    Secrets are plain strings hidden from `repr` (like `ConnectionTarget`), so that the
    service can encrypt exactly what the user sent; `SSH_SECRET_FIELDS` names them. The
    private key is only parsed when a test runs, because it is stored encrypted.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(min_length=1, max_length=255)
    auth_method: Literal["password", "private_key"]
    password: str | None = Field(default=None, repr=False)
    private_key: str | None = Field(default=None, repr=False, max_length=65536)
    private_key_passphrase: str | None = Field(default=None, repr=False)
    host_key: str | None = Field(default=None, max_length=16384)

    @field_validator("host", "username")
    @classmethod
    def _no_blanks(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if any(ch.isspace() for ch in value):
            raise ValueError("must not contain whitespace")
        return value

    @field_validator("host_key")
    @classmethod
    def _host_key_parses(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        parse_host_key_pin(value)
        return value

    @model_validator(mode="after")
    def _credentials_for_method(self) -> SshTunnelConfig:
        if self.auth_method == "password" and not self.password:
            raise ValueError("password is required when auth_method is 'password'")
        if self.auth_method == "private_key" and not (self.private_key or "").strip():
            raise ValueError("private_key is required when auth_method is 'private_key'")
        return self
