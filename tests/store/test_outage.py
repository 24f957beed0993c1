"""Which store errors mean "the store cannot be reached" (503), judged on errors that real
PostgreSQL and SQLite stores raise through SQLAlchemy; everything else stays a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from rivergen.store.outage import describe, store_unreachable

pytestmark = pytest.mark.anyio

Statement = Callable[[AsyncConnection], Awaitable[object]]


def pg(database: str = "postgres", user: str = "postgres", port: int = 5432) -> str:
    return f"postgresql+psycopg://{user}@127.0.0.1:{port}/{database}"


@pytest.fixture
async def engines() -> AsyncIterator[Callable[..., AsyncEngine]]:
    """Engines made by the test, disposed after it."""
    made: list[AsyncEngine] = []

    def make(url: str, **options: object) -> AsyncEngine:
        engine = create_async_engine(url, **options)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        await engine.dispose()


def sql(statement: str) -> Statement:
    async def run(connection: AsyncConnection) -> object:
        return await connection.execute(text(statement))

    return run


async def raised(engine: AsyncEngine, statement: Statement = sql("SELECT 1")) -> BaseException:
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is what is under test
        async with engine.connect() as connection:
            await statement(connection)
    return info.value


@pytest.mark.usefixtures("local_postgres")
async def test_a_refused_connection_is_an_outage(
    engines: Callable[..., AsyncEngine], closed_port: int
) -> None:
    error = await raised(engines(pg(port=closed_port)))
    assert isinstance(error, sa_exc.OperationalError)
    assert store_unreachable(error)
    assert "Connection refused" in describe(error)


@pytest.mark.usefixtures("local_postgres")
async def test_a_connection_the_server_ends_is_an_outage(
    engines: Callable[..., AsyncEngine],
) -> None:
    engine = engines(pg())

    async def killed_mid_session(connection: AsyncConnection) -> object:
        pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()
        async with engine.connect() as other:
            await other.execute(text(f"SELECT pg_terminate_backend({pid})"))
        return await connection.execute(text("SELECT 1"))

    error = await raised(engine, killed_mid_session)
    assert isinstance(error, sa_exc.OperationalError)
    assert store_unreachable(error)


@pytest.mark.usefixtures("local_postgres")
async def test_no_pooled_connection_in_time_is_an_outage(
    engines: Callable[..., AsyncEngine],
) -> None:
    engine = engines(pg(), pool_size=1, max_overflow=0, pool_timeout=0.2)
    async with engine.connect():  # holds the only connection
        error = await raised(engine)
    assert isinstance(error, sa_exc.TimeoutError)
    assert store_unreachable(error)


@pytest.mark.usefixtures("local_postgres")
@pytest.mark.parametrize(
    ("url", "statement", "kind"),
    [
        pytest.param(pg(user="rg_no_such_role"), "SELECT 1", sa_exc.OperationalError, id="role"),
        pytest.param(
            pg(database="rg_no_such_database"), "SELECT 1", sa_exc.OperationalError, id="database"
        ),
        pytest.param(pg(), "SELEC 1", sa_exc.ProgrammingError, id="syntax"),
        pytest.param(pg(), "SELECT 1 / 0", sa_exc.DataError, id="division-by-zero"),
        pytest.param(
            pg(),
            "CREATE TEMP TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (1)",
            sa_exc.IntegrityError,
            id="unique-violation",
        ),
        pytest.param(
            pg(),
            "SET statement_timeout = 10; SELECT pg_sleep(1)",
            sa_exc.OperationalError,  # QueryCanceled: an OperationalError with a SQLSTATE
            id="statement-timeout",
        ),
    ],
)
async def test_other_postgresql_errors_are_not_an_outage(
    engines: Callable[..., AsyncEngine], url: str, statement: str, kind: type[Exception]
) -> None:
    error = await raised(engines(url), sql(statement))
    assert type(error) is kind
    assert not store_unreachable(error)


async def test_sqlite_errors_are_not_an_outage(
    engines: Callable[..., AsyncEngine], tmp_path: Path
) -> None:
    engine = engines(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    error = await raised(engine, sql("SELECT * FROM no_such_table"))
    assert isinstance(error, sa_exc.OperationalError)
    assert not store_unreachable(error)


def test_errors_from_elsewhere_are_not_an_outage() -> None:
    assert not store_unreachable(ConnectionRefusedError("a data source, not the store"))
    assert not store_unreachable(RuntimeError("a bug"))
