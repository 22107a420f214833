"""The store in PostgreSQL, for several bot processes on several hosts.

psycopg 3 with an asyncio connection pool; `DATABASE_URL` is read as libpq reads it (so
`PG*` variables, `sslmode` and `.pgpass` work as in psql). Statements run in autocommit
unless a write needs a transaction; a write returns only after its commit.

Fails closed: a read or write that does not finish within its timeout (the server is
down, the network is cut) raises StoreUnavailable; the pool checks a connection before
lending it and keeps trying to reconnect in the background, so the bot recovers by itself
when the server is back.

The schema is migrated at start under a transaction-level advisory lock, so processes
starting together migrate once; a schema newer than this code is refused.
"""

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.config import redact_url
from bot.store import StoreError, StoreUnavailable, sql
from bot.store.sql import SqlStore, Statement

log = logging.getLogger("lookback")

MIGRATIONS = sql.POSTGRES_MIGRATIONS
SCHEMA_VERSION = sql.SCHEMA_VERSION
# Arbitrary, fixed keys for pg_advisory_*lock: one for migrations, one for identify.
MIGRATION_LOCK = 0x4C6F6F6B4261636B  # "LookBack"
CONNECT_TIMEOUT_S = 5.0  # at start: a server that cannot be reached is a configuration error
READ_TIMEOUT_S = 1.0  # an ask waits this long for a member's setting, then fails closed
WRITE_TIMEOUT_S = 5.0  # a /spoilers write (acknowledged first, so the member waits calmly)
POOL_MAX = 8


def _sql(query: str) -> str:
    """The shared statements use SQLite's `?`; psycopg wants `%s`."""
    return query.replace("?", "%s")


class PostgresStore(SqlStore):
    def __init__(self, url: str, pool: AsyncConnectionPool) -> None:
        self.url = url
        self.name = redact_url(url)
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> "PostgresStore":
        """Connect, migrate, and return the store; StoreError says what is wrong."""
        pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": int(CONNECT_TIMEOUT_S)},
            check=AsyncConnectionPool.check_connection,
            # Keep trying (with backoff) through a long outage, not just a few seconds.
            reconnect_timeout=24 * 3600,
            name="lookback",
        )
        store = cls(url, pool)
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            await store._migrate()
        except (PoolTimeout, psycopg.Error) as exc:
            await pool.close()
            if isinstance(exc, PoolTimeout):  # the pool says only that it waited: ask why
                exc = await _connect_error(url) or exc
            raise StoreError(
                f"cannot use the PostgreSQL database at {store.name}: "
                f"{_reason(exc)}. Check DATABASE_URL, that the server is running, and that "
                "the user may create tables there."
            ) from None
        except StoreError:
            await pool.close()
            raise
        return store

    async def _migrate(self) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
            )
            row = await (await conn.execute("SELECT max(version) FROM schema_version")).fetchone()
            version = (row[0] if row else None) or 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database at {self.name} has schema version {version}, newer than "
                    f"this bot knows ({SCHEMA_VERSION}): upgrade the bot, or use another database"
                )
            for number in range(version, SCHEMA_VERSION):
                await conn.execute(MIGRATIONS[number])
                log.info("migrated %s to schema version %d", self.name, number + 1)
            if version < SCHEMA_VERSION:
                await conn.execute("DELETE FROM schema_version")
                await conn.execute(
                    "INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,)
                )

    # --- reads ---------------------------------------------------------------------------

    async def _read(self, query: str, params: Sequence[Any] = (), bulk: bool = False) -> list:
        timeout = WRITE_TIMEOUT_S if bulk else READ_TIMEOUT_S
        try:
            async with asyncio.timeout(timeout), self.pool.connection(timeout) as conn:
                return await (await conn.execute(_sql(query), params)).fetchall()
        except (TimeoutError, PoolTimeout, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot read {self.name}: {_reason(exc)}") from None

    # --- writes: one transaction, confirmed after its commit -------------------------------

    async def _write(self, *statements: Statement) -> int:
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S), self.pool.connection() as conn:
                changed = 0
                async with conn.transaction(), conn.cursor() as cursor:
                    for query, params in statements:
                        if params and isinstance(params[0], tuple):
                            await cursor.executemany(_sql(query), params)
                        else:
                            await cursor.execute(_sql(query), params)
                        changed += max(cursor.rowcount, 0)
                return changed
        except (TimeoutError, PoolTimeout, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot write {self.name}: {_reason(exc)}") from None

    def _time(self, when: dt.datetime) -> dt.datetime:
        return when

    def _parse_time(self, stored: dt.datetime) -> dt.datetime:
        return stored

    async def close(self) -> None:
        await self.pool.close()


async def connect(url: str) -> psycopg.AsyncConnection:
    """A connection of its own, outside the pool: for a LISTEN or a lock held while waiting."""
    return await psycopg.AsyncConnection.connect(
        url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S)
    )


async def _connect_error(url: str) -> psycopg.Error | None:
    """The error one plain connection attempt gives, if any."""
    try:
        conn = await connect(url)
    except psycopg.Error as exc:
        return exc
    await conn.close()
    return None


def _reason(exc: BaseException) -> str:
    """A one-line reason, without the URL (and its password) psycopg may quote."""
    if isinstance(exc, TimeoutError | PoolTimeout):
        return "no answer in time"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
