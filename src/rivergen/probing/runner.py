"""One connection test: policy and DNS, SSH tunnel if any, the engine's probe, one deadline."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from rivergen.connectors.base import ConnectionTarget, ConnectorResult
from rivergen.core.deadline import Deadline
from rivergen.core.errors import InvalidInput
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security
from rivergen.datasources.config import SourceConfig, check_file_path
from rivergen.probing.hints import hint_for
from rivergen.probing.pool import PoolBusy, ProbePool
from rivergen.security.host_policy import HostPolicy
from rivergen.security.scrub import scrub
from rivergen.store.base import utcnow
from rivergen.tunnels.tunnel import open_tunnel

log = structlog.get_logger(__name__)
# Past the deadline the request answers anyway; this margin covers the last bookkeeping.
_HARD_STOP_SLACK_SECONDS = 0.3
# A probe needs at least this much of its deadline left to start (else the server is busy).
_MIN_START_SECONDS = 0.5
_MIN_START_SHARE = 0.25


@dataclass
class ProbeResult:
    """The outcome of one test, in the spec's terms plus phase, timings and hint."""

    connection_successful: bool
    tested_at: datetime
    response_time_ms: int | None = None
    test_query_result: str | None = None
    test_query_result_truncated: bool = False
    ssh_tunnel_established: bool = False
    database_version: str | None = None
    error_message: str | None = None
    error_code: ErrorCode | None = None
    error_phase: Phase | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    ssh_host_key_fingerprint: str | None = None
    security: Security = field(default_factory=Security)

    @property
    def hint(self) -> str | None:
        """What the user can do about the failure, or the warning of a weak success."""
        return hint_for(self.error_code, self.security)


class Prober:
    """Runs connection tests: async orchestration here, blocking driver work in the pool."""

    def __init__(self, pool: ProbePool, policy: HostPolicy, file_root: Any) -> None:
        self.pool = pool
        self.policy = policy
        self.file_root = file_root

    async def run(self, config: SourceConfig, query: str | None, deadline: Deadline) -> ProbeResult:
        """Test `config` before `deadline`; never raises for a failing target.

        The deadline may have started when the request arrived, so that time spent before the
        probe (sign-in, loading the source) counts against the caller's timeout too.
        Raises `PoolBusy` when there is no capacity for the blocking part.
        """
        timeout_seconds = round(deadline.expires_at - deadline.started_at)
        if deadline.remaining() < min(_MIN_START_SECONDS, timeout_seconds * _MIN_START_SHARE):
            # The request waited so long before reaching the probe (a flood of requests) that
            # a TIMEOUT would blame the target for our own congestion: answer busy instead.
            raise PoolBusy(retry_after=1)
        probe_started = time.monotonic()
        tested_at = utcnow()
        state = _State()
        try:
            async with asyncio.timeout(deadline.remaining() + _HARD_STOP_SLACK_SECONDS):
                result = await self._probe(config, query, deadline, state)
        except PoolBusy:
            raise
        except ProbeFailure as failure:
            return state.failed(tested_at, failure, _secrets_of(config))
        except TimeoutError:
            timed_out = ProbeFailure(
                ErrorCode.TIMEOUT, state.phase, f"No answer within {timeout_seconds} s"
            )
            return state.failed(tested_at, timed_out, _secrets_of(config))
        except Exception as exc:
            log.exception("probe_internal_error", engine=config.spec.key)
            internal = ProbeFailure(
                ErrorCode.INTERNAL_ERROR, state.phase, f"Unexpected {type(exc).__name__}"
            )
            return state.failed(tested_at, internal, _secrets_of(config))
        state.timings.update(result.timings_ms)
        return ProbeResult(
            connection_successful=True,
            tested_at=tested_at,
            response_time_ms=max(0, round((time.monotonic() - probe_started) * 1000)),
            test_query_result=result.test_query_result,
            test_query_result_truncated=result.test_query_result_truncated,
            ssh_tunnel_established=state.tunnel_up,
            database_version=result.database_version,
            timings_ms=_rounded(state.timings),
            ssh_host_key_fingerprint=state.fingerprint,
            security=result.security,
        )

    async def _probe(
        self, config: SourceConfig, query: str | None, deadline: Deadline, state: _State
    ) -> ConnectorResult:
        spec = config.spec
        connection = config.connection
        options = getattr(connection, "options", None) or {}
        if spec.file_based:
            state.phase = Phase.POLICY
            path = _checked_path(str(getattr(connection, "path", "")), self.file_root)
            target = ConnectionTarget(path=str(path), options=options)
            state.phase = Phase.AUTH
            return await self.pool.run(
                spec.connector.probe, target, query, deadline, deadline=deadline
            )

        host = str(getattr(connection, "host", ""))
        port = int(getattr(connection, "port", None) or spec.default_port or 0)
        if spec.locate is not None:
            state.phase = Phase.DNS
            located = await spec.locate(connection, deadline)
            if located is not None:
                host, port = located
        common: dict[str, Any] = {
            "database": _optional_str(getattr(connection, "database", None)),
            "username": getattr(connection, "username", None),
            "password": getattr(connection, "password", None),
            "ssl_mode": getattr(connection, "ssl_mode", None),
            "ssl_root_cert": getattr(connection, "ssl_root_cert", None),
            "options": options,
            "secrets": {
                name: str(value)
                for name in spec.secret_fields - {"password"}
                if (value := getattr(connection, name, None)) is not None
            },
        }
        async with AsyncExitStack() as stack:
            tunnel = config.ssh_tunnel
            if tunnel is None:
                state.phase = Phase.DNS
                started = time.monotonic()
                resolved = await self.policy.resolve_and_check(host, port, deadline)
                state.timings["dns"] = (time.monotonic() - started) * 1000
                target = ConnectionTarget(host=host, address=resolved.address, port=port, **common)
            else:
                state.phase = Phase.DNS
                started = time.monotonic()
                bastion = await self.policy.resolve_and_check(tunnel.host, tunnel.port, deadline)
                state.timings["dns"] = (time.monotonic() - started) * 1000
                self._check_literal_destination(host, port)
                state.phase = Phase.SSH
                info = await stack.enter_async_context(
                    open_tunnel(tunnel, bastion.address, host, port, deadline, spec.tunnel_clients)
                )
                state.tunnel_up = True
                state.fingerprint = info.host_key_fingerprint
                state.timings.update(info.timings_ms)
                target = ConnectionTarget(
                    host=host, address=info.local_host, port=info.local_port, **common
                )
            state.phase = Phase.AUTH
            return await self.pool.run(
                spec.connector.probe, target, query, deadline, deadline=deadline
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_literal_destination(self, host: str, port: int) -> None:
        # Behind a tunnel the bastion resolves the database host; a literal address can still be
        # judged here, so a tunnel cannot be used to reach metadata addresses.
        if _is_ip(host):
            self.policy.check_address(host.strip("[]"), host=host, port=port)


@dataclass
class _State:
    phase: Phase = Phase.POLICY
    tunnel_up: bool = False
    fingerprint: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def failed(self, tested_at: datetime, failure: ProbeFailure, secrets: list[str]) -> ProbeResult:
        return ProbeResult(
            connection_successful=False,
            tested_at=tested_at,
            ssh_tunnel_established=self.tunnel_up,
            error_message=scrub(failure.message, secrets),
            error_code=failure.code,
            error_phase=failure.phase,
            timings_ms=_rounded(self.timings),
            ssh_host_key_fingerprint=self.fingerprint,
            security=failure.security or Security(),
        )


def _checked_path(path: str, root: Any) -> Any:
    try:
        return check_file_path(path, root)
    except InvalidInput:
        raise ProbeFailure(
            ErrorCode.HOST_NOT_ALLOWED, Phase.POLICY, "The file is outside the allowed directory"
        ) from None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {phase: round(ms, 1) for phase, ms in timings.items()}


def _secrets_of(config: SourceConfig) -> list[str]:
    values = [getattr(config.connection, name, None) for name in config.spec.secret_fields]
    if config.ssh_tunnel is not None:
        tunnel = config.ssh_tunnel
        values += [tunnel.password, tunnel.private_key, tunnel.private_key_passphrase]
    return [str(v) for v in values if v]
