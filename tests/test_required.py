"""The missing-dependency rule (tests/fixtures/required.py): one helper, used everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.required import optional_server, require_binary, unavailable, under_ci

TESTS = Path(__file__).parent
HELPER = TESTS / "fixtures" / "required.py"
# Every way to skip outside the helper: a skip call, a skip marker, importorskip, xfail.
SKIPS = re.compile(r"pytest\.(skip\(|importorskip|mark\.skip|mark\.skipif|mark\.xfail|xfail\()")
CI_READ = re.compile(r"""environ(\.get)?\(?\[?["']CI["']|getenv\(["']CI["']""")


@pytest.mark.parametrize("value", ["true", "TRUE", "True", " true "])
def test_a_missing_dependency_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert under_ci()
    with pytest.raises(pytest.fail.Exception, match="under CI=true: no server"):
        unavailable("no server")
    with pytest.raises(pytest.fail.Exception, match="no-such-binary-rivergen"):
        require_binary("no-such-binary-rivergen")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_a_missing_dependency_skips_on_a_developer_machine(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert not under_ci()
    with pytest.raises(pytest.skip.Exception, match="no server"):
        unavailable("no server")


def test_no_test_skips_or_reads_ci_but_through_the_helper() -> None:
    offenders = [
        f"{path.relative_to(TESTS)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path not in (HELPER, Path(__file__))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SKIPS.search(line) or CI_READ.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize("ci", ["true", "false"])
def test_an_optional_server_skips_even_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.delenv("RIVERGEN_TEST_NO_SUCH_SERVER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="RIVERGEN_TEST_NO_SUCH_SERVER names no server"):
        optional_server("RIVERGEN_TEST_NO_SUCH_SERVER")
    monkeypatch.setenv("RIVERGEN_TEST_NO_SUCH_SERVER", "db.example:1")
    assert optional_server("RIVERGEN_TEST_NO_SUCH_SERVER") == "db.example:1"
