"""Queries of the alerts domain: channels, rules, state, events, and claiming the outbox."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.alerts.models import (
    AlertEvent,
    AlertRule,
    AlertState,
    NotificationChannel,
    NotificationDelivery,
    SourceMute,
)
from rivergen.datasources.models import DataSource


async def get_channel(
    session: AsyncSession, organization_id: int, channel_id: int
) -> NotificationChannel | None:
    """One channel of the organization."""
    query = select(NotificationChannel).where(
        NotificationChannel.id == channel_id,
        NotificationChannel.organization_id == organization_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def list_channels(session: AsyncSession, organization_id: int) -> list[NotificationChannel]:
    """The organization's channels, oldest first."""
    query = (
        select(NotificationChannel)
        .where(NotificationChannel.organization_id == organization_id)
        .order_by(NotificationChannel.id)
    )
    return list((await session.execute(query)).scalars())


async def channels_by_id(
    session: AsyncSession, channel_ids: Iterable[int]
) -> dict[int, NotificationChannel]:
    """Channels by id, whatever their organization (the dispatcher's view)."""
    ids = set(channel_ids)
    if not ids:
        return {}
    query = select(NotificationChannel).where(NotificationChannel.id.in_(ids))
    return {c.id: c for c in (await session.execute(query)).scalars()}


async def existing_ids(
    session: AsyncSession,
    organization_id: int,
    model: type[DataSource | NotificationChannel],
    ids: Iterable[int],
) -> set[int]:
    """Those of `ids` that name a row of `model` in the organization."""
    wanted = set(ids)
    if not wanted:
        return set()
    query = select(model.id).where(model.organization_id == organization_id, model.id.in_(wanted))
    return set((await session.execute(query)).scalars())


async def get_rule(session: AsyncSession, organization_id: int, rule_id: int) -> AlertRule | None:
    """One rule of the organization."""
    query = select(AlertRule).where(
        AlertRule.id == rule_id, AlertRule.organization_id == organization_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def list_rules(session: AsyncSession, organization_id: int) -> list[AlertRule]:
    """The organization's rules, oldest first."""
    query = select(AlertRule).where(AlertRule.organization_id == organization_id)
    return list((await session.execute(query.order_by(AlertRule.id))).scalars())


async def enabled_rules(session: AsyncSession, organization_ids: Iterable[int]) -> list[AlertRule]:
    """The enabled rules of some organizations."""
    query = select(AlertRule).where(
        AlertRule.organization_id.in_(set(organization_ids)), AlertRule.enabled.is_(True)
    )
    return list((await session.execute(query.order_by(AlertRule.id))).scalars())


async def states_for(
    session: AsyncSession, pairs: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], AlertState]:
    """The stored states of (rule id, data source id) pairs, locked for this transaction."""
    wanted = set(pairs)
    if not wanted:
        return {}
    sources = {source for _, source in wanted}
    query = select(AlertState).where(AlertState.data_source_id.in_(sources))
    if session.get_bind().dialect.name == "postgresql":
        # Two writers recording outcomes of one source at once count one after the other.
        query = query.with_for_update()
    rows = (await session.execute(query)).scalars()
    return {
        (s.rule_id, s.data_source_id): s for s in rows if (s.rule_id, s.data_source_id) in wanted
    }


async def mutes_of(session: AsyncSession, source_ids: Iterable[int]) -> dict[int, datetime]:
    """The maintenance windows of some sources."""
    ids = set(source_ids)
    if not ids:
        return {}
    query = select(SourceMute).where(SourceMute.data_source_id.in_(ids))
    return {m.data_source_id: m.muted_until for m in (await session.execute(query)).scalars()}


async def list_events(
    session: AsyncSession, organization_id: int, data_source_id: int | None, limit: int
) -> list[AlertEvent]:
    """The organization's events, newest first."""
    query = select(AlertEvent).where(AlertEvent.organization_id == organization_id)
    if data_source_id is not None:
        query = query.where(AlertEvent.data_source_id == data_source_id)
    query = query.order_by(AlertEvent.occurred_at.desc(), AlertEvent.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def list_deliveries(
    session: AsyncSession,
    organization_id: int,
    channel_id: int | None,
    event_id: str | None,
    limit: int,
) -> list[NotificationDelivery]:
    """The organization's deliveries, newest first."""
    query = select(NotificationDelivery).where(
        NotificationDelivery.organization_id == organization_id
    )
    if channel_id is not None:
        query = query.where(NotificationDelivery.channel_id == channel_id)
    if event_id is not None:
        query = query.where(NotificationDelivery.event_id == event_id)
    query = query.order_by(NotificationDelivery.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def claim_due(
    session: AsyncSession, now: datetime, lease_until: datetime, limit: int
) -> list[NotificationDelivery]:
    """Claim up to `limit` due deliveries nobody holds; call inside a transaction.

    Same scheme as the health claims (`rivergen.health.claims_repository.claim_due`): SKIP
    LOCKED on PostgreSQL; on SQLite the write lock first, then a conditional UPDATE per row.
    The lease is the token: only its holder may record the attempt.
    """
    candidates = (
        select(NotificationDelivery.id)
        .where(
            NotificationDelivery.status == "pending",
            NotificationDelivery.next_attempt_at <= now,
            or_(
                NotificationDelivery.claimed_until.is_(None),
                NotificationDelivery.claimed_until < now,
            ),
        )
        .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    else:
        if (await session.execute(candidates.limit(1))).first() is None:
            return []
        await session.execute(
            update(NotificationDelivery)
            .where(false())
            .values(claimed_until=None)
            .execution_options(synchronize_session=False)
        )
    ids = list((await session.execute(candidates)).scalars())
    if not ids:
        return []
    await session.execute(
        update(NotificationDelivery)
        .where(
            NotificationDelivery.id.in_(ids),
            or_(
                NotificationDelivery.claimed_until.is_(None),
                NotificationDelivery.claimed_until < now,
            ),
        )
        .values(claimed_until=lease_until)
        .execution_options(synchronize_session=False)
    )
    query = select(NotificationDelivery).where(
        NotificationDelivery.id.in_(ids), NotificationDelivery.claimed_until == lease_until
    )
    return list((await session.execute(query)).scalars())


async def events_by_id(session: AsyncSession, ids: Iterable[str]) -> dict[str, AlertEvent]:
    """Events by id."""
    wanted = set(ids)
    if not wanted:
        return {}
    query = select(AlertEvent).where(AlertEvent.id.in_(wanted))
    return {e.id: e for e in (await session.execute(query)).scalars()}


async def finish_attempt(
    session: AsyncSession, delivery_id: int, token: datetime, values: dict[str, object]
) -> bool:
    """Record an attempt if the lease `token` still holds the delivery; False otherwise."""
    result = await session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.id == delivery_id, NotificationDelivery.claimed_until == token)
        .values(claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


async def stale_candidates(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[tuple[AlertState, DataSource]]:
    """States of scheduled sources whose last check is older than twice their interval."""
    query = (
        select(AlertState, DataSource)
        .join(DataSource, DataSource.id == AlertState.data_source_id)
        .where(
            AlertState.stale.is_(False),
            AlertState.stale_after < now,
            DataSource.health_check_interval_seconds.is_not(None),
        )
        .limit(limit)
    )
    return list((await session.execute(query)).all())


async def mark_stale(session: AsyncSession, rule_id: int, data_source_id: int) -> bool:
    """Flag a state stale once; False when another process did it first."""
    result = await session.execute(
        update(AlertState)
        .where(
            AlertState.rule_id == rule_id,
            AlertState.data_source_id == data_source_id,
            AlertState.stale.is_(False),
        )
        .values(stale=True)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


async def tested_sources(session: AsyncSession) -> list[DataSource]:
    """Every source tested at least once (to fill the per-source gauges at start)."""
    query = select(DataSource).where(DataSource.last_tested_at.is_not(None))
    return list((await session.execute(query)).scalars())


async def all_channels(session: AsyncSession) -> list[NotificationChannel]:
    """Every channel of every organization (key rotation only)."""
    query = select(NotificationChannel).order_by(NotificationChannel.id)
    return list((await session.execute(query)).scalars())
