"""Application factory and lifespan: the store, bootstrap, and later the pool and scheduler."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from rivergen import __version__
from rivergen.alerts.router import router as alerts_router
from rivergen.api.body_limit import BodyLimitMiddleware
from rivergen.api.envelope import ErrorEnvelope
from rivergen.api.errors import install_error_handlers
from rivergen.api.middleware import RequestContextMiddleware
from rivergen.api.system import router as system_router
from rivergen.api.text_guard import TextGuardMiddleware
from rivergen.apitokens.router import router as api_tokens_router
from rivergen.audit.router import router as audit_router
from rivergen.console.router import router as console_router
from rivergen.console.static_files import console_static
from rivergen.context import AppContext, build_context
from rivergen.datasources.router import router as data_sources_router
from rivergen.health.router import router as health_router
from rivergen.identity.router import router as auth_router
from rivergen.organizations.invitation_router import router as invitations_router
from rivergen.organizations.router import router as organizations_router
from rivergen.probing.router import router as tests_router
from rivergen.settings import Settings, load_settings
from rivergen.store.migrate import upgrade

log = structlog.get_logger(__name__)
API_PREFIX = "/api/v1"


async def bootstrap_admin(context: AppContext) -> None:
    """On an empty store create the first organization and owner; print a made-up password once."""
    settings = context.settings
    password = settings.admin_password or secrets.token_urlsafe(18)
    created = await context.organizations.bootstrap(
        settings.admin_email, password, settings.admin_organization
    )
    if created:
        log.info("bootstrap_admin_created", email=settings.admin_email)
        if settings.admin_password is None:
            # Printed, not logged: the log pipeline would (rightly) mask it.
            print(
                f"\nRiverGen admin created: {settings.admin_email} / password: {password}\n"
                "This password is shown once; change it or set RIVERGEN_ADMIN_PASSWORD.\n",
                flush=True,
            )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI application; the store is opened and migrated in the lifespan."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = build_context(settings)
        app.state.context = context
        try:
            await upgrade(context.engine)
            await bootstrap_admin(context)
            await context.start()
            yield
        finally:
            await context.close()

    app = FastAPI(
        title="RiverGen data-source service",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    # The last added runs first: request ids and the last-resort 500 wrap everything.
    app.add_middleware(TextGuardMiddleware)
    # Before anything reads a body whole: 413 over 1 MiB.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    app.include_router(system_router)
    for router in domain_routers():
        app.include_router(router, prefix=API_PREFIX)
    # The web console at / (server-rendered, not part of the API's OpenAPI document).
    app.include_router(console_router)
    app.mount("/console-static", console_static(), name="console-static")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operationId: its function's name (list_data_sources).

    Generated clients turn it into their method names; it is unique across the API
    (tests/api/test_generated_client.py checks both).
    """
    return route.name


def domain_routers() -> list[Any]:
    """Every domain's router, mounted under /api/v1."""
    return [
        auth_router,
        organizations_router,
        api_tokens_router,
        invitations_router,
        tests_router,
        data_sources_router,
        health_router,
        audit_router,
        alerts_router,
    ]


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with FastAPI's default 422 schema replaced by our envelope."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorEnvelope"] = ErrorEnvelope.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for defs_name, definition in components["ErrorEnvelope"].pop("$defs", {}).items():
        components.setdefault(defs_name, definition)
    envelope_ref = {"$ref": "#/components/schemas/ErrorEnvelope"}

    def error(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": envelope_ref}},
        }

    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = error("Validation error")
            # Answers the global handlers give whatever the route, declared where they can occur:
            # malformed JSON is 400 on every route that reads a body, and an X-Organization-Id
            # naming an organization the caller is not in is 404 on every caller-scoped route.
            if "requestBody" in operation:
                responses.setdefault("400", error("Bad request (the body is not valid JSON)"))
                responses.setdefault("413", error("Payload too large (a body over 1 MiB)"))
            if any(
                p.get("in") == "header" and str(p.get("name", "")).lower() == "x-organization-id"
                for p in operation.get("parameters", [])
            ):
                responses.setdefault("404", error("Not found (also: an unknown X-Organization-Id)"))
            operation["responses"] = dict(sorted(responses.items()))
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema
