"""Running the `rivergen` command in process against a live server."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner, Result

from rivergen.cli import app
from tests.fixtures.live import LiveServer


def run(server: LiveServer, token: str, *args: str, **env: str) -> Result:
    """`rivergen ARGS` with RIVERGEN_URL and RIVERGEN_TOKEN pointing at `server`."""
    runner = CliRunner()
    environment = {"RIVERGEN_URL": server.base_url, "RIVERGEN_TOKEN": token, **env}
    return runner.invoke(app, list(args), env=environment, catch_exceptions=False)


def run_json(server: LiveServer, token: str, *args: str, **env: str) -> Any:
    """The JSON output of `rivergen ARGS --json`, after checking it exited 0."""
    result = run(server, token, *args, "--json", **env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
