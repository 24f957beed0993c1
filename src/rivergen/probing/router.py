"""HTTP routes of the connection test (the spec's endpoint) and of the unsaved-config test."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from rivergen.api.deps import Context, CurrentCaller
from rivergen.api.envelope import Envelope, error_responses, ok
from rivergen.api.params import ObjectId
from rivergen.core.deadline import Deadline
from rivergen.probing.schemas import TestRequest, TestResultOut, UnsavedTestRequest

router = APIRouter(tags=["connection tests"])
MESSAGE = "Connection test completed"


def request_deadline(request: Request, timeout_seconds: int) -> Deadline:
    """A deadline counted from the request's arrival, so sign-in and queueing count too."""
    arrived = getattr(request.state, "arrived_at", None)
    if arrived is None:
        return Deadline.after(timeout_seconds)
    return Deadline(expires_at=arrived + timeout_seconds, started_at=arrived)


@router.post(
    "/data-sources/test",
    response_model=Envelope[TestResultOut],
    responses=error_responses(400, 401, 403, 404, 422, 429, 503),
    summary="Test an unsaved configuration",
)
async def run_unsaved_test(
    body: UnsavedTestRequest, caller: CurrentCaller, context: Context, request: Request
) -> dict[str, Any]:
    """Run the same test on a configuration that is not saved; nothing is persisted."""
    deadline = request_deadline(request, body.timeout_seconds)
    result = await context.tests.test_unsaved(caller, body, deadline)
    return ok(result.model_dump(mode="json"), MESSAGE)


@router.post(
    "/data-sources/{data_source_id}/test",
    response_model=Envelope[TestResultOut],
    responses=error_responses(400, 401, 403, 404, 422, 429, 503),
    summary="Test Data Source Connection",
)
async def run_connection_test(
    data_source_id: ObjectId,
    caller: CurrentCaller,
    context: Context,
    request: Request,
    body: Annotated[TestRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Test the connection; HTTP 200 whether or not it succeeds, within timeout_seconds + 1 s."""
    options = body or TestRequest()
    deadline = request_deadline(request, options.timeout_seconds)
    result = await context.tests.test_saved(caller, data_source_id, options, deadline)
    return ok(result.model_dump(mode="json"), MESSAGE)
