"""Scaled-out scheduled checks on Celery with a Redis broker: `rivergen worker` and `rivergen beat`.

How it fits together (see docs/scaling.md for running it):

* `rivergen beat` sends `dispatch_due_checks` every second and `purge_health_records` hourly.
  It uses celery-redbeat's scheduler, whose Redis lock keeps exactly one beat active; a second
  beat waits and takes over within a few seconds when the active one dies.
* `dispatch_due_checks` runs on any worker: it claims the checks due within the next 1.5 s
  (`rivergen.health.claims_repository.claim_due`, the same function as the in-process
  scheduler, with FOR UPDATE SKIP LOCKED on PostgreSQL) and sends one `run_check` per claim, to
  start at its due time and to expire with its lease.
* `run_check` renews the claim, probes exactly like the manual test and records the outcome, then
  gives the claim up. A worker that dies loses only the checks it held: their claims expire by the
  time the next check of each source is due, and any worker picks those up.

Each worker process keeps one event loop in a thread with the application's context (store
engine, probe pool); Celery's thread pool runs tasks, which hand their coroutine to that loop.
Keys in Redis are prefixed with the namespace (default "rivergen"), so several deployments or test
runs can share one Redis.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from rivergen.settings import Settings, load_settings

if TYPE_CHECKING:
    from rivergen.health.service import ScheduledChecks

# The store, services and drivers are imported where a worker first needs them, so that
# `rivergen beat`, which only talks to Redis, starts quickly.

log = structlog.get_logger(__name__)
T = TypeVar("T")

QUEUE = "rivergen.health"
DEFAULT_NAMESPACE = "rivergen"
DISPATCH_TASK = "rivergen.health.dispatch_due_checks"
CHECK_TASK = "rivergen.health.run_check"
PURGE_TASK = "rivergen.health.purge_health_records"
DISPATCH_EVERY_SECONDS = 1.0
# Past the next dispatch, so each claimed check can be sent to start exactly at its due time.
DISPATCH_LOOKAHEAD_SECONDS = 1.5
DISPATCH_BATCH = 500
PURGE_EVERY_SECONDS = 3600.0

celery_app = Celery("rivergen", set_as_current=False)


def configure(settings: Settings, namespace: str = DEFAULT_NAMESPACE) -> Celery:
    """Point the Celery application at RIVERGEN_BROKER_URL, with every Redis key namespaced."""
    global _settings
    _settings = settings
    celery_app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"global_keyprefix": f"{namespace}:"},
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        result_expires=None,  # no results, so no daily backend_cleanup entry either
        timezone="UTC",
        enable_utc=True,
        # Take one message per free thread: a worker that dies holds few checks.
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        beat_max_loop_interval=DISPATCH_EVERY_SECONDS,
        beat_schedule={
            "rivergen-dispatch-due-checks": {
                "task": DISPATCH_TASK,
                "schedule": DISPATCH_EVERY_SECONDS,
                # A dispatch that waited longer than this is useless: a newer one follows.
                "options": {"expires": 5 * DISPATCH_EVERY_SECONDS},
            },
            "rivergen-purge-health-records": {
                "task": PURGE_TASK,
                "schedule": PURGE_EVERY_SECONDS,
                "options": {"expires": PURGE_EVERY_SECONDS / 2},
            },
        },
        redbeat_redis_url=settings.broker_url,
        redbeat_redis_options={},
        redbeat_key_prefix=f"{namespace}:redbeat:",
        redbeat_lock_timeout=5,
    )
    return celery_app


# ----- the worker's event loop and application context -------------------------------------------

_settings: Settings | None = None
_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


class WorkerRuntime:
    """One event loop in a thread holding the application's context, per worker process."""

    def __init__(self, settings: Settings) -> None:
        from rivergen.context import build_context
        from rivergen.health.scheduler import build_scheduled_checks

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, name="rivergen-worker-loop", daemon=True
        )
        self._thread.start()
        self.context = build_context(settings)
        self.checks: ScheduledChecks = build_scheduled_checks(
            settings, self.context.sessions, self.context.data_sources, self.context.tests
        )
        # Scaled out, the outbox is sent from the workers (each delivery claimed by one).
        self.call(self.context.start_alerts())

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the worker's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        """Release the context and stop the loop."""
        try:
            self.call(self.context.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


def runtime() -> WorkerRuntime:
    """This process's runtime, created on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = WorkerRuntime(_settings or load_settings())
        return _runtime


@worker_ready.connect
def _warm_up(**_: Any) -> None:
    # Build the context (store engine, probe pool) now rather than in the first task.
    runtime()


@worker_shutdown.connect
def _close_runtime(**_: Any) -> None:
    global _runtime
    with _runtime_lock:
        if _runtime is not None:
            _runtime.close()
            _runtime = None


# ----- tasks -----------------------------------------------------------------------------------


@celery_app.task(name=DISPATCH_TASK, ignore_result=True)
def dispatch_due_checks() -> int:
    """Claim the checks due soon and send one `run_check` each, to start at its due time."""
    from rivergen.store.base import utcnow

    worker = runtime()
    now = utcnow()
    claims = worker.call(worker.checks.claim(DISPATCH_BATCH, DISPATCH_LOOKAHEAD_SECONDS, now))
    for claim in claims:
        # Starts at its due time (at once when already due), dropped once its lease is over.
        run_check.apply_async(
            args=(
                claim.data_source_id,
                claim.due_at.isoformat(),
                claim.lease_until.isoformat(),
                claim.interval_seconds,
            ),
            eta=max(claim.due_at, now),
            expires=claim.lease_until,
        )
    return len(claims)


@celery_app.task(name=CHECK_TASK, ignore_result=True)
def run_check(data_source_id: int, due_at: str, lease_until: str, interval_seconds: int) -> str:
    """Run one claimed check (the claim's lease is its token)."""
    from rivergen.health.claims_repository import Claim

    claim = Claim(
        data_source_id=data_source_id,
        due_at=datetime.fromisoformat(due_at),
        lease_until=datetime.fromisoformat(lease_until),
        interval_seconds=interval_seconds,
    )
    worker = runtime()
    return worker.call(worker.checks.run(claim))


@celery_app.task(name=PURGE_TASK, ignore_result=True)
def purge_health_records() -> int:
    """Delete health records older than RIVERGEN_HEALTH_RETENTION_DAYS, in batches."""
    worker = runtime()
    return worker.call(worker.checks.purge())


# ----- the processes ---------------------------------------------------------------------------


def run_worker(
    settings: Settings,
    *,
    concurrency: int,
    namespace: str = DEFAULT_NAMESPACE,
    metrics_port: int = 0,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Run a Celery worker executing scheduled checks (blocks until it is stopped)."""
    app = configure(settings, namespace)
    if settings.log_level != "debug":
        # Celery logs two lines per task at INFO: several a second here.
        for name in ("celery.worker.strategy", "celery.app.trace"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
        log.info("worker_metrics_listening", host=metrics_host, port=metrics_port)
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--loglevel={settings.log_level.upper()}",
            f"--queues={QUEUE}",
            f"--hostname=rivergen-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]
    )


def run_beat(settings: Settings, *, namespace: str = DEFAULT_NAMESPACE) -> None:
    """Run the beat sending the schedule; only the holder of the Redis lock sends anything."""
    app = configure(settings, namespace)
    if settings.log_level != "debug":
        # The scheduler logs every task it sends at INFO: once a second here. Its other lines
        # (starting, lock acquired: which beat is the active one) stay.
        logging.getLogger("celery.beat").addFilter(_quiet_sends)
    app.start(
        [
            "beat",
            "--scheduler=redbeat.RedBeatScheduler",
            f"--max-interval={int(DISPATCH_EVERY_SECONDS)}",
            f"--loglevel={settings.log_level.upper()}",
        ]
    )


def _quiet_sends(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Scheduler: Sending due task")
