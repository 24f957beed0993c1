"""The down/recovered state machine, fed by every recorded outcome (manual and scheduled).

A source is `down` under a rule after `failures_before_alert` consecutive failed checks and `up`
again after `successes_before_recovery` consecutive successes; each transition is one event,
written with its outbox rows in the transaction that records the check (see
`rivergen.probing.recorder.ResultRecorder.observers`). While down, `renotify_minutes` repeats
the down event. Mutes (per rule, per source) suppress the deliveries, never the event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.alerts import repository as rows
from rivergen.alerts.models import AlertRule, AlertState, NotificationChannel
from rivergen.alerts.outbox import emit, new_event_id
from rivergen.alerts.payload import event_payload
from rivergen.datasources.models import DataSource
from rivergen.health.source_gauges import SourceGauges
from rivergen.identity.models import Organization
from rivergen.probing.recorder import Outcome
from rivergen.probing.runner import ProbeResult

DOWN, RECOVERED, STALE = "data_source.down", "data_source.recovered", "data_source.stale"


def applies(rule: AlertRule, source: DataSource) -> bool:
    """Whether a rule watches a source."""
    if rule.organization_id != source.organization_id:
        return False
    return rule.data_source_ids is None or source.id in rule.data_source_ids


def step(state: AlertState, rule: AlertRule, result: ProbeResult, now: datetime) -> str | None:
    """Count one outcome into the state; the event type when it makes a transition."""
    tested_at = result.tested_at
    state.last_check_at = tested_at
    if result.connection_successful:
        state.consecutive_successes += 1
        state.last_success_at = tested_at
        if state.state == "down":
            if state.consecutive_successes >= rule.successes_before_recovery:
                state.state = "up"
                state.consecutive_failures = 0
                state.last_notified_at = now
                return RECOVERED
            return None
        state.consecutive_failures = 0
        state.first_failure_at = None
        return None
    state.consecutive_successes = 0
    state.consecutive_failures += 1
    if state.first_failure_at is None:
        state.first_failure_at = tested_at
    if state.state == "up":
        if state.consecutive_failures >= rule.failures_before_alert:
            state.state = "down"
            state.last_notified_at = now
            return DOWN
        return None
    renotify = rule.renotify_minutes
    if renotify and (
        state.last_notified_at is None
        or now - state.last_notified_at >= timedelta(minutes=renotify)
    ):
        state.last_notified_at = now
        return DOWN
    return None


def muted(rule: AlertRule, source_mute: datetime | None, now: datetime) -> bool:
    """Whether deliveries are suppressed now (rule or source in a maintenance window)."""
    return any(until is not None and until > now for until in (rule.muted_until, source_mute))


async def organization_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    """Organization names by id (for the payload)."""
    query = select(Organization.id, Organization.name).where(Organization.id.in_(ids))
    return {i: n for i, n in (await session.execute(query)).all()}


class AlertObserver:
    """The recorder's observer: gauges, then the state machine for every applicable rule."""

    def __init__(self, gauges: SourceGauges) -> None:
        self.gauges = gauges
        # Called once the batch that wrote events is committed (the dispatcher's wake-up), so
        # a transition is sent at once rather than at the dispatcher's next poll.
        self.on_committed: Callable[[], None] | None = None

    async def __call__(
        self, session: AsyncSession, applied: Sequence[tuple[DataSource, Outcome]]
    ) -> None:
        """Count the outcomes of one written batch, in the batch's transaction."""
        self.gauges.observe(row for row, _ in applied)
        if not applied:
            return
        organizations = {row.organization_id for row, _ in applied}
        rules = await rows.enabled_rules(session, organizations)
        work = [(r, row, o) for row, o in applied for r in rules if applies(r, row)]
        if not work:
            return
        states = await rows.states_for(session, {(r.id, row.id) for r, row, _ in work})
        mutes = await rows.mutes_of(session, {row.id for _, row, _ in work})
        channels = await rows.channels_by_id(
            session, {c for r, _, _ in work for c in r.channel_ids}
        )
        names = await organization_names(session, organizations)
        now = max(o.result.tested_at for _, _, o in work)
        for rule, row, outcome in work:
            state = states.get((rule.id, row.id))
            if state is None:
                state = new_state(rule.id, row.id)
                session.add(state)
                states[(rule.id, row.id)] = state
            if outcome.trigger == "schedule" and row.health_check_interval_seconds:
                interval = timedelta(seconds=row.health_check_interval_seconds)
                state.stale_after = outcome.result.tested_at + 2 * interval
                state.stale = False
            event_type = step(state, rule, outcome.result, outcome.result.tested_at)
            if event_type is None:
                continue
            self._wake_after_commit(session)
            await emit_transition(
                session,
                rule,
                row,
                state,
                event_type,
                names.get(row.organization_id, ""),
                outcome.result,
                live_channels(rule, channels, muted(rule, mutes.get(row.id), now)),
            )

    def _wake_after_commit(self, session: AsyncSession) -> None:
        wake = self.on_committed
        if wake is not None and not session.info.get("alerts_wake"):
            session.info["alerts_wake"] = True
            event.listen(session.sync_session, "after_commit", lambda _: wake(), once=True)


def new_state(rule_id: int, data_source_id: int) -> AlertState:
    """A source not seen yet under a rule: up, nothing counted."""
    return AlertState(
        rule_id=rule_id,
        data_source_id=data_source_id,
        state="up",
        consecutive_failures=0,
        consecutive_successes=0,
        stale=False,
    )


def live_channels(
    rule: AlertRule, channels: dict[int, NotificationChannel], is_muted: bool
) -> list[int]:
    """The rule's enabled channels of its own organization, none while muted."""
    if is_muted:
        return []
    return [
        c
        for c in rule.channel_ids
        if c in channels
        and channels[c].enabled
        and channels[c].organization_id == rule.organization_id
    ]


async def emit_transition(
    session: AsyncSession,
    rule: AlertRule,
    row: DataSource,
    state: AlertState,
    event_type: str,
    organization_name: str,
    result: ProbeResult | None,
    channel_ids: list[int],
) -> None:
    """Write the event of a transition with its deliveries."""
    event_id = new_event_id()
    occurred_at = result.tested_at if result is not None else (state.stale_after or row.updated_at)
    failed = result is not None and not result.connection_successful
    error: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None)
    if failed and result is not None:
        error = (
            None if result.error_code is None else str(result.error_code),
            None if result.error_phase is None else str(result.error_phase),
            result.error_message,
            result.hint,
        )
    status = {DOWN: "down", RECOVERED: "up", STALE: "stale"}[event_type]
    payload = event_payload(
        event_id=event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        organization=(row.organization_id, organization_name),
        source=(row.id, row.name, row.type),
        status=status,
        error=error,
        consecutive_failures=state.consecutive_failures,
        first_failure_at=state.first_failure_at,
        last_success_at=state.last_success_at,
        rule=(rule.id, rule.name),
    )
    await emit(
        session,
        event_id=event_id,
        organization_id=row.organization_id,
        event_type=event_type,
        occurred_at=occurred_at,
        payload=payload,
        channel_ids=channel_ids,
        rule_id=rule.id,
        data_source_id=row.id,
    )


async def sweep_stale(session: AsyncSession, now: datetime, limit: int = 200) -> int:
    """Raise `data_source.stale` once for each watched source whose scheduled checks stopped."""
    candidates = await rows.stale_candidates(session, now, limit)
    if not candidates:
        return 0
    rules = {
        r.id: r
        for r in await rows.enabled_rules(session, {s.organization_id for _, s in candidates})
    }
    channels = await rows.channels_by_id(
        session, {c for r in rules.values() for c in r.channel_ids}
    )
    mutes = await rows.mutes_of(session, {s.id for _, s in candidates})
    names = await organization_names(session, {s.organization_id for _, s in candidates})
    raised = 0
    for state, source in candidates:
        rule = rules.get(state.rule_id)
        # The conditional update is the claim: concurrent sweepers raise it once.
        if rule is None or not await rows.mark_stale(session, rule.id, source.id):
            continue
        raised += 1
        await emit_transition(
            session,
            rule,
            source,
            state,
            STALE,
            names.get(source.organization_id, ""),
            None,
            live_channels(rule, channels, muted(rule, mutes.get(source.id), now)),
        )
    return raised
