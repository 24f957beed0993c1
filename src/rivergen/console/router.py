"""The console's pages: thin handlers that call the API's services and render templates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from rivergen.api.deps import Context
from rivergen.console import service as view
from rivergen.console import session as cookies
from rivergen.console.schemas import FormState
from rivergen.core.deadline import Deadline
from rivergen.core.errors import STATUS_BY_CODE, ServiceError, Unauthorized
from rivergen.datasources.repository import ListFilters
from rivergen.datasources.types import engine_catalogue
from rivergen.health.service import HealthQuery, health_report
from rivergen.identity.models import Role
from rivergen.identity.router import client_address
from rivergen.probing.schemas import TestRequest, UnsavedTestRequest

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
TEST_SECONDS = 10


def _secured(response: Response) -> Response:
    response.headers.update(cookies.SECURITY_HEADERS)
    return response


def page(request: Request, name: str, status: int = 200, **values: Any) -> Response:
    """A rendered page with the security headers and the CSRF cookie."""
    csrf = values.pop("csrf", None) or cookies.csrf_token(request)
    response = templates.TemplateResponse(
        request, name, {"csrf": csrf, **values}, status_code=status
    )
    cookies.set_csrf(response, request, csrf)
    console = values.get("console")
    if console is not None and console.renewed is not None:
        cookies.set_tokens(response, request, console.renewed)
    return _secured(response)


def redirect(url: str) -> Response:
    """A 303 to another console page (after a form post)."""
    return _secured(RedirectResponse(url, status_code=303))


async def guarded(
    request: Request, context: Any, handler: Callable[[cookies.Console], Awaitable[Response]]
) -> Response:
    """Run a page for the signed-in user; sign-in page when not signed in, error page on refusal."""
    try:
        console = await cookies.console_user(request, context)
        return await handler(console)
    except Unauthorized:
        return redirect("/sign-in")
    except ServiceError as error:
        return page(request, "error.html", status=STATUS_BY_CODE[error.code], message=error.message)


def _common(console: cookies.Console, context: Any) -> dict[str, Any]:
    caller = console.caller
    role = caller.role_in(caller.active_organization_id)
    return {
        "console": console,
        "csrf": console.csrf,
        "email": caller.user.email,
        "organizations": sorted(caller.roles.items()),
        "active_org": caller.active_organization_id,
        "can_edit": role is not None and role.at_least(Role.ADMIN),
    }


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    """The console's entry: the sources list (or the sign-in page)."""
    return redirect("/sources")


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request) -> Response:
    """The sign-in form."""
    return page(request, "sign_in.html", error=None)


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, context: Context) -> Response:
    """Check the password with the identity service and keep the tokens in cookies."""
    try:
        form = await cookies.read_form(request)
        pair = await context.auth.login(
            form.get("email", ""), form.get("password", ""), client_address(request)
        )
    except ServiceError as error:
        return page(request, "sign_in.html", status=STATUS_BY_CODE[error.code], error=error.message)
    response = redirect("/sources")
    cookies.set_tokens(response, request, pair)
    return response


@router.post("/sign-out", response_class=HTMLResponse)
async def sign_out(request: Request, context: Context) -> Response:
    """End the sign-in session on the server and forget the cookies."""
    try:
        await cookies.read_form(request)
    except ServiceError as error:
        return page(request, "error.html", status=STATUS_BY_CODE[error.code], message=error.message)
    refresh = request.cookies.get(cookies.REFRESH)
    if refresh:
        # An expired session is as signed out as a revoked one.
        with suppress(ServiceError):
            await context.auth.logout(refresh)
    response = redirect("/sign-in")
    cookies.clear_tokens(response)
    return response


@router.post("/organization", response_class=HTMLResponse)
async def switch_organization(request: Request, context: Context) -> Response:
    """Make another of the caller's organizations the active one."""

    async def run(console: cookies.Console) -> Response:
        form = await cookies.read_form(request)
        response = redirect("/sources")
        org = form.get("organization", "")
        if org.isdigit() and int(org) in console.caller.roles:
            response.set_cookie(
                cookies.ORG, org, httponly=True, samesite="strict", secure=cookies.secure(request)
            )
        return response

    return await guarded(request, context, run)


@router.get("/sources", response_class=HTMLResponse)
async def sources_page(request: Request, context: Context) -> Response:
    """The sources list with badges and filters by engine, status and name."""
    q = request.query_params
    engine, status, name = q.get("type") or None, q.get("status") or None, q.get("name") or None

    async def run(console: cookies.Console) -> Response:
        stored = status if status in {"active", "failed", "pending"} else None
        await context.tests.settled()
        filters = ListFilters(type=engine, status=stored, name=name)
        async with context.sessions() as session:
            items, total = await context.data_sources.list(session, console.caller, filters, 500, 0)
        rows = view.source_rows(items, status if status == "stale" else None)
        engines = [e.type for e in engine_catalogue()]
        return page(
            request,
            "sources.html",
            rows=rows,
            total=total,
            engines=engines,
            filters={"type": engine or "", "status": status or "", "name": name or ""},
            **_common(console, context),
        )

    return await guarded(request, context, run)


def _form_state(form: dict[str, str]) -> FormState:
    catalogue = {e.type: e for e in engine_catalogue()}
    wanted = form.get("type", "")
    engine = wanted if wanted in catalogue else "postgresql"
    fields = catalogue[engine].fields
    return FormState(
        engine=engine,
        name=form.get("name", ""),
        description=form.get("description", ""),
        interval=form.get("interval", ""),
        use_tunnel=form.get("use_tunnel") == "on",
        fields=view.engine_fields(fields, "c", form),
        tunnel_fields=view.engine_fields(view.tunnel_fields(form), "t", form),
        extra={"engines": list(catalogue.values())},
    )


@router.get("/sources/new", response_class=HTMLResponse)
async def new_source_page(request: Request, context: Context) -> Response:
    """The create form generated from the engine catalogue (the type picks the fields)."""

    async def run(console: cookies.Console) -> Response:
        state = _form_state(dict(request.query_params))
        return page(
            request, "source_form.html", state=state, result=None, **_common(console, context)
        )

    return await guarded(request, context, run)


@router.post("/sources/new", response_class=HTMLResponse)
async def new_source(request: Request, context: Context) -> Response:
    """Test the unsaved form (action=test) or create the source (action=save)."""

    async def run(console: cookies.Console) -> Response:
        form = await cookies.read_form(request)
        state = _form_state(form)
        catalogue = {e.type: e for e in engine_catalogue()}
        body = view.body_from_form(form, catalogue[state.engine].fields, view.tunnel_fields(form))
        result = None
        try:
            if form.get("action") == "test":
                body.setdefault("name", "unsaved")
                unsaved = UnsavedTestRequest.model_validate(
                    {**body, "name": body["name"] or "unsaved", "timeout_seconds": TEST_SECONDS}
                )
                result = await context.tests.test_unsaved(
                    console.caller, unsaved, Deadline.after(TEST_SECONDS)
                )
            else:
                created = await context.data_sources.create(
                    console.caller, view.validate_create(body)
                )
                return redirect(f"/sources/{created.id}")
        except ValidationError as error:
            view.with_errors(state, view.field_errors(error))
        except ServiceError as error:
            if isinstance(error.details, list) and error.details:
                view.with_errors(state, view.field_errors(error.details))
            else:
                state.general_error = error.message
        status = 200 if result is not None or not (state.errors or state.general_error) else 422
        return page(
            request,
            "source_form.html",
            status=status,
            state=state,
            result=result,
            **_common(console, context),
        )

    return await guarded(request, context, run)


async def _detail(
    request: Request, context: Any, console: cookies.Console, source_id: int, result: Any
) -> Response:
    # As the API's db_session: a test's outcome is written just after its answer; wait for it.
    await context.tests.settled()
    async with context.sessions() as session:
        source = await context.data_sources.get(session, console.caller, source_id)
        health = await health_report(session, console.caller, source_id, HealthQuery(limit=100))
    return page(
        request,
        "source_detail.html",
        source=source,
        badge=view.badge(source),
        last_checked=view.ago(source.last_tested_at),
        health=health,
        points=view.chart_points(health.history),
        chart={"width": view.CHART_WIDTH, "height": view.CHART_HEIGHT},
        secrets=sorted(source.secret_fingerprints),
        result=result,
        **_common(console, context),
    )


@router.get("/sources/{source_id:int}", response_class=HTMLResponse)
async def source_page(request: Request, source_id: int, context: Context) -> Response:
    """One source: status, secrets shown as set, health chart and recent checks."""

    async def run(console: cookies.Console) -> Response:
        return await _detail(request, context, console, source_id, None)

    return await guarded(request, context, run)


@router.post("/sources/{source_id:int}/test", response_class=HTMLResponse)
async def test_source(request: Request, source_id: int, context: Context) -> Response:
    """Test the saved source (the spec's endpoint's service) and show the result panel."""

    async def run(console: cookies.Console) -> Response:
        await cookies.read_form(request)
        result = await context.tests.test_saved(
            console.caller,
            source_id,
            TestRequest(timeout_seconds=TEST_SECONDS),
            Deadline.after(TEST_SECONDS),
        )
        return await _detail(request, context, console, source_id, result)

    return await guarded(request, context, run)


@router.post("/sources/{source_id:int}/delete", response_class=HTMLResponse)
async def delete_source(request: Request, source_id: int, context: Context) -> Response:
    """Delete a source (admin and up; the service refuses anyone else)."""

    async def run(console: cookies.Console) -> Response:
        await cookies.read_form(request)
        await context.data_sources.delete(console.caller, source_id)
        return redirect("/sources")

    return await guarded(request, context, run)
