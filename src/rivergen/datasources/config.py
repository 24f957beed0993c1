"""Engine-aware validation of a data source's configuration; its split into plain and secret."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from rivergen.connectors.base import EngineSpec
from rivergen.connectors.registry import ENGINES, resolve_engine
from rivergen.core.errors import InvalidInput
from rivergen.core.validation import validation_details
from rivergen.datasources.schemas import MASK
from rivergen.tunnels.schemas import SSH_SECRET_FIELDS, SshTunnelConfig

SecretMap = dict[str, dict[str, str]]


@dataclass(frozen=True)
class SourceConfig:
    """A validated configuration: engine, connection and tunnel, secrets still in plain text."""

    spec: EngineSpec
    connection: BaseModel
    ssh_tunnel: SshTunnelConfig | None


def resolve_spec(engine_type: str) -> EngineSpec:
    """The engine for a type or alias, or a 422 naming the known engines."""
    spec = resolve_engine(engine_type)
    if spec is None:
        known = ", ".join(sorted(ENGINES))
        raise InvalidInput(
            "Unknown data source type",
            [{"field": "body.type", "message": f"Unknown type; one of: {known}", "type": "enum"}],
        )
    return spec


def validate_connection(spec: EngineSpec, raw: dict[str, Any], file_root: Path) -> BaseModel:
    """Validate `raw` against the engine's schema, its option allow-list and the file policy."""
    try:
        connection = spec.connection_model.model_validate(raw)
    except ValidationError as exc:
        details = validation_details(exc.errors(), prefix="body.connection")
        raise InvalidInput("The connection is not valid for this engine", details) from None
    options = getattr(connection, "options", None) or {}
    refused = [name for name in options if name not in spec.allowed_options]
    if refused:
        allowed = ", ".join(sorted(spec.allowed_options)) or "none"
        raise InvalidInput(
            "Driver option not allowed",
            [
                {
                    "field": f"body.connection.options.{name}",
                    "message": f"Option not allowed for {spec.key}; allowed: {allowed}",
                    "type": "option_not_allowed",
                }
                for name in refused
            ],
        )
    if spec.file_based:
        check_file_path(str(getattr(connection, "path", "")), file_root)
    return connection


def check_file_path(path: str, file_root: Path) -> Path:
    """Resolve a file engine's path, refusing anything outside the allowed directory."""
    root = file_root.resolve()
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    # resolve() follows every link, so a link pointing out of the directory is caught here.
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise InvalidInput(
            "File path not allowed",
            [
                {
                    "field": "body.connection.path",
                    "message": f"Files must be inside the allowed directory {root}",
                    "type": "path_not_allowed",
                }
            ],
        )
    return resolved


def split_secrets(config: SourceConfig) -> tuple[dict[str, Any], dict[str, Any] | None, SecretMap]:
    """Plain connection fields, plain tunnel fields and the secrets, kept apart."""
    connection = config.connection.model_dump(mode="json")
    secrets: SecretMap = {"connection": {}, "ssh_tunnel": {}}
    for name in config.spec.secret_fields:
        value = connection.pop(name, None)
        if value:
            secrets["connection"][name] = str(value)
    tunnel: dict[str, Any] | None = None
    if config.ssh_tunnel is not None:
        tunnel = config.ssh_tunnel.model_dump(mode="json")
        for name in SSH_SECRET_FIELDS:
            value = tunnel.pop(name, None)
            if value:
                secrets["ssh_tunnel"][name] = str(value)
    return connection, tunnel, secrets


def masked(
    spec_secret_fields: frozenset[str],
    connection: dict[str, Any],
    tunnel: dict[str, Any] | None,
    secrets: SecretMap,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The stored configuration as shown to users: each set secret is "********"."""
    shown = dict(connection)
    for name in spec_secret_fields:
        shown[name] = MASK if secrets.get("connection", {}).get(name) else None
    shown_tunnel = None
    if tunnel is not None:
        shown_tunnel = dict(tunnel)
        for name in SSH_SECRET_FIELDS:
            shown_tunnel[name] = MASK if secrets.get("ssh_tunnel", {}).get(name) else None
    return shown, shown_tunnel


def merged_with_secrets(plain: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """Plain fields with the stored secrets put back, for validation and for the test."""
    return {**plain, **secrets}


def is_mask(value: Any) -> bool:
    """Whether a client echoed the mask back instead of a secret."""
    return bool(value == MASK)
