"""Long-lived objects the application owns, built once from settings and shared by requests."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rivergen.alerts.delivery import Sender
from rivergen.alerts.dispatcher import Dispatcher, DispatchSettings
from rivergen.alerts.repository import tested_sources
from rivergen.alerts.rules_service import RuleService
from rivergen.alerts.service import ChannelService
from rivergen.alerts.transitions import AlertObserver
from rivergen.apitokens.service import ApiTokenService
from rivergen.core.bounded import BoundedExecutor
from rivergen.datasources.fingerprints import CANDIDATES_PER_MINUTE, FingerprintOracle
from rivergen.datasources.service import DataSourceService
from rivergen.health.scheduler import HealthScheduler, build_scheduler
from rivergen.health.source_gauges import SourceGauges
from rivergen.identity.service import AuthService, LoginThrottle
from rivergen.identity.signed_in import SignedInCache
from rivergen.identity.tokens import TokenCodec
from rivergen.organizations.invitation_service import InvitationService
from rivergen.organizations.service import OrganizationService
from rivergen.probing.pool import ProbePool
from rivergen.probing.runner import Prober
from rivergen.probing.service import ConnectionTestService, TestRateLimits
from rivergen.security.counters import CreationLimits, StoreCounters
from rivergen.security.crypto import SecretBox
from rivergen.security.host_policy import HostPolicy
from rivergen.security.keyfile import ensure_private_dir, read_or_create
from rivergen.security.own_endpoints import machine_addresses, service_endpoints
from rivergen.security.throttle import SlidingWindow
from rivergen.settings import Settings
from rivergen.store.session import create_engine, create_session_factory

log = structlog.get_logger(__name__)


@dataclass
class AppContext:
    """Everything a request handler may need besides the request itself."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    codec: TokenCodec
    auth: AuthService
    organizations: OrganizationService
    invitations: InvitationService
    secret_box: SecretBox
    data_sources: DataSourceService
    pool: ProbePool
    resolver: BoundedExecutor
    tests: ConnectionTestService
    api_tokens: ApiTokenService
    channels: ChannelService
    rules: RuleService
    dispatcher: Dispatcher
    gauges: SourceGauges
    fingerprints: FingerprintOracle
    scheduler: HealthScheduler | None = field(default=None)

    async def start(self) -> None:
        """Start background parts (thread pool, scheduler) once the store is ready."""
        await self.start_alerts()
        if self.settings.scheduler_enabled and self.scheduler is None:
            self.scheduler = build_scheduler(
                self.settings, self.sessions, self.data_sources, self.tests
            )
            self.scheduler.start()

    async def start_alerts(self) -> None:
        """Fill the per-source gauges from the store and start the outbox dispatcher."""
        if self.gauges.enabled:
            async with self.sessions() as session:
                self.gauges.observe(await tested_sources(session))
        if self.settings.alerts_dispatcher_enabled:
            self.dispatcher.start()

    async def close(self) -> None:
        """Release what the context holds."""
        await self.dispatcher.close()
        if self.scheduler is not None:
            await self.scheduler.close()
            self.scheduler = None
        # Answered tests whose outcome is still being written: nothing answered is lost.
        await self.tests.recorder.close()
        # Waiting would hold shutdown hostage to a hung driver call; its thread is a daemon.
        self.pool.shutdown(wait=False)
        self.resolver.shutdown()
        await self.engine.dispose()


def jwt_secret(settings: Settings) -> str:
    """The access-token signing secret: the setting, or a generated file in the data directory."""
    if settings.jwt_secret:
        return settings.jwt_secret
    value, created = read_or_create(
        settings.data_dir / "jwt.key", lambda: secrets.token_urlsafe(48)
    )
    if created:
        log.warning("generated_jwt_secret", path=str(settings.data_dir / "jwt.key"))
    return value


def host_policy_for(settings: Settings, resolver: BoundedExecutor | None = None) -> HostPolicy:
    """The host policy of the settings, knowing this machine and the service's own endpoints."""
    return HostPolicy(
        resolver=resolver,
        allow_private=settings.allow_private_networks,
        allow_loopback=settings.allow_loopback,
        allowed_networks=list(settings.allowed_network_objects),
        local_addresses=machine_addresses(),
        reserved_endpoints=service_endpoints(settings),
    )


def build_context(settings: Settings) -> AppContext:
    """Build the context from settings (no I/O against the store yet)."""
    # The data directory holds the keys and the SQLite store: the owner's only, from the start.
    ensure_private_dir(settings.data_dir, tighten=True)
    engine = create_engine(settings.effective_database_url)
    sessions = create_session_factory(engine)
    codec = TokenCodec(
        jwt_secret(settings),
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.access_token_ttl_seconds,
    )
    counters = StoreCounters(sessions)
    throttle = LoginThrottle(
        counters,
        settings.login_max_failures_per_account,
        settings.login_max_failures_per_client,
        settings.login_failure_window_seconds,
    )
    creation = CreationLimits(
        counters, settings.organizations_per_day_per_user, settings.accounts_per_day_per_user
    )
    signed_in = SignedInCache(settings.auth_cache_seconds)
    auth = AuthService(sessions, codec, throttle, settings.refresh_token_ttl_seconds, signed_in)
    box = SecretBox.from_setting(settings.secret_keys, settings.data_dir)
    data_sources = DataSourceService(
        sessions,
        box,
        settings.effective_file_sources_dir,
        settings.min_health_check_interval_seconds,
    )
    pool = ProbePool(settings.probe_workers, settings.probe_queue)
    resolver = BoundedExecutor("rivergen-dns", settings.dns_workers, settings.dns_queue)
    policy = host_policy_for(settings, resolver)
    prober = Prober(pool, policy, settings.effective_file_sources_dir)
    limits = TestRateLimits(
        settings.tests_per_minute_per_organization, settings.tests_per_minute_per_user
    )
    tests = ConnectionTestService(sessions, data_sources, prober, limits)
    gauges = SourceGauges(settings.source_metrics_enabled)
    observer = AlertObserver(gauges)
    tests.recorder.observers.append(observer)
    sender = Sender(
        policy, settings.alert_delivery_timeout_seconds, settings.alert_max_response_bytes
    )
    dispatcher = Dispatcher(
        sessions,
        box,
        sender,
        DispatchSettings(
            poll_seconds=settings.alert_poll_seconds,
            concurrency=settings.alert_concurrency,
            retry_base_seconds=settings.alert_retry_base_seconds,
            retry_for_seconds=settings.alert_retry_hours * 3600.0,
        ),
    )
    observer.on_committed = dispatcher.wake
    return AppContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        codec=codec,
        auth=auth,
        organizations=OrganizationService(sessions, signed_in, creation),
        invitations=InvitationService(
            sessions, signed_in, settings.invitation_ttl_seconds, creation
        ),
        secret_box=box,
        data_sources=data_sources,
        pool=pool,
        resolver=resolver,
        tests=tests,
        channels=ChannelService(sessions, box, policy, dispatcher),
        rules=RuleService(sessions),
        dispatcher=dispatcher,
        gauges=gauges,
        api_tokens=ApiTokenService(sessions, signed_in),
        fingerprints=FingerprintOracle(
            data_sources.fingerprints, SlidingWindow(CANDIDATES_PER_MINUTE, 60)
        ),
    )
