"""How a PATCH applies to a stored data source: its merged configuration and changed fields.

Stored secrets never follow a new destination: a PATCH that changes the engine, or moves the
database or the SSH tunnel, must send again each stored secret the new destination takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rivergen.core.errors import InvalidInput
from rivergen.core.validation import validation_details
from rivergen.datasources.config import SecretMap, is_mask, resolve_spec
from rivergen.datasources.models import DataSource
from rivergen.datasources.schemas import DataSourceUpdate
from rivergen.tunnels.schemas import SSH_SECRET_FIELDS, SshTunnelConfig


@dataclass(frozen=True)
class UpdatePlan:
    """A PATCH merged into the stored configuration, ready for validation."""

    engine_type: str
    connection: dict[str, Any]
    tunnel: SshTunnelConfig | None
    destination_changed: bool


def plan_update(row: DataSource, stored: SecretMap, body: DataSourceUpdate) -> UpdatePlan:
    """Merge a PATCH into the stored configuration; secrets never follow a new destination."""
    old_spec = resolve_spec(row.type)
    new_spec = resolve_spec(body.type) if body.type is not None else old_spec
    engine_changed = new_spec.key != old_spec.key
    patch = body.connection or {}
    stored_conn_secrets = stored.get("connection", {})
    if engine_changed:
        connection: dict[str, Any] = {}
        # A new engine is a new destination: each stored secret the new engine also takes
        # must be sent again (it is reported missing below), never carried over silently.
        keep_conn = {k: v for k, v in stored_conn_secrets.items() if k in new_spec.secret_fields}
    else:
        connection = dict(row.connection)
        keep_conn = dict(stored_conn_secrets)
    for key, value in patch.items():
        if key in new_spec.secret_fields and is_mask(value):
            continue
        connection[key] = value
        keep_conn.pop(key, None)
    # Only these move the database: ssl_mode and ssl_root_cert change whom the service trusts
    # there, not where it connects, so secrets stay with them.
    db_moved = engine_changed or any(
        key in patch and patch[key] != row.connection.get(key) for key in ("host", "port", "path")
    )
    tunnel, tunnel_moved, tunnel_missing = _plan_tunnel(row, stored, body)
    missing: list[str] = []
    if db_moved or tunnel_moved:
        missing += [
            f"connection.{name}" for name in sorted(keep_conn) if name in new_spec.secret_fields
        ]
    missing += tunnel_missing
    if missing:
        raise InvalidInput(
            "The destination changed: send the secrets again",
            [
                {
                    "field": f"body.{name}",
                    "message": "Stored secrets never follow a new destination; "
                    "send this secret again",
                    "type": "secret_required",
                }
                for name in missing
            ],
        )
    for name, value in keep_conn.items():
        connection.setdefault(name, value)
    return UpdatePlan(new_spec.key, connection, tunnel, db_moved or tunnel_moved)


def _plan_tunnel(
    row: DataSource, stored: SecretMap, body: DataSourceUpdate
) -> tuple[SshTunnelConfig | None, bool, list[str]]:
    """The tunnel after a PATCH, whether its host moved, and secrets that must be resent."""
    old = row.ssh_tunnel
    old_secrets = stored.get("ssh_tunnel", {})
    if "ssh_tunnel" not in body.model_fields_set:
        if old is None:
            return None, False, []
        return SshTunnelConfig.model_validate({**old, **old_secrets}), False, []
    if body.ssh_tunnel is None:
        return None, old is not None, []
    patch = body.ssh_tunnel
    merged: dict[str, Any] = dict(old or {})
    keep = dict(old_secrets) if old is not None else {}
    for key, value in patch.items():
        if key in SSH_SECRET_FIELDS and is_mask(value):
            continue
        merged[key] = value
        keep.pop(key, None)
    moved = old is None or any(
        key in patch and patch[key] != old.get(key) for key in ("host", "port")
    )
    if moved and old is not None and keep:
        return None, True, [f"ssh_tunnel.{name}" for name in sorted(keep)]
    merged.update(keep)
    try:
        tunnel = SshTunnelConfig.model_validate(merged)
    except ValidationError as exc:
        details = validation_details(exc.errors(), prefix="body.ssh_tunnel")
        raise InvalidInput("The SSH tunnel is not valid", details) from None
    # Adding a tunnel moves the database too: the new bastion decides where the connection goes.
    return tunnel, moved, []


def changed_fields(
    row: DataSource,
    body: DataSourceUpdate,
    engine: str,
    plain: dict[str, Any],
    tunnel: dict[str, Any] | None,
    secrets: SecretMap,
    stored: SecretMap,
) -> set[str]:
    """Names of the fields a PATCH changed (never their secret values)."""
    changed: set[str] = {
        name
        for name in ("name", "description", "health_check_interval_seconds")
        if name in body.model_fields_set and getattr(body, name) != getattr(row, name)
    }
    if engine != row.type:
        changed.add("type")
    changed |= {
        f"connection.{k}"
        for k in set(plain) | set(row.connection)
        if plain.get(k) != row.connection.get(k)
    }
    if tunnel != row.ssh_tunnel:
        changed.add("ssh_tunnel")
    for part in ("connection", "ssh_tunnel"):
        new, old = secrets.get(part, {}), stored.get(part, {})
        changed |= {f"{part}.{k}" for k in set(new) | set(old) if new.get(k) != old.get(k)}
    return changed
