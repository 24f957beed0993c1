"""The outbox dispatcher: claims due deliveries, sends them, records each attempt.

Runs in the server process in the single-machine default and on each `rivergen worker` when
scaled out; claims carry a lease (like the health claims), so however many dispatchers run,
each delivery is attempted by one of them at a time. Failed attempts are retried with
exponential backoff and jitter until `retry_for_seconds` after the event, then the delivery is
`failed`. A receiver that never answers holds one of `concurrency` slots for at most twice the
timeout: the others keep going.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.alerts import repository as rows
from rivergen.alerts.delivery import Attempt, Sender
from rivergen.alerts.models import NotificationDelivery
from rivergen.alerts.transitions import sweep_stale
from rivergen.security.crypto import SecretBox, SecretDecryptionError
from rivergen.store.base import utcnow
from rivergen.store.outage import describe, store_unreachable

log = structlog.get_logger(__name__)
_MAX_BACKOFF_SECONDS = 3600.0


@dataclass(frozen=True)
class DispatchSettings:
    """Timing of the dispatcher."""

    poll_seconds: float = 0.5
    concurrency: int = 32
    retry_base_seconds: float = 5.0
    retry_for_seconds: float = 24 * 3600.0
    stale_every_seconds: float = 5.0


def backoff_seconds(attempts: int, base: float) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), capped at 1 h, times 0.5..1."""
    delay = min(base * 2.0 ** max(0, attempts - 1), _MAX_BACKOFF_SECONDS)
    jitter: float = 0.5 + random.random() / 2
    return float(delay * jitter)


class Dispatcher:
    """Sends the outbox; `start` runs it in the background until `close`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        sender: Sender,
        settings: DispatchSettings,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self.sender = sender
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._store_unreachable = False

    @property
    def lease_seconds(self) -> float:
        """How long a claim holds a delivery: past the longest attempt."""
        return 2 * self.sender.timeout_seconds + 30.0

    def start(self) -> None:
        """Run the dispatcher in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alert-dispatcher")

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._wakeup.set()

    async def close(self) -> None:
        """Stop claiming and cancel attempts in flight (their leases expire; others retry)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        await self.sender.aclose()

    async def _run(self) -> None:
        next_sweep = 0.0
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            try:
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + self.settings.stale_every_seconds
                    async with self._sessions() as session, session.begin():
                        await sweep_stale(session, utcnow())
                free = self.settings.concurrency - len(self._inflight)
                if free > 0:
                    for delivery in await self._claim(free):
                        self._spawn(delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The store was out of reach or a row was bad: keep going, do not die.
                if not store_unreachable(exc):
                    log.exception("alert_dispatch_failed")
                elif not self._store_unreachable:
                    # An outage is waited out: one warning without a trace, like the recorder.
                    log.warning("alert_dispatch_store_unreachable", error=describe(exc))
                    self._store_unreachable = True
            else:
                self._store_unreachable = False
            waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wakeup.wait())]
            await asyncio.wait(
                [*waiters, *self._inflight],
                timeout=self.settings.poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for waiter in waiters:
                waiter.cancel()

    def _spawn(self, delivery: NotificationDelivery) -> None:
        task = asyncio.create_task(self._attempt(delivery), name=f"delivery-{delivery.id}")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _claim(self, limit: int) -> list[NotificationDelivery]:
        now = utcnow()
        lease = now + timedelta(seconds=self.lease_seconds)
        async with self._sessions() as session, session.begin():
            return await rows.claim_due(session, now, lease, limit)

    async def run_until_idle(self, limit_seconds: float = 30.0) -> None:
        """Send everything due now and wait for it (tests and the `send test` action)."""
        async with asyncio.timeout(limit_seconds):
            while True:
                claimed = await self._claim(self.settings.concurrency)
                if not claimed:
                    return
                await asyncio.gather(*(self._attempt(d) for d in claimed))

    def lease_from(self, now: datetime) -> datetime:
        """The lease a claim taken `now` holds (the token of the attempt)."""
        return now + timedelta(seconds=self.lease_seconds)

    async def attempt_held(self, delivery: NotificationDelivery) -> None:
        """Attempt a delivery its creator claimed in the transaction that wrote it (`send test`).

        Written already claimed, no other dispatcher can take it first; a failure leaves it to
        the retries like any other delivery.
        """
        await self._attempt(delivery)

    async def _attempt(self, delivery: NotificationDelivery) -> None:
        token = delivery.claimed_until
        assert token is not None
        try:
            attempt = await self._send(delivery)
        except Exception:
            log.exception("alert_delivery_crashed", delivery_id=delivery.id)
            attempt = Attempt(False, error="Internal error while sending")
        await self._record(delivery, token, attempt)

    async def _send(self, delivery: NotificationDelivery) -> Attempt:
        async with self._sessions() as session:
            channel = (await rows.channels_by_id(session, [delivery.channel_id])).get(
                delivery.channel_id
            )
            event = (await rows.events_by_id(session, [delivery.event_id])).get(delivery.event_id)
        if channel is None or event is None:
            return Attempt(False, error="The channel or the event was deleted", permanent=True)
        if not channel.enabled:
            return Attempt(False, error="The channel is disabled", permanent=True)
        try:
            secrets: dict[str, Any] = json.loads(self._box.decrypt(channel.secrets_ciphertext))
        except SecretDecryptionError:
            return Attempt(False, error="The channel's secrets cannot be decrypted", permanent=True)
        return await self.sender.send(
            channel.type, channel.config, secrets, event.id, event.payload
        )

    async def _record(
        self, delivery: NotificationDelivery, token: datetime, attempt: Attempt
    ) -> None:
        now = utcnow()
        attempts = delivery.attempts + 1
        values: dict[str, object] = {
            "attempts": attempts,
            "last_status_code": attempt.status_code,
            "last_error": attempt.error,
        }
        if attempt.ok:
            values.update(status="sent", sent_at=now, next_attempt_at=None, last_error=None)
        else:
            retry_at = now + timedelta(
                seconds=backoff_seconds(attempts, self.settings.retry_base_seconds)
            )
            give_up = delivery.created_at + timedelta(seconds=self.settings.retry_for_seconds)
            if attempt.permanent or retry_at > give_up:
                values.update(status="failed", next_attempt_at=None)
            else:
                values.update(next_attempt_at=retry_at)
        async with self._sessions() as session, session.begin():
            kept = await rows.finish_attempt(session, delivery.id, token, values)
        log.info(
            "alert_delivery_attempt",
            delivery_id=delivery.id,
            event_id=delivery.event_id,
            channel_id=delivery.channel_id,
            ok=attempt.ok,
            status_code=attempt.status_code,
            error=attempt.error,
            recorded=kept,
        )
