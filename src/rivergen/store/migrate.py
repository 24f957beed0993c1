"""Run Alembic migrations programmatically (used by `rivergen migrate` and at start-up)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's config interpolates "%": a URL with escaped characters (a password, a socket
    # directory as %2F...) must have them doubled to reach the engine unchanged.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_blocking(url: str, revision: str = "head") -> None:
    """Upgrade the store at `url` to `revision` (blocking; not inside a running loop)."""
    command.upgrade(alembic_config(url), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the store behind `engine`, reusing its connection."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))

    def _upgrade(connection: object) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


def upgrade_sync_in_thread(url: str) -> None:
    """Upgrade from synchronous code that may already run inside an event loop."""
    asyncio.run(asyncio.to_thread(upgrade_blocking, url))
