"""What the bot keeps about members and servers, behind one interface.

Two backends implement `Store`: SQLite (`bot.store.sqlite`, the default, a file that
needs no set-up) and PostgreSQL (`bot.store.postgres`, for several processes on
several hosts). The Discord layer and the CLI only ever see this interface.

Kept: a member's spoiler opt-in (by Discord user id; `/spoilers off` deletes it), the
channels a server marked as spoiler channels, and, for the maintainer's report, each
question asked (no asker), the passages shown, and votes keyed by a per-answer hash
that cannot be turned back into a Discord id. Questions and votes are purged after
the retention period.
"""

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from bot.config import StoreSettings


class StoreError(Exception):
    """The store cannot be opened; the message says why and what to do (exit 2)."""


class StoreUnavailable(Exception):
    """A read or write did not happen just now (locked, deleted, server down): the caller
    fails closed (spoilers off, "nothing changed") and the member is told."""


class SpoilerSetting(NamedTuple):
    member: bool  # the member opted in with /spoilers on
    channel: bool  # asked in a channel the server marked as a spoiler channel


@dataclass(frozen=True)
class AskRecord:
    """One question as the report needs it: never who asked."""

    ask_id: int  # the interaction's id, which the answer's buttons carry
    asked_at: dt.datetime
    question: str
    abstained: bool
    passages: tuple[str, ...]  # citations of the passages shown, best first


@dataclass(frozen=True)
class Vote:
    ask_id: int
    member_key: str  # see bot.store.ask_log.member_key: one per member and answer
    vote: int  # +1 or -1
    voted_at: dt.datetime


class QuestionCount(NamedTuple):
    question: str
    times: int


class VotedAnswer(NamedTuple):
    question: str
    passages: tuple[str, ...]
    down: int
    up: int
    asked_at: dt.datetime


@dataclass(frozen=True)
class FeedbackReport:
    since: dt.datetime
    asked: int
    unanswered: int
    up: int
    down: int
    top_unanswered: tuple[QuestionCount, ...]
    voted_down: tuple[VotedAnswer, ...]


@dataclass(frozen=True)
class StoreDump:
    """Everything a store holds, for `python -m bot db copy`."""

    spoilers_on: tuple[int, ...] = ()
    spoiler_channels: tuple[tuple[int, int], ...] = ()  # (guild id, channel id)
    asks: tuple[AskRecord, ...] = ()
    votes: tuple[Vote, ...] = field(default=())


class Store(Protocol):
    """Every method either does what it says (a write is committed before it returns)
    or raises StoreUnavailable, having changed nothing."""

    name: str  # for logs: the file, or the server without its password

    async def spoiler_setting(
        self, user_id: int, guild_id: int | None, channels: tuple[int, int]
    ) -> SpoilerSetting:
        """The member's choice, and whether either channel (where they asked, and its
        parent for a thread) is one of the server's spoiler channels."""

    async def set_spoilers(self, user_id: int, on: bool) -> None: ...

    async def spoiler_channels(self, guild_id: int) -> tuple[int, ...]: ...

    async def set_spoiler_channel(self, guild_id: int, channel_id: int, on: bool) -> None: ...

    async def record_asks(self, records: Sequence[AskRecord]) -> None: ...

    async def record_vote(self, vote: Vote) -> None: ...

    async def purge(self, before: dt.datetime) -> int: ...

    async def report(self, since: dt.datetime, top: int = 10) -> FeedbackReport: ...

    async def dump(self) -> StoreDump: ...

    async def load(self, dump: StoreDump) -> None: ...

    async def close(self) -> None: ...


@contextlib.asynccontextmanager
async def opened(settings: StoreSettings) -> AsyncIterator[Store]:
    """The configured store, open for the block and closed after it (the CLI's commands)."""
    store = await open_store(settings)
    try:
        yield store
    finally:
        await store.close()


async def open_store(settings: StoreSettings) -> Store:
    """The configured backend, opened and migrated; StoreError says what to fix."""
    if settings.database_url:
        try:
            from bot.store.postgres import PostgresStore
        except ImportError:
            raise StoreError(
                "DATABASE_URL needs the PostgreSQL driver: pip install -e '.[postgres]'"
            ) from None
        return await PostgresStore.open(settings.database_url)
    from bot.store.sqlite import SqliteStore

    return SqliteStore(settings.db_path)
