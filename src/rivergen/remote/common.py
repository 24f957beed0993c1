"""What every remote command shares: options, the client, exit codes, tables and JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import BaseModel

if TYPE_CHECKING:
    # Imported when a remote command runs: the client pulls in the API's schemas (and through
    # them asyncssh), a second of start-up every local command need not pay.
    from rivergen.client import Client, RiverGenError

# Exit codes (README, Command line): 1 is kept for "a test failed".
OK, TEST_FAILED, USAGE, AUTH, NOT_FOUND, FAILED = 0, 1, 2, 3, 4, 5

Url = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="RIVERGEN_URL", help="Server URL (RIVERGEN_URL)", show_default=False
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
Timeout = Annotated[
    float, typer.Option("--timeout", min=1, max=600, help="Seconds to wait for an answer")
]
Organization = Annotated[
    int | None,
    typer.Option(
        "--organization", envvar="RIVERGEN_ORGANIZATION_ID", help="Organization id to act on"
    ),
]
T = TypeVar("T")


def fail(message: str, code: int) -> typer.Exit:
    """Print `rivergen: message` on stderr; the exit to raise."""
    typer.echo(f"rivergen: {message}", err=True)
    return typer.Exit(code)


def exit_code_of(error: RiverGenError) -> int:
    """The documented exit code of a failed request."""
    from rivergen.client import errors as client_errors

    if isinstance(error, client_errors.Unauthorized | client_errors.Forbidden):
        return AUTH
    if isinstance(error, client_errors.NotFound):
        return NOT_FOUND
    if isinstance(error, client_errors.InvalidRequest | client_errors.Conflict):
        return USAGE
    return FAILED


def describe(error: RiverGenError) -> str:
    """One line for a failed request, with the fields a validation error names."""
    text = str(error)
    if isinstance(error.details, list):
        fields = [
            f"{d.get('field', '?')}: {d.get('message', '')}"
            for d in error.details
            if isinstance(d, dict)
        ]
        if fields:
            text += " (" + "; ".join(fields) + ")"
    return text


@contextmanager
def remote(url: str | None, timeout: float, organization: int | None = None) -> Iterator[Client]:
    """A client for RIVERGEN_URL with RIVERGEN_TOKEN; any failed request exits with its code."""
    token = os.environ.get("RIVERGEN_TOKEN", "").strip()
    if not url:
        raise fail("no server: pass --url or set RIVERGEN_URL", USAGE)
    if not token:
        # Only from the environment: a token on the command line is visible to every local user.
        raise fail(
            "no token: set RIVERGEN_TOKEN (a service token rgt_... or an access token)", AUTH
        )
    if not url.startswith(("http://", "https://")):
        raise fail("--url must start with http:// or https://", USAGE)
    from rivergen.client import Client, RiverGenError

    try:
        with Client(url, token, timeout=timeout, organization_id=organization) as client:
            yield client
    except RiverGenError as error:
        raise fail(describe(error), exit_code_of(error)) from None


def resolve(client: Client, reference: str) -> int:
    """A data source id from an id or an exact name."""
    from rivergen.client import errors as client_errors

    if reference.isdigit():
        return int(reference)
    found = client.find_source(reference)
    if found is None:
        raise client_errors.NotFound(f"No data source named {reference!r}", code="NOT_FOUND")
    return found.id


def dump(value: Any) -> Any:
    """JSON-ready data from models, lists of models and plain values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    """Print `value` as indented JSON on stdout."""
    typer.echo(json.dumps(dump(value), indent=2, sort_keys=False))


def cell(value: Any) -> str:
    """A table cell: empty for None, ISO seconds for times, the text otherwise."""
    if value is None:
        return "-"
    if hasattr(value, "isoformat"):
        return str(value.isoformat(timespec="seconds"))
    return str(value)


def print_table(
    rows: Sequence[T], columns: Sequence[tuple[str, Callable[[T], Any]]], empty: str
) -> None:
    """Print rows as an aligned table with a header, or `empty` when there are none."""
    if not rows:
        typer.echo(empty)
        return
    cells = [[cell(get(row)) for _, get in columns] for row in rows]
    headers = [name for name, _ in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    for line in [headers, *cells]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    sys.stdout.flush()
