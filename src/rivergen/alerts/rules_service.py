"""Rules, source mutes, and reading events and deliveries (admin+ for changes, viewer+ to read)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.alerts import repository as rows
from rivergen.alerts.models import AlertRule, NotificationChannel, SourceMute
from rivergen.alerts.schemas import (
    AlertEventOut,
    DeliveryOut,
    RuleCreate,
    RuleOut,
    RuleUpdate,
    SourceMuteOut,
)
from rivergen.alerts.service import audit_change, invalid
from rivergen.audit.repository import add_event
from rivergen.core.errors import NotFound
from rivergen.core.time_bounds import clamped_utc
from rivergen.datasources.models import DataSource
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role

RULE_NOT_FOUND = "Alert rule not found"


class RuleService:
    """Alert rules of the active organization."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _check_refs(
        self,
        session: AsyncSession,
        organization_id: int,
        channel_ids: list[int] | None,
        data_source_ids: list[int] | None,
    ) -> None:
        """Every id must name a channel / source of the organization (others' look absent)."""
        for field, model, ids in (
            ("channel_ids", NotificationChannel, channel_ids),
            ("data_source_ids", DataSource, data_source_ids),
        ):
            if not ids:
                continue
            known = await rows.existing_ids(session, organization_id, model, ids)
            missing = sorted(set(ids) - known)
            if missing:
                raise invalid(field, f"Unknown ids: {missing[:20]}")

    async def _row(
        self, session: AsyncSession, caller: Caller, rule_id: int, role: Role
    ) -> AlertRule:
        organization_id = caller.require(role)
        row = await rows.get_rule(session, organization_id, rule_id)
        if row is None:
            raise NotFound(RULE_NOT_FOUND)
        return row

    async def create(self, caller: Caller, body: RuleCreate) -> RuleOut:
        """Add a rule."""
        organization_id = caller.require(Role.ADMIN)
        async with self._sessions() as session, session.begin():
            await self._check_refs(session, organization_id, body.channel_ids, body.data_source_ids)
            row = AlertRule(
                organization_id=organization_id,
                **body.model_dump(exclude={"muted_until"}),
                muted_until=clamped_utc(body.muted_until),
            )
            row.channel_ids = sorted(set(body.channel_ids))
            if body.data_source_ids is not None:
                row.data_source_ids = sorted(set(body.data_source_ids))
            session.add(row)
            await session.flush()
            await self._audit(session, caller, "alert_rule.create", row, None)
        return RuleOut.model_validate(row)

    async def all(self, caller: Caller) -> list[RuleOut]:
        """The organization's rules."""
        organization_id = caller.require(Role.VIEWER)
        async with self._sessions() as session:
            return [
                RuleOut.model_validate(r) for r in await rows.list_rules(session, organization_id)
            ]

    async def get(self, caller: Caller, rule_id: int) -> RuleOut:
        """One rule."""
        async with self._sessions() as session:
            return RuleOut.model_validate(await self._row(session, caller, rule_id, Role.VIEWER))

    async def update(self, caller: Caller, rule_id: int, body: RuleUpdate) -> RuleOut:
        """Change a rule (the counted state of its sources stays)."""
        sent = body.model_fields_set
        async with self._sessions() as session, session.begin():
            row = await self._row(session, caller, rule_id, Role.ADMIN)
            await self._check_refs(
                session, row.organization_id, body.channel_ids, body.data_source_ids
            )
            values: dict[str, Any] = body.model_dump(include=sent)
            for required in (
                "name",
                "channel_ids",
                "failures_before_alert",
                "successes_before_recovery",
                "enabled",
            ):
                if required in values and values[required] is None:
                    raise invalid(required, "May not be null")
            if "muted_until" in values:
                values["muted_until"] = clamped_utc(values["muted_until"])
            for key in ("channel_ids", "data_source_ids"):
                if values.get(key) is not None:
                    values[key] = sorted(set(values[key]))
            for key, value in values.items():
                setattr(row, key, value)
            await self._audit(session, caller, "alert_rule.update", row, sorted(sent))
        return RuleOut.model_validate(row)

    async def delete(self, caller: Caller, rule_id: int) -> None:
        """Delete a rule with its state (its events stay)."""
        async with self._sessions() as session, session.begin():
            row = await self._row(session, caller, rule_id, Role.ADMIN)
            await session.delete(row)
            await self._audit(session, caller, "alert_rule.delete", row, None)

    async def mute_source(
        self, caller: Caller, data_source_id: int, until: datetime | None
    ) -> SourceMuteOut:
        """Set or end a source's maintenance window."""
        organization_id = caller.require(Role.ADMIN)
        async with self._sessions() as session, session.begin():
            found = await rows.existing_ids(session, organization_id, DataSource, [data_source_id])
            if not found:
                raise NotFound("Data source not found")
            mute = await session.get(SourceMute, data_source_id)
            until = clamped_utc(until)
            if until is None:
                if mute is not None:
                    await session.delete(mute)
            elif mute is None:
                session.add(
                    SourceMute(
                        data_source_id=data_source_id,
                        organization_id=organization_id,
                        muted_until=until,
                    )
                )
            else:
                mute.muted_until = until
            await add_event(
                session,
                "data_source.mute",
                organization_id=organization_id,
                actor_user_id=caller.user.id,
                target_type="data_source",
                target_id=data_source_id,
                details={"muted_until": None if until is None else until.isoformat()},
            )
        return SourceMuteOut(data_source_id=data_source_id, muted_until=until)

    async def events(
        self, caller: Caller, data_source_id: int | None, limit: int
    ) -> list[AlertEventOut]:
        """The organization's alert events, newest first."""
        organization_id = caller.require(Role.VIEWER)
        async with self._sessions() as session:
            found = await rows.list_events(session, organization_id, data_source_id, limit)
            return [AlertEventOut.model_validate(e) for e in found]

    async def deliveries(
        self, caller: Caller, channel_id: int | None, event_id: str | None, limit: int
    ) -> list[DeliveryOut]:
        """The organization's deliveries, newest first (admin and up: channels are admin's)."""
        organization_id = caller.require(Role.ADMIN)
        async with self._sessions() as session:
            found = await rows.list_deliveries(
                session, organization_id, channel_id, event_id, limit
            )
            return [DeliveryOut.model_validate(d) for d in found]

    async def _audit(
        self,
        session: AsyncSession,
        caller: Caller,
        action: str,
        row: AlertRule,
        changed: list[str] | None,
    ) -> None:
        await audit_change(session, caller, action, "alert_rule", row, {"name": row.name}, changed)
