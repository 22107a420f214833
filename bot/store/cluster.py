"""Several bot processes on one PostgreSQL server: reloads that reach them all, what each
serves, and turns to IDENTIFY with Discord.

- A reload is a generation number in `bot_reload`, raised by `python -m bot reload`, which
  also sends a NOTIFY. Each process LISTENs on a dedicated connection (a pooled one would
  be lent out mid-wait); NOTIFY is not durable, so a listener that (re)connects compares
  the generation with the one it last handled and reloads if it is behind.
- Each process writes what it serves to `bot_processes` (the generation it handled, its
  corpus's key and size, the error if a reload failed) and refreshes `seen_at` every
  HEARTBEAT_S, so `reload` can wait for the living ones and name those that lag.
- Discord lets a bot IDENTIFY (start a shard's session) once per 5 s (max_concurrency 1,
  every bot under 150,000 servers). discord.py spaces its own shards, not other
  processes': `identify_turn` holds an advisory lock while it waits for 5 s to pass
  since the last IDENTIFY of any process, by the server's clock, plus a margin: a turn
  is recorded a few round trips before its IDENTIFY is sent, and Discord counts them as
  they arrive (under load, two turns 5 s apart arrived closer together).
"""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from bot.store import StoreUnavailable
from bot.store.postgres import PostgresStore, connect

log = logging.getLogger("lookback")

CHANNEL = "lookback_reload"
IDENTIFY_LOCK = 0x4C6F6F6B4944  # "LookID"
IDENTIFY_SPACING_S = 5.0 + 1.0  # Discord's 5 s, and a margin (module docstring)
# The longest a process waits for its turn: 50 processes starting at once. Past it, it
# waits one spacing and identifies anyway.
IDENTIFY_WAIT_S = 50 * IDENTIFY_SPACING_S
HEARTBEAT_S = 30.0
ALIVE_S = 3 * HEARTBEAT_S  # a process not seen for this long is taken for gone
RECONNECT_S = (0.5, 30.0)  # the listener's first and longest wait between attempts


@dataclass(frozen=True)
class ProcessStatus:
    """What one process reports it serves."""

    process: str
    shards: str
    generation: int
    corpus: str  # the key of the corpus it serves (a hash of its files and the code)
    passages: int
    error: str | None  # why the last reload failed (the previous corpus still serves)
    seen_s: float  # seconds since it last reported


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Cluster:
    def __init__(self, store: PostgresStore, shards: str = "all") -> None:
        self.store, self.shards = store, shards
        self.process = process_name()
        self._tasks: list[asyncio.Task] = []
        self._last: tuple[int, str, int, str | None] | None = None

    # --- the CLI's side ------------------------------------------------------------------

    async def request_reload(self) -> int:
        """Raise the wanted generation and tell every listener; returns it."""
        [(generation,)] = await self.store._read(
            "UPDATE bot_reload SET generation = generation + 1, requested_at = now() "
            "RETURNING generation",
            bulk=True,
        )
        await self.store._read("SELECT pg_notify(%s, %s)", (CHANNEL, str(generation)), bulk=True)
        return generation

    async def serving(self) -> list[ProcessStatus]:
        rows = await self.store._read(
            "SELECT process, shards, generation, corpus, passages, error, "
            "extract(epoch FROM now() - seen_at) FROM bot_processes ORDER BY process",
            bulk=True,
        )
        return [ProcessStatus(*row[:6], float(row[6])) for row in rows]

    # --- the bot's side ------------------------------------------------------------------

    async def wanted(self) -> int:
        [(generation,)] = await self.store._read("SELECT generation FROM bot_reload", bulk=True)
        return int(generation)

    def start(self, on_reload: Callable[[int], None], generation: int) -> None:
        """Listen for reloads and keep reporting; `on_reload(generation)` asks for one."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(on_reload, generation)),
            loop.create_task(self._heartbeat()),
        ]

    async def report(self, generation: int, corpus: str, passages: int, error: str | None):
        """Say what this process serves now (failures are logged: it will say it again)."""
        self._last = (generation, corpus, passages, error)
        try:
            await self.store._write(
                (
                    "INSERT INTO bot_processes (process, shards, generation, corpus, passages, "
                    "error, seen_at) VALUES (%s, %s, %s, %s, %s, %s, now()) "
                    "ON CONFLICT (process) DO UPDATE SET shards = excluded.shards, "
                    "generation = excluded.generation, corpus = excluded.corpus, "
                    "passages = excluded.passages, error = excluded.error, seen_at = now()",
                    (self.process, self.shards, generation, corpus, passages, error),
                )
            )
        except StoreUnavailable as exc:
            log.warning("could not report the corpus served: %s", exc)

    async def identify_turn(self) -> None:
        """Wait until IDENTIFY_SPACING_S have passed since any process's last turn.

        Without the database, waiting the spacing is the safe guess.
        """
        try:
            await self._identify_turn()
        except (TimeoutError, psycopg.Error) as exc:
            log.warning("could not take a turn to identify (%s); waiting instead", exc)
            await asyncio.sleep(IDENTIFY_SPACING_S)

    async def _identify_turn(self) -> None:
        async with (
            asyncio.timeout(IDENTIFY_WAIT_S),
            await connect(self.store.url) as conn,
        ):
            await conn.execute("SELECT pg_advisory_lock(%s)", (IDENTIFY_LOCK,))
            row = await (
                await conn.execute(
                    "SELECT extract(epoch FROM last_identify + make_interval(secs => %s) "
                    "- clock_timestamp()) FROM identify_gate",
                    (IDENTIFY_SPACING_S,),
                )
            ).fetchone()
            wait = float(row[0]) if row else 0.0
            if wait > 0:
                await asyncio.sleep(wait)
            await conn.execute("UPDATE identify_gate SET last_identify = clock_timestamp()")
            await conn.execute("SELECT pg_advisory_unlock(%s)", (IDENTIFY_LOCK,))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(StoreUnavailable):
            await self.store._write(
                ("DELETE FROM bot_processes WHERE process = %s", (self.process,))
            )

    async def _listen(self, on_reload: Callable[[int], None], handled: int) -> None:
        delay = RECONNECT_S[0]
        while True:
            try:
                async with await connect(self.store.url) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = RECONNECT_S[0]
                    while True:
                        # Notifications sent while no one listened are lost, and a
                        # connection cut without a word (a failover, a NAT) waits for
                        # ever: ask on this connection now and then, and catch up.
                        async with asyncio.timeout(10):
                            row = await (
                                await conn.execute("SELECT generation FROM bot_reload")
                            ).fetchone()
                        handled = self._catch_up(on_reload, handled, int(row[0]) if row else 0)
                        async for notify in conn.notifies(timeout=HEARTBEAT_S):
                            if notify.payload.isdigit():
                                handled = self._catch_up(on_reload, handled, int(notify.payload))
            except (psycopg.Error, StoreUnavailable, OSError, TimeoutError) as exc:
                log.warning("reload listener lost the database (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_S[1])

    @staticmethod
    def _catch_up(on_reload: Callable[[int], None], handled: int, wanted: int) -> int:
        if wanted > handled:
            log.info("reload %d requested through the database", wanted)
            on_reload(wanted)
        return max(handled, wanted)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            if self._last is not None:
                await self.report(*self._last)
