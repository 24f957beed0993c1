"""Channels: create, read, change, delete, rotate the signing secret, send a test (admin+)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.alerts import repository as rows
from rivergen.alerts.dispatcher import Dispatcher
from rivergen.alerts.models import AlertRule, NotificationChannel
from rivergen.alerts.outbox import emit, new_event_id
from rivergen.alerts.payload import event_payload
from rivergen.alerts.schemas import (
    MASK,
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    DeliveryOut,
    EmailConfig,
    UrlConfig,
)
from rivergen.alerts.signing import new_secret
from rivergen.alerts.transitions import organization_names
from rivergen.audit.repository import add_event
from rivergen.core.errors import InvalidInput, NotFound
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role
from rivergen.security.crypto import SecretBox, SecretDecryptionError
from rivergen.security.host_policy import HostPolicy
from rivergen.store.base import utcnow

CHANNEL_NOT_FOUND = "Notification channel not found"


def invalid(field: str, message: str) -> InvalidInput:
    """A 422 naming one field of the body."""
    return InvalidInput(
        message, [{"field": f"body.{field}", "message": message, "type": "value_error"}]
    )


class ChannelService:
    """Channels of the active organization; secrets are encrypted and never shown again."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        policy: HostPolicy,
        dispatcher: Dispatcher,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._policy = policy
        self.dispatcher = dispatcher

    def _check_destination(self, channel_type: str, config: UrlConfig | EmailConfig) -> None:
        """Refuse a config of the wrong shape, or a literal address the policy refuses."""
        if channel_type == "email":
            if not isinstance(config, EmailConfig):
                raise invalid("config", "An email channel needs host, port, security, from, to")
            host = config.host
        else:
            if not isinstance(config, UrlConfig):
                raise invalid("config", f"A {channel_type} channel takes only a url")
            if channel_type == "slack" and config.url == MASK:
                return
            try:
                url = httpx.URL(config.url)
            except httpx.InvalidURL:
                raise invalid("config.url", "Not a valid URL") from None
            if url.scheme not in ("http", "https") or not url.host:
                raise invalid("config.url", "Must be an http:// or https:// URL with a host")
            if url.userinfo:
                raise invalid("config.url", "Credentials in the URL are not supported")
            host = url.host
        # A literal address is judged now; a name is judged after DNS at each delivery.
        reason = self._policy.refusal_reason(host) if _is_ip(host) else None
        if reason is not None:
            field = "config.host" if channel_type == "email" else "config.url"
            raise invalid(field, f"The address {host} is {reason}")

    def _split(
        self, channel_type: str, config: UrlConfig | EmailConfig, stored: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(public config, secrets) of a new config; masked or omitted secrets keep `stored`."""
        if isinstance(config, EmailConfig):
            public = config.model_dump(by_alias=True, exclude={"password"})
            password = config.password
            keep = password is None or password == MASK
            return public, {"password": stored.get("password") if keep else password}
        if channel_type == "slack":
            url = stored.get("url") if config.url == MASK else config.url
            if not url:
                raise invalid("config.url", "The Slack webhook URL is required")
            return {}, {"url": url}
        return {"url": config.url}, {"secret": stored.get("secret") or new_secret()}

    def _secrets(self, row: NotificationChannel) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self._box.decrypt(row.secrets_ciphertext))
        return value

    def to_out(self, row: NotificationChannel, secret: str | None = None) -> ChannelOut:
        """A channel as shown: Slack URL and SMTP password masked, no signing secret."""
        config = dict(row.config)
        secrets = self._secrets(row)
        if row.type == "slack":
            config["url"] = MASK
        elif row.type == "email":
            config["password"] = MASK if secrets.get("password") else None
        return ChannelOut(
            id=row.id,
            organization_id=row.organization_id,
            name=row.name,
            type=row.type,
            config=config,
            enabled=row.enabled,
            created_at=row.created_at,
            updated_at=row.updated_at,
            secret=secret,
        )

    async def _row(
        self, session: AsyncSession, caller: Caller, channel_id: int
    ) -> NotificationChannel:
        organization_id = caller.require(Role.ADMIN)
        row = await rows.get_channel(session, organization_id, channel_id)
        if row is None:
            raise NotFound(CHANNEL_NOT_FOUND)
        return row

    async def create(self, caller: Caller, body: ChannelCreate) -> ChannelOut:
        """Add a channel; a webhook's signing secret is in this answer only."""
        organization_id = caller.require(Role.ADMIN)
        self._check_destination(body.type, body.config)
        public, secrets = self._split(body.type, body.config, {})
        async with self._sessions() as session, session.begin():
            row = NotificationChannel(
                organization_id=organization_id,
                name=body.name,
                type=body.type,
                config=public,
                secrets_ciphertext=self._box.encrypt(json.dumps(secrets)),
                enabled=body.enabled,
            )
            session.add(row)
            await session.flush()
            await self._audit(session, caller, "notification_channel.create", row)
        return self.to_out(row, secrets.get("secret"))

    async def all(self, caller: Caller) -> list[ChannelOut]:
        """The organization's channels."""
        organization_id = caller.require(Role.ADMIN)
        async with self._sessions() as session:
            return [self.to_out(r) for r in await rows.list_channels(session, organization_id)]

    async def get(self, caller: Caller, channel_id: int) -> ChannelOut:
        """One channel."""
        async with self._sessions() as session:
            return self.to_out(await self._row(session, caller, channel_id))

    async def update(self, caller: Caller, channel_id: int, body: ChannelUpdate) -> ChannelOut:
        """Change a channel; a new SMTP host or port needs the password again."""
        async with self._sessions() as session, session.begin():
            row = await self._row(session, caller, channel_id)
            changed = sorted(body.model_fields_set)
            if body.config is not None:
                self._check_destination(row.type, body.config)
                stored = self._secrets(row)
                if (
                    isinstance(body.config, EmailConfig)
                    and (
                        body.config.host != row.config.get("host")
                        or body.config.port != row.config.get("port")
                    )
                    and body.config.password in (None, MASK)
                    and stored.get("password")
                ):
                    # A stored password never follows a new destination.
                    raise invalid(
                        "config.password", "Send the password again for a new host or port"
                    )
                public, secrets = self._split(row.type, body.config, stored)
                row.config = public
                row.secrets_ciphertext = self._box.encrypt(json.dumps(secrets))
            if body.name is not None:
                row.name = body.name
            if body.enabled is not None:
                row.enabled = body.enabled
            await self._audit(session, caller, "notification_channel.update", row, changed)
        return self.to_out(row)

    async def rotate_secret(self, caller: Caller, channel_id: int) -> ChannelOut:
        """A new webhook signing secret, shown in this answer only; the old one stops at once."""
        async with self._sessions() as session, session.begin():
            row = await self._row(session, caller, channel_id)
            if row.type != "webhook":
                raise invalid("type", "Only webhook channels have a signing secret")
            secret = new_secret()
            row.secrets_ciphertext = self._box.encrypt(json.dumps({"secret": secret}))
            await self._audit(session, caller, "notification_channel.rotate_secret", row)
        return self.to_out(row, secret)

    async def delete(self, caller: Caller, channel_id: int) -> None:
        """Delete a channel with its deliveries."""
        async with self._sessions() as session, session.begin():
            row = await self._row(session, caller, channel_id)
            await session.delete(row)
            await self._audit(session, caller, "notification_channel.delete", row)

    async def send_test(self, caller: Caller, channel_id: int) -> DeliveryOut:
        """Send a `test` event to the channel through the outbox and the dispatcher."""
        async with self._sessions() as session, session.begin():
            row = await self._row(session, caller, channel_id)
            names = await organization_names(session, {row.organization_id})
            now = utcnow()
            event_id = new_event_id()
            payload = event_payload(
                event_id=event_id,
                event_type="test",
                occurred_at=now,
                organization=(row.organization_id, names.get(row.organization_id, "")),
                source=None,
                status=None,
            )
            (delivery,) = await emit(
                session,
                event_id=event_id,
                organization_id=row.organization_id,
                event_type="test",
                occurred_at=now,
                payload=payload,
                channel_ids=[row.id],
            )
            # Written claimed by this request, so the background dispatcher leaves it alone.
            delivery.claimed_until = self.dispatcher.lease_from(now)
            await session.flush()
            await self._audit(session, caller, "notification_channel.test", row)
        await self.dispatcher.attempt_held(delivery)
        async with self._sessions() as session:
            (sent,) = await rows.list_deliveries(session, row.organization_id, None, event_id, 1)
            return DeliveryOut.model_validate(sent)

    async def rotate_keys(self) -> tuple[int, list[int]]:
        """Re-encrypt channel secrets made by an older key: (re-encrypted, ids not decryptable)."""
        rotated, unreadable = 0, []
        async with self._sessions() as session, session.begin():
            for row in await rows.all_channels(session):
                try:
                    if self._box.needs_rotation(row.secrets_ciphertext):
                        row.secrets_ciphertext = self._box.rotate(row.secrets_ciphertext)
                        rotated += 1
                except SecretDecryptionError:
                    unreadable.append(row.id)
        return rotated, unreadable

    async def _audit(
        self,
        session: AsyncSession,
        caller: Caller,
        action: str,
        row: NotificationChannel,
        changed: list[str] | None = None,
    ) -> None:
        details = {"name": row.name, "type": row.type}
        await audit_change(session, caller, action, "notification_channel", row, details, changed)


async def audit_change(
    session: AsyncSession,
    caller: Caller,
    action: str,
    target_type: str,
    row: NotificationChannel | AlertRule,
    details: dict[str, Any],
    changed: list[str] | None,
) -> None:
    """The audit event of a change to a channel or a rule, in the change's transaction."""
    if changed is not None:
        details = {**details, "changed": changed}
    await add_event(
        session,
        action,
        organization_id=row.organization_id,
        actor_user_id=caller.user.id,
        target_type=target_type,
        target_id=row.id,
        details=details,
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
