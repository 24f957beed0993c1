"""Settings come from RIVERGEN_* variables; a bad value is one line naming the variable."""

from __future__ import annotations

import os
from ipaddress import ip_network
from pathlib import Path

import pytest

from rivergen.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RIVERGEN_* variable from the outside, and no `.env` file in the working directory."""
    for name in list(os.environ):
        if name.startswith("RIVERGEN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.data_dir == Path("./var")
    assert settings.database_url is None
    assert settings.admin_password is None
    expected = f"sqlite+aiosqlite:///{(Path('./var') / 'rivergen.db').resolve()}"
    assert settings.effective_database_url == expected
    assert settings.effective_file_sources_dir == (Path("./var") / "files").resolve()


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RIVERGEN_PORT", "9123")
    monkeypatch.setenv("RIVERGEN_HOST", "0.0.0.0")
    monkeypatch.setenv("RIVERGEN_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RIVERGEN_ADMIN_PASSWORD", "from-env-123")
    monkeypatch.setenv("RIVERGEN_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")
    monkeypatch.setenv("RIVERGEN_ALLOWED_NETWORKS", " 10.0.0.0/8, 192.168.1.0/24 ,")
    settings = load_settings()
    assert settings.port == 9123
    assert settings.host == "0.0.0.0"
    assert settings.admin_password == "from-env-123"
    assert settings.login_max_failures_per_account == 3
    assert settings.allowed_networks == ["10.0.0.0/8", "192.168.1.0/24"]
    assert settings.allowed_network_objects == [
        ip_network("10.0.0.0/8"),
        ip_network("192.168.1.0/24"),
    ]
    db = (tmp_path / "state" / "rivergen.db").resolve()
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{db}"


def test_a_dot_env_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RIVERGEN_PORT=8765\n")
    assert load_settings().port == 8765


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg://u@127.0.0.1:5432/db", "sqlite+aiosqlite:////tmp/x.db"]
)
def test_supported_database_urls(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("RIVERGEN_DATABASE_URL", url)
    settings = load_settings()
    assert settings.database_url == url
    assert settings.effective_database_url == url


def test_empty_database_url_means_the_embedded_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERGEN_DATABASE_URL", "")
    assert load_settings().effective_database_url.startswith("sqlite+aiosqlite:///")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RIVERGEN_PORT", "abc"),
        ("RIVERGEN_PORT", "0"),
        ("RIVERGEN_PORT", "70000"),
        ("RIVERGEN_DATABASE_URL", "mysql://root@localhost/x"),
        ("RIVERGEN_DATABASE_URL", "postgresql://u@h/db"),
        ("RIVERGEN_LOG_LEVEL", "loud"),
        ("RIVERGEN_ACCESS_TOKEN_TTL_SECONDS", "5"),
        ("RIVERGEN_LOGIN_MAX_FAILURES_PER_ACCOUNT", "0"),
        ("RIVERGEN_ALLOWED_NETWORKS", "10.0.0.0/8,not-a-network"),
        ("RIVERGEN_PROBE_WORKERS", "-1"),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_every_bad_value_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERGEN_PORT", "abc")
    monkeypatch.setenv("RIVERGEN_DATABASE_URL", "mysql://x")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "RIVERGEN_PORT" in message
    assert "RIVERGEN_DATABASE_URL" in message
    assert "\n" not in message


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]
