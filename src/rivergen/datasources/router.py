"""HTTP routes of data sources and engine types."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from rivergen.api.deps import Context, CurrentCaller, Session
from rivergen.api.envelope import Envelope, Page, error_responses, ok
from rivergen.api.params import NO_NUL, ObjectId, Offset
from rivergen.datasources.repository import ListFilters
from rivergen.datasources.schemas import (
    DataSourceCreate,
    DataSourceOut,
    DataSourceUpdate,
    EngineOut,
    SecretCandidates,
)
from rivergen.datasources.types import engine_catalogue

router = APIRouter(tags=["data sources"])
ID_ERRORS = error_responses(401, 403, 404, 422)


@router.get(
    "/data-source-types",
    response_model=Envelope[list[EngineOut]],
    responses=error_responses(401, 403),
)
async def list_types(_caller: CurrentCaller) -> dict[str, Any]:
    """Engines, their connection fields and whether each driver is installed.

    Like every data-source route, it needs a membership of some organization.
    """
    return ok([e.model_dump(mode="json") for e in engine_catalogue()], "Data source types")


@router.post(
    "/data-sources",
    status_code=201,
    response_model=Envelope[DataSourceOut],
    responses=error_responses(401, 403, 404, 409, 422),
)
async def create_data_source(
    body: DataSourceCreate, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Register a data source (admin and up); secrets are stored encrypted and never returned."""
    data = await context.data_sources.create(caller, body)
    return ok(data.model_dump(mode="json"), "Data source created")


@router.get(
    "/data-sources",
    response_model=Envelope[Page[DataSourceOut]],
    responses=error_responses(401, 403, 404, 422),
)
async def list_data_sources(
    caller: CurrentCaller,
    session: Session,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
    type: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[Literal["pending", "active", "failed"] | None, Query()] = None,
    name: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
) -> dict[str, Any]:
    """A page of the active organization's data sources, optionally filtered."""
    filters = ListFilters(type=type, status=status, name=name)
    items, total = await context.data_sources.list(session, caller, filters, limit, offset)
    data = {"items": [i.model_dump(mode="json") for i in items], "total": total}
    return ok(data, "Data sources retrieved")


@router.get(
    "/data-sources/{data_source_id:source_id}",
    response_model=Envelope[DataSourceOut],
    responses=ID_ERRORS,
)
async def get_data_source(
    data_source_id: ObjectId, caller: CurrentCaller, session: Session, context: Context
) -> dict[str, Any]:
    """One data source (viewer and up)."""
    data = await context.data_sources.get(session, caller, data_source_id)
    return ok(data.model_dump(mode="json"), "Data source retrieved")


@router.patch(
    "/data-sources/{data_source_id:source_id}",
    response_model=Envelope[DataSourceOut],
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_data_source(
    data_source_id: ObjectId, body: DataSourceUpdate, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Change a data source (admin and up); omitted or masked secrets are kept."""
    data = await context.data_sources.update(caller, data_source_id, body)
    return ok(data.model_dump(mode="json"), "Data source updated")


@router.delete(
    "/data-sources/{data_source_id:source_id}",
    response_model=Envelope[None],
    responses=ID_ERRORS,
)
async def delete_data_source(
    data_source_id: ObjectId, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Delete a data source and its health history (admin and up)."""
    await context.data_sources.delete(caller, data_source_id)
    return ok(None, "Data source deleted")


@router.post(
    "/data-sources/{data_source_id}/secret-fingerprints",
    response_model=Envelope[dict[str, str]],
    responses=error_responses(401, 403, 404, 422, 429),
)
async def secret_fingerprints(
    data_source_id: ObjectId,
    body: SecretCandidates,
    caller: CurrentCaller,
    session: Session,
    context: Context,
) -> dict[str, Any]:
    """Fingerprints the given values would have as this source's secrets (admin and up).

    Compare them with the source's `secret_fingerprints` to learn whether a secret changed
    without reading it; nothing is stored, and the values are not kept.
    """
    source = await context.data_sources.get(session, caller, data_source_id)
    data = context.fingerprints.candidates(
        caller, source.organization_id, source.name, source.type, body
    )
    return ok(data, "Secret fingerprints computed")
