"""Queries of the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.audit.models import AuditEvent


async def add_event(
    session: AsyncSession,
    action: str,
    *,
    organization_id: int | None = None,
    actor_user_id: int | None = None,
    target_type: str | None = None,
    target_id: str | int | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
    client_address: str | None = None,
) -> None:
    """Append one audit event in the caller's transaction."""
    session.add(
        AuditEvent(
            action=action,
            organization_id=organization_id,
            actor_user_id=actor_user_id,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            outcome=outcome,
            details=details or {},
            client_address=client_address,
        )
    )
