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
from bot.store import (
    AskRecord,
    FeedbackReport,
    SpoilerSetting,
    StoreDump,
    StoreError,
    StoreUnavailable,
    Vote,
    sql,
)

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


class PostgresStore:
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
            reconnect_timeout=0,  # keep trying for ever: the server may be down for a while
            name="lookback",
        )
        store = cls(url, pool)
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            await store._migrate()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            await pool.close()
            raise StoreError(
                f"cannot reach the PostgreSQL server at {store.name}: "
                f"{_reason(exc)}. Check DATABASE_URL and that the server is running."
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

    async def _read(
        self, query: str, params: Sequence[Any] = (), timeout: float = READ_TIMEOUT_S
    ) -> list[tuple]:
        try:
            async with asyncio.timeout(timeout), self.pool.connection(timeout) as conn:
                return await (await conn.execute(_sql(query), params)).fetchall()
        except (TimeoutError, PoolTimeout, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot read {self.name}: {_reason(exc)}") from None

    async def spoiler_setting(
        self, user_id: int, guild_id: int | None, channels: tuple[int, int]
    ) -> SpoilerSetting:
        [(member, channel)] = await self._read(sql.SPOILER_SETTING, (user_id, guild_id, *channels))
        return SpoilerSetting(bool(member), bool(channel))

    async def spoiler_channels(self, guild_id: int) -> tuple[int, ...]:
        return tuple(c for (c,) in await self._read(sql.SPOILER_CHANNELS, (guild_id,)))

    async def report(self, since: dt.datetime, top: int = 10) -> FeedbackReport:
        slow = WRITE_TIMEOUT_S
        return sql.build_report(
            since,
            (await self._read(sql.REPORT_TOTALS, (since,), slow))[0],
            (await self._read(sql.REPORT_VOTES, (since,), slow))[0],
            await self._read(sql.REPORT_UNANSWERED, (since, top), slow),
            await self._read(sql.REPORT_VOTED_DOWN, (since, top), slow),
            lambda when: when,
        )

    async def dump(self) -> StoreDump:
        rows = {k: await self._read(q, (), WRITE_TIMEOUT_S) for k, q in sql.DUMP.items()}
        return sql.build_dump(rows, lambda when: when)

    # --- writes: one transaction, confirmed after its commit -------------------------------

    async def _write(self, *statements: tuple[str, Sequence[Any]]) -> int:
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

    async def set_spoilers(self, user_id: int, on: bool) -> None:
        if on:
            await self._write((sql.SPOILERS_ON, (user_id, dt.datetime.now(dt.UTC))))
        else:
            await self._write((sql.SPOILERS_OFF, (user_id,)))

    async def set_spoiler_channel(self, guild_id: int, channel_id: int, on: bool) -> None:
        if on:
            now = dt.datetime.now(dt.UTC)
            await self._write((sql.SPOILER_CHANNEL_ON, (guild_id, channel_id, now)))
        else:
            await self._write((sql.SPOILER_CHANNEL_OFF, (guild_id, channel_id)))

    async def record_asks(self, records: Sequence[AskRecord]) -> None:
        if records:
            await self._write((sql.RECORD_ASK, tuple(sql.ask_row(r, r.asked_at) for r in records)))

    async def record_vote(self, vote: Vote) -> None:
        await self._write((sql.RECORD_VOTE, sql.vote_row(vote, vote.voted_at)))

    async def purge(self, before: dt.datetime) -> int:
        return await self._write(*((query, (before,)) for query in sql.PURGE))

    async def load(self, dump: StoreDump) -> None:
        now = dt.datetime.now(dt.UTC)
        statements = [
            (sql.SPOILERS_ON, tuple((u, now) for u in dump.spoilers_on)),
            (sql.SPOILER_CHANNEL_ON, tuple((g, c, now) for g, c in dump.spoiler_channels)),
            (sql.RECORD_ASK, tuple(sql.ask_row(r, r.asked_at) for r in dump.asks)),
            (sql.RECORD_VOTE, tuple(sql.vote_row(v, v.voted_at) for v in dump.votes)),
        ]
        await self._write(*(s for s in statements if s[1]))

    async def close(self) -> None:
        await self.pool.close()


def _reason(exc: BaseException) -> str:
    """A one-line reason, without the URL (and its password) psycopg may quote."""
    if isinstance(exc, TimeoutError | PoolTimeout):
        return "no answer in time"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
