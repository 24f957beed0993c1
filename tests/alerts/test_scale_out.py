"""Scaled out: two `rivergen worker` processes share one outbox on PostgreSQL; each event once.

The API process only writes (its dispatcher is off); 300 deliveries to a real HTTP receiver are
sent by the workers' dispatchers, which claim rows with SKIP LOCKED and a lease. Not marked
`store`: it makes its own PostgreSQL database, like tests/health/test_scale_out.py.
"""

from __future__ import annotations

import collections
import json
import os
import signal
from pathlib import Path

import anyio
import pytest

from rivergen.alerts.outbox import emit, new_event_id
from rivergen.app import create_app
from rivergen.context import AppContext
from rivergen.settings import Settings
from rivergen.store.base import utcnow
from tests.alerts.helpers import add_channel
from tests.fixtures.app import ADMIN_EMAIL, ADMIN_PASSWORD, TEST_SECRET_KEY, start_api
from tests.fixtures.datasources import sign_in
from tests.fixtures.receivers import HttpReceiver
from tests.health.test_scale_out import (  # noqa: F401 - fixtures
    JWT_SECRET,
    REDIS_URL,
    namespace,
    scale_store,
    spawn,
    wait_for,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(150)]
EVENTS = 300


async def test_two_workers_deliver_every_event_once(
    scale_store: str,  # noqa: F811
    namespace: str,  # noqa: F811
    tmp_path: Path,
    http_receiver: HttpReceiver,
) -> None:
    env = {
        **os.environ,
        "RIVERGEN_DATABASE_URL": scale_store,
        "RIVERGEN_BROKER_URL": REDIS_URL,
        "RIVERGEN_SECRET_KEYS": TEST_SECRET_KEY,
        "RIVERGEN_JWT_SECRET": JWT_SECRET,
        "RIVERGEN_DATA_DIR": str(tmp_path / "data"),
        "RIVERGEN_SCHEDULER_ENABLED": "false",
        "RIVERGEN_ALLOW_LOOPBACK": "true",  # the receiver is on loopback
        "RIVERGEN_ALERT_POLL_SECONDS": "0.05",
        "RIVERGEN_ALERT_CONCURRENCY": "8",
        "RIVERGEN_LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
    }
    common = ["--namespace", namespace]
    workers = [
        spawn(f"worker-{n}", ["worker", *common, "--concurrency", "2"], env, tmp_path)
        for n in ("a", "b")
    ]
    try:
        for worker in workers:
            await wait_for(worker, " ready.", 90)
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=scale_store,
            admin_email=ADMIN_EMAIL,
            admin_password=ADMIN_PASSWORD,
            jwt_secret=JWT_SECRET,
            secret_keys=TEST_SECRET_KEY,
            scheduler_enabled=False,
            alerts_dispatcher_enabled=False,
            allow_loopback=True,
            broker_url=REDIS_URL,
        )
        async for api in start_api(create_app(settings)):
            tenancy = await sign_in(api)
            channel = await add_channel(tenancy, "webhook", {"url": http_receiver.url()})
            context: AppContext = api.app.state.context
            ids = [new_event_id() for _ in range(EVENTS)]
            async with context.sessions() as session, session.begin():
                for event_id in ids:
                    await emit(
                        session,
                        event_id=event_id,
                        organization_id=tenancy.organization_id,
                        event_type="test",
                        occurred_at=utcnow(),
                        payload={"id": event_id, "type": "test"},
                        channel_ids=[channel["id"]],
                    )
        received = await http_receiver.wait_for(EVENTS, timeout=60)
        # Anything sent twice would arrive within the lease; give it a moment to show.
        await anyio.sleep(1.0)
        received = list(http_receiver.requests)
    finally:
        for worker in workers:
            worker.stop(signal.SIGTERM, wait=10)
    counts = collections.Counter(r.headers["webhook-id"] for r in received)
    assert sorted(counts) == sorted(ids)
    assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1][:5]
    assert all(json.loads(r.body)["id"] == r.headers["webhook-id"] for r in received)
    senders = [w.output().count("alert_delivery_attempt") for w in workers]
    assert sum(senders) == EVENTS, senders
    for worker in workers:
        assert "Traceback" not in worker.output(), worker.output()[-3000:]
