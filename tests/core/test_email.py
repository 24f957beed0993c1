"""Email syntax without the reserved-name list or DNS: what every email field accepts."""

from __future__ import annotations

import pytest

from rivergen.core.email import normalize_email
from rivergen.settings import Settings


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("admin@rivergen.local", "admin@rivergen.local"),
        ("ops@corp.internal", "ops@corp.internal"),
        ("dba@intranet.corp", "dba@intranet.corp"),
        ("QA@Lab.Test", "qa@lab.test"),
        ("root@box.localhost", "root@box.localhost"),
        ("first.last+tag@example.com", "first.last+tag@example.com"),
    ],
)
def test_internal_and_reserved_domains_are_ordinary(given: str, stored: str) -> None:
    assert normalize_email(given) == stored


@pytest.mark.parametrize(
    "bad",
    ["", "plain", "a@", "@corp.internal", "a@b", "a b@corp.internal", " a@corp.internal", "a@@b.c"],
)
def test_syntax_is_still_checked(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid email address"):
        normalize_email(bad)


def test_the_bootstrap_owner_address_setting_uses_the_same_rule() -> None:
    assert Settings(admin_email="Admin@Corp.Internal").admin_email == "admin@corp.internal"
    with pytest.raises(ValueError, match="admin_email"):
        Settings(admin_email="not-an-address")
