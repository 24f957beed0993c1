"""HTTP routes of alerts: channels, rules, source mutes, events, deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from rivergen.alerts.schemas import (
    AlertEventOut,
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    DeliveryOut,
    RuleCreate,
    RuleOut,
    RuleUpdate,
    SourceMuteIn,
    SourceMuteOut,
)
from rivergen.api.deps import Context, CurrentCaller
from rivergen.api.envelope import Envelope, error_responses, ok
from rivergen.api.params import MAX_ID, ObjectId

router = APIRouter(tags=["alerts"])
ID_ERRORS = error_responses(401, 403, 404, 422)
Limit = Annotated[int, Query(ge=1, le=500)]


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json")


@router.post(
    "/notification-channels",
    status_code=201,
    response_model=Envelope[ChannelOut],
    responses=error_responses(401, 403, 404, 422),
)
async def create_channel(
    body: ChannelCreate, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Add a channel (admin and up); a webhook's signing secret is shown in this answer only."""
    return ok(_dump(await context.channels.create(caller, body)), "Notification channel created")


@router.get(
    "/notification-channels",
    response_model=Envelope[list[ChannelOut]],
    responses=error_responses(401, 403, 404),
)
async def list_channels(caller: CurrentCaller, context: Context) -> dict[str, Any]:
    """The organization's channels (admin and up), secrets masked."""
    return ok([_dump(c) for c in await context.channels.all(caller)], "Notification channels")


@router.get(
    "/notification-channels/{channel_id}",
    response_model=Envelope[ChannelOut],
    responses=ID_ERRORS,
)
async def get_channel(
    channel_id: ObjectId, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """One channel (admin and up)."""
    return ok(_dump(await context.channels.get(caller, channel_id)), "Notification channel")


@router.patch(
    "/notification-channels/{channel_id}",
    response_model=Envelope[ChannelOut],
    responses=ID_ERRORS,
)
async def update_channel(
    channel_id: ObjectId, body: ChannelUpdate, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Change a channel (admin and up); secrets omitted or sent as "********" are kept."""
    data = await context.channels.update(caller, channel_id, body)
    return ok(_dump(data), "Notification channel updated")


@router.delete("/notification-channels/{channel_id}", status_code=204, responses=ID_ERRORS)
async def delete_channel(channel_id: ObjectId, caller: CurrentCaller, context: Context) -> Response:
    """Delete a channel and its deliveries (admin and up)."""
    await context.channels.delete(caller, channel_id)
    return Response(status_code=204)


@router.post(
    "/notification-channels/{channel_id}/rotate-secret",
    response_model=Envelope[ChannelOut],
    responses=ID_ERRORS,
)
async def rotate_channel_secret(
    channel_id: ObjectId, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """A new webhook signing secret, shown in this answer only (admin and up)."""
    data = await context.channels.rotate_secret(caller, channel_id)
    return ok(_dump(data), "Signing secret rotated")


@router.post(
    "/notification-channels/{channel_id}/test",
    response_model=Envelope[DeliveryOut],
    responses=ID_ERRORS,
)
async def test_channel(
    channel_id: ObjectId, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Send a `test` event through the real delivery path; the answer is its delivery."""
    data = await context.channels.send_test(caller, channel_id)
    return ok(_dump(data), "Test notification attempted")


@router.post(
    "/alert-rules",
    status_code=201,
    response_model=Envelope[RuleOut],
    responses=error_responses(401, 403, 404, 422),
)
async def create_rule(body: RuleCreate, caller: CurrentCaller, context: Context) -> dict[str, Any]:
    """Add an alert rule (admin and up)."""
    return ok(_dump(await context.rules.create(caller, body)), "Alert rule created")


@router.get(
    "/alert-rules", response_model=Envelope[list[RuleOut]], responses=error_responses(401, 403, 404)
)
async def list_rules(caller: CurrentCaller, context: Context) -> dict[str, Any]:
    """The organization's rules (viewer and up)."""
    return ok([_dump(r) for r in await context.rules.all(caller)], "Alert rules")


@router.get("/alert-rules/{rule_id}", response_model=Envelope[RuleOut], responses=ID_ERRORS)
async def get_rule(rule_id: ObjectId, caller: CurrentCaller, context: Context) -> dict[str, Any]:
    """One rule (viewer and up)."""
    return ok(_dump(await context.rules.get(caller, rule_id)), "Alert rule")


@router.patch("/alert-rules/{rule_id}", response_model=Envelope[RuleOut], responses=ID_ERRORS)
async def update_rule(
    rule_id: ObjectId, body: RuleUpdate, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Change a rule (admin and up)."""
    return ok(_dump(await context.rules.update(caller, rule_id, body)), "Alert rule updated")


@router.delete("/alert-rules/{rule_id}", status_code=204, responses=ID_ERRORS)
async def delete_rule(rule_id: ObjectId, caller: CurrentCaller, context: Context) -> Response:
    """Delete a rule (admin and up); its events stay."""
    await context.rules.delete(caller, rule_id)
    return Response(status_code=204)


@router.put(
    "/data-sources/{data_source_id}/alert-mute",
    response_model=Envelope[SourceMuteOut],
    responses=ID_ERRORS,
)
async def mute_source(
    data_source_id: ObjectId, body: SourceMuteIn, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Mute a source's notifications until `muted_until` (null ends it); checks go on."""
    data = await context.rules.mute_source(caller, data_source_id, body.muted_until)
    return ok(_dump(data), "Alert mute set")


@router.get(
    "/alert-events",
    response_model=Envelope[list[AlertEventOut]],
    responses=error_responses(401, 403, 404, 422),
)
async def list_events(
    caller: CurrentCaller,
    context: Context,
    data_source_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """The organization's alert events, newest first (viewer and up)."""
    await context.tests.settled()
    data = await context.rules.events(caller, data_source_id, limit)
    return ok([_dump(e) for e in data], "Alert events")


@router.get(
    "/notification-deliveries",
    response_model=Envelope[list[DeliveryOut]],
    responses=error_responses(401, 403, 404, 422),
)
async def list_deliveries(
    caller: CurrentCaller,
    context: Context,
    channel_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    event_id: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_]*$")] = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """The organization's deliveries with attempts, status code, error, next attempt (admin+)."""
    await context.tests.settled()
    data = await context.rules.deliveries(caller, channel_id, event_id, limit)
    return ok([_dump(d) for d in data], "Notification deliveries")
