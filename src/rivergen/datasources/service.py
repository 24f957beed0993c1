"""Data-source use cases: create, read, change, delete, and key rotation. Knows nothing of HTTP."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.audit.repository import add_event
from rivergen.core.errors import Conflict, InvalidInput, NotFound
from rivergen.datasources import repository as repo_module
from rivergen.datasources.config import (
    SecretMap,
    SourceConfig,
    masked,
    resolve_spec,
    split_secrets,
    validate_connection,
)
from rivergen.datasources.fingerprints import Fingerprinter
from rivergen.datasources.models import DataSource
from rivergen.datasources.repository import DataSourceRepository, ListFilters
from rivergen.datasources.schemas import (
    DataSourceCreate,
    DataSourceOut,
    DataSourceUpdate,
)
from rivergen.datasources.secret_names import (
    names_of,
    presence_of,
    require_every_secret,
    stored_names,
)
from rivergen.datasources.update_plan import changed_fields, plan_update
from rivergen.health.cadence import first_check_at
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role
from rivergen.security.crypto import SecretBox, SecretDecryptionError
from rivergen.tunnels.schemas import SshTunnelConfig

log = structlog.get_logger(__name__)
NOT_FOUND = "Data source not found"
DUPLICATE_NAME = "A data source with this name already exists"


@contextlib.asynccontextmanager
async def _unique_name() -> AsyncIterator[None]:
    """Turn the store's unique (organization, name) violation into CONFLICT.

    The explicit `name_taken` check gives the answer in the common case; two concurrent
    requests can both pass it, and then the constraint decides (a 409, not a 500).
    """
    try:
        yield
    except IntegrityError:
        raise Conflict(DUPLICATE_NAME) from None


@dataclass
class KeyRotation:
    """What `rotate_keys` did: rows seen, rows re-encrypted, ids of rows it could not decrypt."""

    seen: int = 0
    rotated: int = 0
    unreadable: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class StoredSource:
    """A data source with its configuration decrypted, ready for a test."""

    row: DataSource
    config: SourceConfig


class DataSourceService:
    """Registers data sources with their secrets encrypted, scoped to the caller's organizations."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        file_root: Path,
        min_interval_seconds: int,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self.fingerprints = Fingerprinter(box)
        self._file_root = file_root
        self._min_interval = min_interval_seconds

    # ----- reading -------------------------------------------------------------------------

    def decrypt_secrets(self, row: DataSource) -> SecretMap:
        """The stored secrets of a row."""
        if not row.secrets_ciphertext:
            return {"connection": {}, "ssh_tunnel": {}}
        secrets: SecretMap = json.loads(self._box.decrypt(row.secrets_ciphertext))
        return secrets

    def to_out(self, row: DataSource) -> DataSourceOut:
        """A row as shown to users, secrets masked."""
        spec = resolve_spec(row.type)
        connection, tunnel = masked(
            spec.secret_fields, row.connection, row.ssh_tunnel, self._secret_presence(row)
        )
        return DataSourceOut.model_validate(
            {**_row_fields(row), "connection": connection, "ssh_tunnel": tunnel}
        )

    def _secret_presence(self, row: DataSource) -> SecretMap:
        # Which secrets are set is all the response needs: their stored names tell, no key.
        if row.secret_names is not None or not row.secrets_ciphertext:
            return presence_of(row.secret_names or {})
        try:
            return self.decrypt_secrets(row)  # a row from before the names were stored
        except SecretDecryptionError:
            # The key that made them is gone; they are still stored, so show them as set.
            log.warning("undecryptable_secrets", data_source_id=row.id)
            return presence_of(stored_names(row))

    async def get(
        self, session: AsyncSession, caller: Caller, data_source_id: int
    ) -> DataSourceOut:
        """One data source the caller may read."""
        row = await self._visible(session, caller, data_source_id, Role.VIEWER)
        return self.to_out(row)

    async def list(
        self, session: AsyncSession, caller: Caller, filters: ListFilters, limit: int, offset: int
    ) -> tuple[list[DataSourceOut], int]:
        """A page of the active organization's data sources."""
        organization_id = caller.require(Role.VIEWER)
        if filters.type:
            spec = resolve_spec(filters.type)
            filters = ListFilters(type=spec.key, status=filters.status, name=filters.name)
        repo = DataSourceRepository(session, caller.organization_ids)
        rows, total = await repo.list(organization_id, filters, limit, offset)
        return [self.to_out(row) for row in rows], total

    async def _visible(
        self,
        session: AsyncSession,
        caller: Caller,
        data_source_id: int,
        minimum: Role,
        for_update: bool = False,
    ) -> DataSource:
        repo = DataSourceRepository(session, caller.organization_ids)
        row = await repo.get(data_source_id, for_update=for_update)
        if row is None:
            raise NotFound(NOT_FOUND)
        caller.require(minimum, row.organization_id)
        return row

    async def load_for_test(
        self, session: AsyncSession, caller: Caller, data_source_id: int
    ) -> StoredSource:
        """A data source the caller may test (member and up), decrypted."""
        row = await self._visible(session, caller, data_source_id, Role.MEMBER)
        return StoredSource(row=row, config=self.decrypted_config(row))

    def decrypted_config(self, row: DataSource) -> SourceConfig:
        """The row's configuration with its secrets, validated again."""
        spec = resolve_spec(row.type)
        try:
            secrets = self.decrypt_secrets(row)
        except SecretDecryptionError:
            # Reads no longer decrypt, so this is where an operator learns the key is gone.
            log.warning("undecryptable_secrets", data_source_id=row.id)
            raise Conflict(
                "The stored secrets cannot be decrypted with the configured RIVERGEN_SECRET_KEYS; "
                "restore the old key or send the secrets again"
            ) from None
        connection = spec.connection_model.model_validate(
            {**row.connection, **secrets.get("connection", {})}
        )
        tunnel = None
        if row.ssh_tunnel is not None:
            tunnel = SshTunnelConfig.model_validate(
                {**row.ssh_tunnel, **secrets.get("ssh_tunnel", {})}
            )
        return SourceConfig(spec=spec, connection=connection, ssh_tunnel=tunnel)

    # ----- validation ----------------------------------------------------------------------

    def build_config(
        self, engine_type: str, connection: dict[str, Any], tunnel: SshTunnelConfig | None
    ) -> SourceConfig:
        """Validate a configuration for its engine."""
        spec = resolve_spec(engine_type)
        validated = validate_connection(spec, connection, self._file_root)
        if tunnel is not None and spec.file_based:
            raise InvalidInput(
                "File engines cannot use an SSH tunnel",
                [
                    {
                        "field": "body.ssh_tunnel",
                        "message": "Not allowed for file engines",
                        "type": "not_allowed",
                    }
                ],
            )
        return SourceConfig(spec=spec, connection=validated, ssh_tunnel=tunnel)

    def _check_interval(self, interval: int | None) -> None:
        if interval is not None and interval < self._min_interval:
            raise InvalidInput(
                "Health check interval too short",
                [
                    {
                        "field": "body.health_check_interval_seconds",
                        "message": f"Must be at least {self._min_interval} seconds, or null",
                        "type": "greater_than_equal",
                    }
                ],
            )

    # ----- writing -------------------------------------------------------------------------

    async def create(self, caller: Caller, body: DataSourceCreate) -> DataSourceOut:
        """Register a data source in the active organization (admin and up)."""
        organization_id = caller.require(Role.ADMIN)
        config = self.build_config(body.type, body.connection, body.ssh_tunnel)
        self._check_interval(body.health_check_interval_seconds)
        plain, tunnel, secrets = split_secrets(config)
        async with _unique_name(), self._sessions() as session, session.begin():
            repo = DataSourceRepository(session, caller.organization_ids)
            if await repo.name_taken(organization_id, body.name):
                raise Conflict(DUPLICATE_NAME)
            row = DataSource(
                organization_id=organization_id,
                name=body.name,
                type=config.spec.key,
                description=body.description,
                connection=plain,
                ssh_tunnel=tunnel,
                health_check_interval_seconds=body.health_check_interval_seconds,
                next_check_at=first_check_at(body.health_check_interval_seconds),
                status="pending",
                created_by=caller.user.id,
            )
            self._store_secrets(row, secrets)
            await repo.add(row)
            await add_event(
                session,
                "data_source.create",
                organization_id=organization_id,
                actor_user_id=caller.actor_user_id,
                actor_token_id=caller.token_id,
                target_type="data_source",
                target_id=row.id,
                details={"name": row.name, "type": row.type},
            )
        return self.to_out(row)

    def _store_secrets(self, row: DataSource, secrets: SecretMap) -> None:
        # Once the name is final: it is part of each fingerprint.
        row.secrets_ciphertext = (
            self._box.encrypt(json.dumps(secrets, sort_keys=True))
            if any(secrets.values())
            else None
        )
        row.secret_names = names_of(secrets)
        row.secret_fingerprints = self.fingerprints.of(row.organization_id, row.name, secrets)

    async def update(
        self, caller: Caller, data_source_id: int, body: DataSourceUpdate
    ) -> DataSourceOut:
        """Change a data source (admin and up); stored secrets never follow a new destination."""
        sent = body.model_fields_set
        async with _unique_name(), self._sessions() as session, session.begin():
            row = await self._visible(session, caller, data_source_id, Role.ADMIN, for_update=True)
            try:
                stored = self.decrypt_secrets(row)
            except SecretDecryptionError:
                # The key is lost: a PATCH that sends every secret again repairs the source.
                require_every_secret(row, body)
                stored = {"connection": {}, "ssh_tunnel": {}}
            plan = plan_update(row, stored, body)
            config = self.build_config(plan.engine_type, plan.connection, plan.tunnel)
            if "health_check_interval_seconds" in sent:
                self._check_interval(body.health_check_interval_seconds)
            plain, tunnel, secrets = split_secrets(config)
            repo = DataSourceRepository(session, caller.organization_ids)
            if body.name is not None and await repo.name_taken(
                row.organization_id, body.name, row.id
            ):
                raise Conflict(DUPLICATE_NAME)
            changed = changed_fields(row, body, config.spec.key, plain, tunnel, secrets, stored)
            if body.name is not None:
                row.name = body.name
            if "description" in sent:
                row.description = body.description
            if "health_check_interval_seconds" in sent:
                row.health_check_interval_seconds = body.health_check_interval_seconds
                row.next_check_at = first_check_at(body.health_check_interval_seconds)
            row.type = config.spec.key
            row.connection = plain
            row.ssh_tunnel = tunnel
            self._store_secrets(row, secrets)
            if plan.destination_changed:
                # Results of the old destination say nothing about the new one.
                row.status = "pending"
            await add_event(
                session,
                "data_source.update",
                organization_id=row.organization_id,
                actor_user_id=caller.actor_user_id,
                actor_token_id=caller.token_id,
                target_type="data_source",
                target_id=row.id,
                details={"changed": sorted(changed)},
            )
        return self.to_out(row)

    async def delete(self, caller: Caller, data_source_id: int) -> None:
        """Delete a data source (admin and up) with its health history."""
        async with self._sessions() as session, session.begin():
            row = await self._visible(session, caller, data_source_id, Role.ADMIN, for_update=True)
            await DataSourceRepository(session, caller.organization_ids).delete(row)
            await add_event(
                session,
                "data_source.delete",
                organization_id=row.organization_id,
                actor_user_id=caller.actor_user_id,
                actor_token_id=caller.token_id,
                target_type="data_source",
                target_id=row.id,
                details={"name": row.name},
            )

    async def rotate_keys(self, batch: int = 200) -> KeyRotation:
        """Re-encrypt every stored secret with the newest key; rows it cannot decrypt are skipped
        and reported (their secrets must be sent again), never a reason to stop."""
        report = KeyRotation()
        after_id = 0
        while True:
            async with self._sessions() as session, session.begin():
                rows = await repo_module.all_with_secrets(session, after_id, batch)
                # One event per organization, so that each sees the rotation in its own log.
                rotated_by_organization: dict[int, list[int]] = {}
                for row in rows:
                    report.seen += 1
                    try:
                        changed = self._rotate_row(row)
                    except SecretDecryptionError:
                        log.warning("rotation_skipped_undecryptable", data_source_id=row.id)
                        report.unreadable.append(row.id)
                        continue
                    if changed:
                        report.rotated += 1
                        rotated_by_organization.setdefault(row.organization_id, []).append(row.id)
                for organization_id, ids in rotated_by_organization.items():
                    await add_event(
                        session,
                        "secrets.rotate",
                        organization_id=organization_id,
                        target_type="data_source",
                        details={"data_source_ids": ids, "key_id": self._box.current_key_id},
                    )
            if not rows:
                return report
            after_id = rows[-1].id

    def _rotate_row(self, row: DataSource) -> bool:
        """Re-encrypt one row if an older key made it (and learn its secret names); rotated?"""
        token = row.secrets_ciphertext
        assert token is not None
        rotate = self._box.needs_rotation(token)
        if rotate or row.secret_names is None:
            # Names and fingerprints (keyed by the newest key) need the secrets in plain text.
            self._store_secrets(row, self.decrypt_secrets(row))
        return rotate


def _row_fields(row: DataSource) -> dict[str, Any]:
    names = (
        "id",
        "organization_id",
        "name",
        "type",
        "description",
        "health_check_interval_seconds",
        "status",
        "last_tested_at",
        "last_connected_at",
        "last_response_time_ms",
        "last_error_code",
        "last_error_message",
        "database_version",
        "ssh_host_key_fingerprint",
        "secret_fingerprints",
        "created_by",
        "created_at",
        "updated_at",
    )
    return {name: getattr(row, name) for name in names}
