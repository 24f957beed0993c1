"""Queries of data sources, every one scoped to the caller's organizations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.datasources.models import DataSource


@dataclass(frozen=True)
class ListFilters:
    """Optional filters of the list endpoint."""

    type: str | None = None
    status: str | None = None
    name: str | None = None


class DataSourceRepository:
    """Data-source queries that only see the given organizations' rows (tenancy in one place)."""

    def __init__(self, session: AsyncSession, organization_ids: Sequence[int]) -> None:
        self.session = session
        self._scope = list(organization_ids)

    def _scoped(self) -> Select[DataSource]:
        return select(DataSource).where(DataSource.organization_id.in_(self._scope))

    async def get(self, data_source_id: int, for_update: bool = False) -> DataSource | None:
        """A data source of the scope, or None (another organization's looks the same as none)."""
        query = self._scoped().where(DataSource.id == data_source_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def list(
        self, organization_id: int, filters: ListFilters, limit: int, offset: int
    ) -> tuple[list[DataSource], int]:
        """A page of one organization's data sources (which must be in scope) and the total."""
        if organization_id not in self._scope:
            return [], 0
        query = self._scoped().where(DataSource.organization_id == organization_id)
        if filters.type:
            query = query.where(DataSource.type == filters.type)
        if filters.status:
            query = query.where(DataSource.status == filters.status)
        if filters.name:
            escaped = filters.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(DataSource.name.ilike(f"%{escaped}%", escape="\\"))
        total_query = select(func.count()).select_from(query.subquery())
        total = int((await self.session.execute(total_query)).scalar_one())
        rows = await self.session.execute(query.order_by(DataSource.id).limit(limit).offset(offset))
        return list(rows.scalars()), total

    async def name_taken(
        self, organization_id: int, name: str, except_id: int | None = None
    ) -> bool:
        """Whether another data source of the organization has this name."""
        query = select(DataSource.id).where(
            DataSource.organization_id == organization_id, DataSource.name == name
        )
        if except_id is not None:
            query = query.where(DataSource.id != except_id)
        return (await self.session.execute(query.limit(1))).first() is not None

    async def add(self, data_source: DataSource) -> DataSource:
        """Insert a data source of the scope."""
        if data_source.organization_id not in self._scope:
            raise PermissionError("organization outside the caller's scope")
        self.session.add(data_source)
        await self.session.flush()
        return data_source

    async def delete(self, data_source: DataSource) -> None:
        """Delete a data source of the scope (its health history goes with it)."""
        await self.session.delete(data_source)
        await self.session.flush()


async def all_with_secrets(session: AsyncSession, after_id: int, batch: int) -> list[DataSource]:
    """Every organization's data sources with secrets, in id order (key rotation only)."""
    query = (
        select(DataSource)
        .where(DataSource.secrets_ciphertext.is_not(None), DataSource.id > after_id)
        .order_by(DataSource.id)
        .limit(batch)
    )
    return list((await session.execute(query)).scalars())


async def get_any(session: AsyncSession, data_source_id: int) -> DataSource | None:
    """A data source whatever its organization: only for internal jobs that already authorized."""
    return await session.get(DataSource, data_source_id, with_for_update=True)


async def get_many_any(session: AsyncSession, ids: Iterable[int]) -> dict[int, DataSource]:
    """Data sources by id whatever their organization, locked: for internal jobs (see get_any).

    Locked in id order, so that two writers locking overlapping sets (two replicas) wait for
    each other instead of each holding a row the other needs.
    """
    query = (
        select(DataSource)
        .where(DataSource.id.in_(set(ids)))
        .order_by(DataSource.id)
        .with_for_update()
    )
    return {row.id: row for row in (await session.scalars(query)).all()}
