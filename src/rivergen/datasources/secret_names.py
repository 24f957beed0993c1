"""Which secrets a data source has, known without decrypting them.

The names (never the values) are stored beside the ciphertext, so that a read shows each set
secret as masked without touching the key, and a source whose key is lost still knows exactly
which secrets a PATCH must send again. Rows written before the names were stored have none
(`None`); they are read the old way (decrypting) until their next write or key rotation.
"""

from __future__ import annotations

from typing import Any

from rivergen.core.errors import InvalidInput
from rivergen.datasources.config import SecretMap, is_mask, resolve_spec
from rivergen.datasources.models import DataSource
from rivergen.datasources.schemas import MASK, DataSourceUpdate

SecretNames = dict[str, list[str]]
PARTS = ("connection", "ssh_tunnel")


def names_of(secrets: SecretMap) -> SecretNames:
    """The names of the set secrets of each part, sorted."""
    return {
        part: sorted(name for name, value in secrets.get(part, {}).items() if value)
        for part in PARTS
    }


def presence_of(names: SecretNames) -> SecretMap:
    """A stand-in for the secrets with the mask as value: enough to show which are set."""
    return {part: dict.fromkeys(names.get(part, []), MASK) for part in PARTS}


def _assumed_names(row: DataSource) -> SecretNames:
    # A row from before the names were stored, and its key is gone: assume the secrets its
    # engine and tunnel method take, so that nothing unreadable is left behind unnoticed.
    tunnel: list[str] = []
    if row.ssh_tunnel is not None:
        method = row.ssh_tunnel.get("auth_method")
        tunnel = ["password"] if method == "password" else ["private_key"]
    return {"connection": sorted(resolve_spec(row.type).secret_fields), "ssh_tunnel": tunnel}


def stored_names(row: DataSource) -> SecretNames:
    """The names of the row's secrets: stored, or assumed for a row from before they were."""
    if row.secret_names is not None:
        return row.secret_names
    return _assumed_names(row)


def require_every_secret(row: DataSource, body: DataSourceUpdate) -> None:
    """Refuse a PATCH of an undecryptable source unless it replaces each of its secrets.

    A secret counts as replaced when the PATCH sends a value for it (null clears it), or
    removes the SSH tunnel it belongs to; the mask is not a value.
    """
    sent: dict[str, dict[str, Any] | None] = {
        "connection": body.connection or {},
        "ssh_tunnel": body.ssh_tunnel if "ssh_tunnel" in body.model_fields_set else {},
    }
    missing = [
        f"{part}.{name}"
        for part in PARTS
        if sent[part] is not None
        for name in stored_names(row).get(part, [])
        if name not in (sent[part] or {}) or is_mask((sent[part] or {})[name])
    ]
    if missing:
        raise InvalidInput(
            "The stored secrets cannot be decrypted with the configured RIVERGEN_SECRET_KEYS: "
            "send every secret again",
            [
                {
                    "field": f"body.{name}",
                    "message": "The stored value cannot be decrypted; send this secret again",
                    "type": "secret_required",
                }
                for name in missing
            ],
        )
