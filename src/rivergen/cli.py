"""The `rivergen` command: serve, migrate, create-user, the operational and the remote commands."""

from __future__ import annotations

import asyncio
import getpass
from typing import Annotated

import typer

from rivergen.identity.models import Role
from rivergen.logging import configure_logging
from rivergen.remote.apply_cmd import register as register_declarative
from rivergen.remote.commands import register as register_remote
from rivergen.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="RiverGen data-source service.", no_args_is_help=True, add_completion=False)


def settings_or_exit() -> Settings:
    """Load settings, or print the one-line reason and exit with status 2."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"rivergen: invalid setting: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_json)
    return settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (RIVERGEN_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (RIVERGEN_PORT)")] = None,
) -> None:
    """Migrate the store and serve the HTTP API."""
    import uvicorn

    from rivergen.app import create_app

    settings = settings_or_exit()
    bind_host, bind_port = host or settings.host, port or settings.port
    # `make run` ends here: say where the web console answers.
    typer.echo(f"RiverGen console: http://{bind_host}:{bind_port}/")
    uvicorn.run(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: any local
        # client could then pick the address the throttle and the audit log record.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
    )


@app.command()
def migrate() -> None:
    """Upgrade the metadata store to the newest schema."""
    from rivergen.security.keyfile import ensure_private_dir
    from rivergen.store.migrate import upgrade_blocking

    settings = settings_or_exit()
    ensure_private_dir(settings.data_dir, tighten=True)
    upgrade_blocking(settings.effective_database_url)
    typer.echo("rivergen: the store is up to date")


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Argument(help="The user's email")],
    organization: Annotated[
        str | None, typer.Option(help="Organization to add the user to (created if missing)")
    ] = None,
    role: Annotated[Role, typer.Option(help="Role in the organization")] = Role.MEMBER,
    password: Annotated[
        str | None,
        typer.Option(help="Password; asked for when omitted", envvar="RIVERGEN_NEW_USER_PASSWORD"),
    ] = None,
) -> None:
    """Create a user, optionally with a role in an organization."""
    from rivergen.context import build_context
    from rivergen.core.email import normalize_email
    from rivergen.core.errors import ServiceError
    from rivergen.store.migrate import upgrade

    try:
        email = normalize_email(email)
    except ValueError as exc:
        typer.echo(f"rivergen: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = settings_or_exit()
    secret = password or getpass.getpass("Password: ")
    if len(secret) < 8:
        typer.echo("rivergen: the password must have at least 8 characters", err=True)
        raise typer.Exit(2)

    async def run() -> int:
        context = build_context(settings)
        try:
            await upgrade(context.engine)
            user = await context.organizations.create_user(email, secret, organization, role)
            return user.id
        finally:
            await context.close()

    try:
        user_id = asyncio.run(run())
    except ServiceError as exc:
        typer.echo(f"rivergen: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"rivergen: created user {email} (id {user_id})")


@app.command("rotate-keys")
def rotate_keys(
    generate: Annotated[
        bool,
        typer.Option(
            "--generate", help="Only print a new key to put first in RIVERGEN_SECRET_KEYS"
        ),
    ] = False,
) -> None:
    """Re-encrypt every stored secret with the newest key of RIVERGEN_SECRET_KEYS.

    Rows that no configured key decrypts are skipped and listed; the exit status is then 1.
    """
    from rivergen.context import build_context
    from rivergen.datasources.service import KeyRotation
    from rivergen.security.crypto import generate_key
    from rivergen.store.migrate import upgrade

    if generate:
        typer.echo(generate_key())
        return
    settings = settings_or_exit()

    async def run() -> tuple[KeyRotation, tuple[int, list[int]]]:
        context = build_context(settings)
        try:
            await upgrade(context.engine)
            return await context.data_sources.rotate_keys(), await context.channels.rotate_keys()
        finally:
            await context.close()

    report, (channels_rotated, channels_unreadable) = asyncio.run(run())
    typer.echo(
        f"rivergen: {report.rotated} of {report.seen} data sources re-encrypted with the newest key"
    )
    if report.unreadable:
        ids = ", ".join(str(i) for i in report.unreadable)
        typer.echo(
            f"rivergen: {len(report.unreadable)} skipped, their secrets could not be decrypted: "
            f"{ids} (restore the old key, or send their secrets again)",
            err=True,
        )
    typer.echo(f"rivergen: {channels_rotated} notification channels re-encrypted")
    if channels_unreadable:
        ids = ", ".join(str(i) for i in channels_unreadable)
        typer.echo(
            f"rivergen: notification channels whose secrets could not be decrypted: {ids} "
            "(restore the old key, or recreate them)",
            err=True,
        )
    if report.unreadable or channels_unreadable:
        raise typer.Exit(1)


@app.command("test-source")
def test_source(
    data_source_id: Annotated[int, typer.Argument(help="The data source's id")],
    query: Annotated[str | None, typer.Option("--query", help="Test query (read-only)")] = None,
    timeout: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=300,
            help="Timeout in seconds (default RIVERGEN_DEFAULT_TEST_TIMEOUT_SECONDS)",
        ),
    ] = None,
) -> None:
    """Test a saved data source and print the result as JSON (exit 1 when it fails)."""
    import json

    from rivergen.context import build_context
    from rivergen.probing.service import to_out
    from rivergen.store.migrate import upgrade

    settings = settings_or_exit()

    async def run() -> dict[str, object] | None:
        context = build_context(settings)
        try:
            await upgrade(context.engine)
            seconds = timeout or settings.default_test_timeout_seconds
            result = await context.tests.test_by_id(data_source_id, query, seconds, "cli")
            if result is None:
                return None
            return to_out(data_source_id, result).model_dump(mode="json")
        finally:
            await context.close()

    data = asyncio.run(run())
    if data is None:
        typer.echo(f"rivergen: data source {data_source_id} not found", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(data, indent=2))
    if not data["connection_successful"]:
        raise typer.Exit(1)


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Checks run at once (default RIVERGEN_SCHEDULER_MAX_CONCURRENT)", min=1),
    ] = None,
    namespace: Annotated[
        str, typer.Option(help="Prefix of this deployment's Redis keys (same for every process)")
    ] = "rivergen",
    metrics_port: Annotated[
        int, typer.Option(help="Serve Prometheus metrics on this port (0: off)", min=0)
    ] = 0,
    metrics_host: Annotated[str, typer.Option(help="Bind address of the metrics")] = "127.0.0.1",
) -> None:
    """Run scheduled health checks from the Celery queue (RIVERGEN_BROKER_URL)."""
    from rivergen.health.tasks import run_worker

    settings = settings_or_exit()
    run_worker(
        settings,
        concurrency=concurrency or settings.scheduler_max_concurrent,
        namespace=namespace,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )


@app.command()
def beat(
    namespace: Annotated[
        str, typer.Option(help="Prefix of this deployment's Redis keys (same for every process)")
    ] = "rivergen",
) -> None:
    """Send the health-check schedule to the workers; one beat is active at a time (Redis lock)."""
    from rivergen.health.tasks import run_beat

    settings = settings_or_exit()
    run_beat(settings, namespace=namespace)


# Remote commands (HTTP only): their own modules, so that this one stays about the local server.
register_remote(app)
register_declarative(app)


def main() -> None:
    """Entry point of the `rivergen` command."""
    app(prog_name="rivergen")


if __name__ == "__main__":
    main()
