"""The web console in a real browser against a real server and a real PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fixtures.app import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.fixtures.browser import sign_in_page
from tests.fixtures.live import USER_PASSWORD, LiveServer
from tests.fixtures.servers import Server, free_port

pytestmark = pytest.mark.timeout(120)
# Set to docs/ to refresh the README's screenshots; otherwise they go to a temporary folder.
SHOTS = os.environ.get("RIVERGEN_TEST_SCREENSHOTS")


def _shot(target: Any, tmp_path: Path, name: str, **options: Any) -> None:
    """Screenshot a page or element; the PNG must have been written (checked by size)."""
    path = Path(SHOTS or tmp_path) / name
    target.screenshot(path=str(path), **options)
    assert path.stat().st_size > 1000


@pytest.fixture(scope="module")
def owner_page(browser: Any, live_server: LiveServer) -> Any:
    """The bootstrap owner signed in; every request the page makes is recorded."""
    page = sign_in_page(browser, live_server.base_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    return page


def _conn(page: Any, label: str) -> Any:
    """An input of the form's Connection section by the start of its label."""
    return page.get_by_role("group", name="Connection").get_by_label(label)


def _create_through_form(page: Any, name: str, port: int) -> None:
    page.goto("/sources/new?type=postgresql")
    page.get_by_label("Name (required)", exact=True).fill(name)
    _conn(page, "Host (required)").fill("127.0.0.1")
    _conn(page, "Port").fill(str(port))
    _conn(page, "Database").fill("postgres")
    _conn(page, "Username").fill("postgres")
    _conn(page, "Password").fill("any-password")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/sources/*")


def _api_sources(live_server: LiveServer) -> list[dict[str, Any]]:
    with live_server.client() as client:
        listed = client.get("/api/v1/data-sources", headers=live_server.headers())
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["data"]["items"]
    return items


def test_create_through_the_form_then_test_it(
    owner_page: Any, live_server: LiveServer, local_postgres: Server
) -> None:
    _create_through_form(owner_page, "form-made", local_postgres.port)
    made = [s for s in _api_sources(live_server) if s["name"] == "form-made"]
    assert len(made) == 1
    assert made[0]["type"] == "postgresql"
    assert made[0]["connection"]["password"] == "********"
    assert "any-password" not in owner_page.content()
    owner_page.get_by_role("button", name="Test connection").click()
    owner_page.locator("#result-status").wait_for()
    assert "success" in owner_page.locator("#result-status").inner_text()
    assert "PostgreSQL" in owner_page.locator("#result-version").inner_text()
    assert owner_page.locator("#phases tbody tr").count() >= 2
    assert owner_page.locator("#badge").inner_text() == "active"


def test_closed_port_shows_connection_error_and_hint(owner_page: Any, tmp_path: Path) -> None:
    _create_through_form(owner_page, "closed-port", free_port())
    owner_page.get_by_role("button", name="Test connection").click()
    owner_page.locator("#result-code").wait_for()
    assert owner_page.locator("#result-code").inner_text() == "CONNECTION_ERROR"
    assert owner_page.locator("#result-hint").inner_text().startswith("Hint:")
    _shot(owner_page.locator("#result"), tmp_path, "console-failed-test.png")


def test_test_before_save_keeps_nothing(
    owner_page: Any, live_server: LiveServer, local_postgres: Server
) -> None:
    owner_page.goto("/sources/new?type=postgresql")
    owner_page.get_by_label("Name (required)", exact=True).fill("never-saved")
    _conn(owner_page, "Host (required)").fill("127.0.0.1")
    _conn(owner_page, "Port").fill(str(local_postgres.port))
    _conn(owner_page, "Username").fill("postgres")
    owner_page.get_by_role("button", name="Test without saving").click()
    owner_page.locator("#result-status").wait_for()
    assert "success" in owner_page.locator("#result-status").inner_text()
    # The form keeps what was typed, and nothing was stored.
    assert owner_page.get_by_label("Name (required)", exact=True).input_value() == "never-saved"
    assert not [s for s in _api_sources(live_server) if s["name"] == "never-saved"]


def test_validation_errors_show_on_their_field(owner_page: Any) -> None:
    owner_page.goto("/sources/new?type=postgresql")
    owner_page.get_by_label("Name (required)", exact=True).fill("bad-port")
    _conn(owner_page, "Host (required)").fill("127.0.0.1")
    _conn(owner_page, "Port").fill("99999")
    owner_page.get_by_role("button", name="Save").click()
    note = owner_page.locator("#f-c-port-note .field-error")
    note.wait_for()
    assert "65535" in note.inner_text()
    assert _conn(owner_page, "Port").get_attribute("aria-invalid") == "true"


def test_list_shows_badges_and_filters(owner_page: Any, tmp_path: Path) -> None:
    owner_page.goto("/sources")
    rows = owner_page.locator("#sources tbody tr")
    assert rows.filter(has_text="form-made").locator(".badge").inner_text() == "active"
    assert rows.filter(has_text="closed-port").locator(".badge").inner_text() == "failed"
    assert "CONNECTION_ERROR" in rows.filter(has_text="closed-port").inner_text()
    owner_page.get_by_label("Status").select_option("failed")
    owner_page.get_by_role("button", name="Filter").click()
    owner_page.wait_for_url("**status=failed**")
    names = owner_page.locator("#sources tbody tr td:first-child").all_inner_texts()
    assert "closed-port" in names
    assert "form-made" not in names
    owner_page.set_viewport_size({"width": 375, "height": 700})
    owner_page.goto("/sources")
    _shot(owner_page, tmp_path, "console-sources.png")
    owner_page.set_viewport_size({"width": 1000, "height": 700})


def test_chart_draws_the_points_the_api_returns(
    owner_page: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    source = next(s for s in _api_sources(live_server) if s["name"] == "form-made")
    for _ in range(2):
        with live_server.client() as client:
            tested = client.post(
                f"/api/v1/data-sources/{source['id']}/test", headers=live_server.headers()
            )
        assert tested.status_code == 200, tested.text
    with live_server.client() as client:
        health = client.get(
            f"/api/v1/data-sources/{source['id']}/health?limit=100", headers=live_server.headers()
        ).json()["data"]
    owner_page.goto(f"/sources/{source['id']}")
    drawn = owner_page.locator("#chart circle.point")
    expected = [r["response_time_ms"] or 0.0 for r in reversed(health["history"])]
    assert len(expected) >= 3
    assert [float(v) for v in drawn.evaluate_all("els => els.map(e => e.dataset.ms)")] == expected
    assert owner_page.locator("#history tbody tr").count() == len(expected)
    _shot(owner_page, tmp_path, "console-detail.png", full_page=True)


def test_viewer_sees_no_edit_or_delete_control(browser: Any, live_server: LiveServer) -> None:
    _, _token = live_server.user_token("viewer")
    with live_server.client() as client:
        members = client.get(
            f"/api/v1/organizations/{live_server.organization_id}/members",
            headers=live_server.headers(),
        ).json()["data"]
    items = members["items"] if isinstance(members, dict) else members
    viewer_email = next(m["email"] for m in items if m["role"] == "viewer")
    page = sign_in_page(browser, live_server.base_url, viewer_email, USER_PASSWORD)
    source = _api_sources(live_server)[0]
    assert page.locator("#sources tbody tr").count() >= 1
    assert page.locator("#new-source").count() == 0
    page.goto(f"/sources/{source['id']}")
    assert page.locator("#delete").count() == 0
    assert page.get_by_role("button", name="Test connection").count() == 1
    # The server refuses anyway: a viewer's own form post (with a valid CSRF token).
    csrf = page.locator("input[name=csrf]").first.input_value()
    answer = page.request.post(
        f"/sources/{source['id']}/delete", form={"csrf": csrf}, max_redirects=0
    )
    assert answer.status == 403
    assert [s for s in _api_sources(live_server) if s["id"] == source["id"]]
    page.context.close()


def test_every_request_goes_to_the_service(owner_page: Any, live_server: LiveServer) -> None:
    own = urlsplit(live_server.base_url).netloc
    assert owner_page.requested, "the page made no request at all"
    outside = [u for u in owner_page.requested if urlsplit(u).netloc != own]
    assert outside == []


def test_axe_finds_no_serious_violation(owner_page: Any, live_server: LiveServer) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    source = _api_sources(live_server)[0]
    for path in ("/sources", "/sources/new", f"/sources/{source['id']}"):
        owner_page.goto(path)
        results = axe.run(owner_page)
        serious = [
            v["id"]
            for v in results.response["violations"]
            if v.get("impact") in {"serious", "critical"}
        ]
        assert serious == [], (path, serious)
