"""Response bodies of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventOut(BaseModel):
    """One audited action."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    organization_id: int | None
    actor_user_id: int | None
    actor_token_id: int | None
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str
    details: dict[str, Any]
    client_address: str | None
    created_at: datetime
