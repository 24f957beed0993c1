"""`rivergen sources|health|audit|tokens`: the API over HTTP, as tables or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from rivergen.remote.common import (
    OK,
    TEST_FAILED,
    USAGE,
    Json,
    Organization,
    Timeout,
    Url,
    fail,
    print_json,
    print_table,
    remote,
    resolve,
)
from rivergen.remote.files import ConfigFileError, expand, read_document

if TYPE_CHECKING:
    from rivergen.client import Client
    from rivergen.datasources.schemas import DataSourceOut
    from rivergen.probing.schemas import TestResultOut

sources = typer.Typer(help="Data sources on a remote server (RIVERGEN_URL, RIVERGEN_TOKEN).")
tokens = typer.Typer(help="Service tokens of the organization (admin and up).")
Reference = Annotated[str, typer.Argument(help="Data source id or exact name")]
BodyFile = Annotated[
    str, typer.Option("--file", "-f", help="YAML or JSON body (- for stdin); ${VAR} expanded")
]

SOURCE_COLUMNS: list[tuple[str, Any]] = [
    ("ID", lambda s: s.id),
    ("NAME", lambda s: s.name),
    ("TYPE", lambda s: s.type),
    ("STATUS", lambda s: s.status),
    ("LAST TESTED", lambda s: s.last_tested_at),
    ("LAST ERROR", lambda s: s.last_error_code),
]


def _body(path: str) -> dict[str, Any]:
    try:
        document = expand(read_document(path))
    except ConfigFileError as exc:
        raise fail(str(exc), USAGE) from None
    if not isinstance(document, dict):
        raise fail(f"{path} must hold one object (a data source)", USAGE)
    return document


def _show_source(source: DataSourceOut, as_json: bool) -> None:
    if as_json:
        print_json(source)
        return
    print_table([source], SOURCE_COLUMNS, "")


@sources.command("list")
def list_sources(
    url: Url = None,
    as_json: Json = False,
    timeout: Timeout = 30,
    organization: Organization = None,
    type: Annotated[str | None, typer.Option(help="Only this engine")] = None,
    status: Annotated[str | None, typer.Option(help="pending, active or failed")] = None,
) -> None:
    """List the organization's data sources."""
    with remote(url, timeout, organization) as client:
        found = client.list_sources(type=type, status=status)
    if as_json:
        print_json(found)
    else:
        print_table(found, SOURCE_COLUMNS, "No data sources.")


@sources.command("get")
def get_source(
    reference: Reference,
    url: Url = None,
    as_json: Json = False,
    timeout: Timeout = 30,
    organization: Organization = None,
) -> None:
    """Show one data source (secrets masked)."""
    with remote(url, timeout, organization) as client:
        source = client.get_source(resolve(client, reference))
    if as_json:
        print_json(source)
    else:
        for key, value in source.model_dump(mode="json").items():
            typer.echo(f"{key}: {value}")


@sources.command("create")
def create_source(
    file: BodyFile,
    url: Url = None,
    as_json: Json = False,
    timeout: Timeout = 30,
    organization: Organization = None,
) -> None:
    """Register a data source from a file (admin and up)."""
    body = _body(file)
    with remote(url, timeout, organization) as client:
        source = client.create_source(body)
    _show_source(source, as_json)


@sources.command("update")
def update_source(
    reference: Reference,
    file: BodyFile,
    url: Url = None,
    as_json: Json = False,
    timeout: Timeout = 30,
    organization: Organization = None,
) -> None:
    """Change a data source with the fields of a file (admin and up)."""
    body = _body(file)
    with remote(url, timeout, organization) as client:
        source = client.update_source(resolve(client, reference), body)
    _show_source(source, as_json)


@sources.command("delete")
def delete_source(
    reference: Reference,
    url: Url = None,
    timeout: Timeout = 30,
    organization: Organization = None,
) -> None:
    """Delete a data source and its history (admin and up)."""
    with remote(url, timeout, organization) as client:
        data_source_id = resolve(client, reference)
        client.delete_source(data_source_id)
    typer.echo(f"Deleted data source {data_source_id}.")


def _test_row(name: str, result: TestResultOut) -> dict[str, Any]:
    return {
        "id": result.data_source_id,
        "name": name,
        "ok": result.connection_successful,
        "ms": result.response_time_ms,
        "error": result.error_code,
        "message": result.error_message,
    }


@sources.command("test")
def test_sources(
    references: Annotated[
        list[str] | None, typer.Argument(help="Ids or names (default: with --all, every one)")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Test every data source")] = False,
    test_timeout: Annotated[
        int | None, typer.Option("--test-timeout", min=1, max=300, help="Each test's deadline")
    ] = None,
    url: Url = None,
    as_json: Json = False,
    timeout: Timeout = 30,
    organization: Organization = None,
) -> None:
    """Test data sources; exit 1 when any connection fails (a deploy gate for CI)."""
    if not references and not every:
        raise fail("name data sources to test, or pass --all", USAGE)
    with remote(url, timeout, organization) as client:
        targets = _targets(client, references or [], every)
        results = [
            (name, client.test_source(i, timeout_seconds=test_timeout)) for i, name in targets
        ]
    rows = [_test_row(name, result) for name, result in results]
    if as_json:
        print_json(
            [{**row, "result": result} for row, (_, result) in zip(rows, results, strict=True)]
        )
    else:
        print_table(
            rows,
            [
                ("ID", lambda r: r["id"]),
                ("NAME", lambda r: r["name"]),
                ("RESULT", lambda r: "ok" if r["ok"] else "FAILED"),
                ("MS", lambda r: r["ms"]),
                ("ERROR", lambda r: r["error"]),
                ("MESSAGE", lambda r: r["message"]),
            ],
            "No data sources to test.",
        )
    raise typer.Exit(OK if all(r["ok"] for r in rows) else TEST_FAILED)


def _targets(client: Client, references: list[str], every: bool) -> list[tuple[int, str]]:
    if every:
        return [(s.id, s.name) for s in client.list_sources()]
    out = []
    for reference in references:
        data_source_id = resolve(client, reference)
        out.append((data_source_id, client.get_source(data_source_id).name))
    return out


def health(
    reference: Reference,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Records to show")] = 20,
    url: Url = None,
    as_json: Json = False,
    timeout: Timeout = 30,
    organization: Organization = None,
) -> None:
    """Show a data source's health summary and latest checks."""
    with remote(url, timeout, organization) as client:
        found = client.health(resolve(client, reference), limit=limit)
    if as_json:
        print_json(found)
        return
    summary = found.summary
    typer.echo(
        f"data source {found.data_source_id}: {found.status}, {summary.checks} checks, "
        f"uptime {summary.uptime_percent if summary.uptime_percent is not None else '-'}%, "
        f"{summary.consecutive_failures} consecutive failures"
    )
    print_table(
        found.history,
        [
            ("TESTED AT", lambda r: r.tested_at),
            ("OK", lambda r: "yes" if r.connection_successful else "no"),
            ("MS", lambda r: r.response_time_ms),
            ("ERROR", lambda r: r.error_code),
            ("BY", lambda r: r.triggered_by),
        ],
        "No checks yet.",
    )


def audit(
    limit: Annotated[int, typer.Option(min=1, max=500, help="Events to show")] = 50,
    action: Annotated[str | None, typer.Option(help="Only this action")] = None,
    url: Url = None,
    as_json: Json = False,
    timeout: Timeout = 30,
    organization: Organization = None,
) -> None:
    """Show the organization's newest audit events (admin and up)."""
    with remote(url, timeout, organization) as client:
        events = client.audit(limit=limit, action=action)
    if as_json:
        print_json(events)
        return
    print_table(
        events,
        [
            ("TIME", lambda e: e.created_at),
            ("ACTION", lambda e: e.action),
            ("OUTCOME", lambda e: e.outcome),
            ("USER", lambda e: e.actor_user_id),
            ("TOKEN", lambda e: e.actor_token_id),
            ("TARGET", lambda e: f"{e.target_type}:{e.target_id}" if e.target_type else None),
        ],
        "No audit events.",
    )


@tokens.callback(invoke_without_command=True)
def list_tokens(
    context: typer.Context,
    url: Url = None,
    as_json: Json = False,
    timeout: Timeout = 30,
    organization: Organization = None,
) -> None:
    """List the organization's service tokens (never the tokens themselves)."""
    if context.invoked_subcommand is not None:
        return
    with remote(url, timeout, organization) as client:
        found = client.list_tokens(organization or client.organization_id())
    if as_json:
        print_json(found)
        return
    print_table(
        found,
        [
            ("ID", lambda t: t.id),
            ("NAME", lambda t: t.name),
            ("ROLE", lambda t: t.role.value),
            ("EXPIRES", lambda t: t.expires_at),
            ("LAST USED", lambda t: t.last_used_at),
        ],
        "No service tokens.",
    )


@tokens.command("revoke")
def revoke_token(
    token_id: Annotated[int, typer.Argument(help="The token's id (from `rivergen tokens`)")],
    url: Url = None,
    timeout: Timeout = 30,
    organization: Organization = None,
) -> None:
    """Revoke a service token."""
    with remote(url, timeout, organization) as client:
        client.revoke_token(organization or client.organization_id(), token_id)
    typer.echo(f"Revoked service token {token_id}.")


def register(app: typer.Typer) -> None:
    """Add the remote commands to the `rivergen` command."""
    app.add_typer(sources, name="sources")
    app.add_typer(tokens, name="tokens")
    app.command("health")(health)
    app.command("audit")(audit)
