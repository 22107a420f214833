"""The statements both backends run, written once in the SQL they share, and the Store
methods built on them (`SqlStore`).

Placeholders are `?` (SQLite's); the PostgreSQL backend turns them into `%s`. Times
are UTC: ISO-8601 text in SQLite, timestamptz in PostgreSQL. Each schema version is
one entry of a backend's migrations; the tables are the same in both.
"""

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from bot.store import (
    AskRecord,
    FeedbackReport,
    QuestionCount,
    SpoilerSetting,
    StoreDump,
    Vote,
    VotedAnswer,
)

SPOILER_SETTING = (
    "SELECT EXISTS (SELECT 1 FROM spoiler_prefs WHERE user_id = ? AND spoilers),"
    " EXISTS (SELECT 1 FROM spoiler_channels WHERE guild_id = ? AND channel_id IN (?, ?))"
)
# Off is the default, so choosing it removes what was stored about the member.
SPOILERS_ON = (
    "INSERT INTO spoiler_prefs (user_id, spoilers, updated_at) VALUES (?, TRUE, ?) "
    "ON CONFLICT (user_id) DO UPDATE SET spoilers = TRUE, updated_at = excluded.updated_at"
)
SPOILERS_OFF = "DELETE FROM spoiler_prefs WHERE user_id = ?"
SPOILER_CHANNELS = "SELECT channel_id FROM spoiler_channels WHERE guild_id = ? ORDER BY channel_id"
SPOILER_CHANNEL_ON = (
    "INSERT INTO spoiler_channels (guild_id, channel_id, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (guild_id, channel_id) DO NOTHING"
)
SPOILER_CHANNEL_OFF = "DELETE FROM spoiler_channels WHERE guild_id = ? AND channel_id = ?"
RECORD_ASK = (
    "INSERT INTO asks (ask_id, asked_at, question, abstained, passages) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (ask_id) DO NOTHING"
)
RECORD_VOTE = (
    "INSERT INTO votes (ask_id, member_key, vote, voted_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (ask_id, member_key) DO UPDATE "
    "SET vote = excluded.vote, voted_at = excluded.voted_at"
)
PURGE = (  # a vote goes with its question, however recent the vote
    "DELETE FROM votes WHERE voted_at < ? OR ask_id IN (SELECT ask_id FROM asks WHERE asked_at < ?)",
    "DELETE FROM asks WHERE asked_at < ?",
)
REPORT_TOTALS = (
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN abstained THEN 1 ELSE 0 END), 0) "
    "FROM asks WHERE asked_at >= ?"
)
REPORT_VOTES = (
    "SELECT COALESCE(SUM(CASE WHEN vote > 0 THEN 1 ELSE 0 END), 0),"
    " COALESCE(SUM(CASE WHEN vote < 0 THEN 1 ELSE 0 END), 0) FROM votes WHERE voted_at >= ?"
)
REPORT_UNANSWERED = (
    "SELECT MIN(question), COUNT(*) AS times FROM asks WHERE abstained AND asked_at >= ? "
    "GROUP BY LOWER(question) ORDER BY times DESC, MIN(question) LIMIT ?"
)
REPORT_VOTED_DOWN = (
    "SELECT a.question, a.passages,"
    " SUM(CASE WHEN v.vote < 0 THEN 1 ELSE 0 END) AS down,"
    " SUM(CASE WHEN v.vote > 0 THEN 1 ELSE 0 END) AS up, a.asked_at"
    " FROM asks a JOIN votes v ON v.ask_id = a.ask_id WHERE a.asked_at >= ?"
    " GROUP BY a.ask_id, a.question, a.passages, a.asked_at"
    " HAVING SUM(CASE WHEN v.vote < 0 THEN 1 ELSE 0 END) > 0"
    " ORDER BY down DESC, a.asked_at DESC LIMIT ?"
)
DUMP = {
    "spoilers_on": "SELECT user_id FROM spoiler_prefs WHERE spoilers ORDER BY user_id",
    "spoiler_channels": "SELECT guild_id, channel_id FROM spoiler_channels ORDER BY 1, 2",
    "asks": "SELECT ask_id, asked_at, question, abstained, passages FROM asks ORDER BY ask_id",
    "votes": "SELECT ask_id, member_key, vote, voted_at FROM votes ORDER BY ask_id, member_key",
}

# The schema, version by version (both backends number their versions alike).
# Version 1 is the spoiler opt-ins the bot has always kept.
SQLITE_MIGRATIONS = (
    """
    CREATE TABLE spoiler_prefs (
        user_id    INTEGER PRIMARY KEY,
        spoilers   INTEGER NOT NULL CHECK (spoilers IN (0, 1)),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )
    """,
    """
    CREATE TABLE spoiler_channels (
        guild_id   INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (guild_id, channel_id)
    );
    CREATE TABLE asks (
        ask_id    INTEGER PRIMARY KEY,
        asked_at  TEXT NOT NULL,
        question  TEXT NOT NULL,
        abstained INTEGER NOT NULL CHECK (abstained IN (0, 1)),
        passages  TEXT NOT NULL
    );
    CREATE INDEX asks_by_time ON asks (asked_at);
    CREATE TABLE votes (
        ask_id     INTEGER NOT NULL,
        member_key TEXT NOT NULL,
        vote       INTEGER NOT NULL CHECK (vote IN (-1, 1)),
        voted_at   TEXT NOT NULL,
        PRIMARY KEY (ask_id, member_key)
    );
    CREATE INDEX votes_by_time ON votes (voted_at);
    """,
)
POSTGRES_MIGRATIONS = (
    """
    CREATE TABLE spoiler_prefs (
        user_id    BIGINT PRIMARY KEY,
        spoilers   BOOLEAN NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE spoiler_channels (
        guild_id   BIGINT NOT NULL,
        channel_id BIGINT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (guild_id, channel_id)
    );
    CREATE TABLE asks (
        ask_id    BIGINT PRIMARY KEY,
        asked_at  TIMESTAMPTZ NOT NULL,
        question  TEXT NOT NULL,
        abstained BOOLEAN NOT NULL,
        passages  TEXT NOT NULL
    );
    CREATE INDEX asks_by_time ON asks (asked_at);
    CREATE TABLE votes (
        ask_id     BIGINT NOT NULL,
        member_key TEXT NOT NULL,
        vote       SMALLINT NOT NULL CHECK (vote IN (-1, 1)),
        voted_at   TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (ask_id, member_key)
    );
    CREATE INDEX votes_by_time ON votes (voted_at);
    -- Several processes on one database (bot.store.cluster): the corpus generation every
    -- process should serve, what each one serves, and whose turn it is to identify.
    CREATE TABLE bot_reload (
        one          BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        generation   BIGINT NOT NULL,
        requested_at TIMESTAMPTZ NOT NULL
    );
    INSERT INTO bot_reload VALUES (TRUE, 0, now());
    CREATE TABLE bot_processes (
        process    TEXT PRIMARY KEY,
        shards     TEXT NOT NULL,
        generation BIGINT NOT NULL,
        corpus     TEXT NOT NULL,
        passages   INTEGER NOT NULL,
        error      TEXT,
        seen_at    TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE identify_gate (
        one           BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        last_identify TIMESTAMPTZ NOT NULL
    );
    INSERT INTO identify_gate VALUES (TRUE, 'epoch');
    """,
)
SCHEMA_VERSION = len(SQLITE_MIGRATIONS)
assert len(POSTGRES_MIGRATIONS) == SCHEMA_VERSION


Statement = tuple[str, Sequence[Any]]  # a query and its parameters (or rows, for many)


def _passages(text: str) -> tuple[str, ...]:
    return tuple(filter(None, text.split("\n")))


class SqlStore(ABC):
    """Every Store method, written once on top of what each backend provides: a read, a
    write of statements in one transaction, and how it stores a time."""

    name: str

    @abstractmethod
    async def _read(self, query: str, params: Sequence[Any] = (), bulk: bool = False) -> list:
        """The rows of one query, or StoreUnavailable. `bulk`: a report, not an ask."""

    @abstractmethod
    async def _write(self, *statements: Statement) -> int:
        """Run the statements in one committed transaction; the rows changed."""

    @abstractmethod
    def _time(self, when: dt.datetime) -> object:
        """A time as the backend stores it."""

    @abstractmethod
    def _parse_time(self, stored: Any) -> dt.datetime: ...

    async def spoiler_setting(
        self, user_id: int, guild_id: int | None, channels: tuple[int, int]
    ) -> SpoilerSetting:
        [(member, channel)] = await self._read(SPOILER_SETTING, (user_id, guild_id, *channels))
        return SpoilerSetting(bool(member), bool(channel))

    async def spoiler_channels(self, guild_id: int) -> tuple[int, ...]:
        return tuple(int(c) for (c,) in await self._read(SPOILER_CHANNELS, (guild_id,)))

    async def set_spoilers(self, user_id: int, on: bool) -> None:
        if on:
            await self._write((SPOILERS_ON, (user_id, self._now())))
        else:
            await self._write((SPOILERS_OFF, (user_id,)))

    async def set_spoiler_channel(self, guild_id: int, channel_id: int, on: bool) -> None:
        if on:
            await self._write((SPOILER_CHANNEL_ON, (guild_id, channel_id, self._now())))
        else:
            await self._write((SPOILER_CHANNEL_OFF, (guild_id, channel_id)))

    async def record_asks(self, records: Sequence[AskRecord]) -> None:
        if records:
            await self._write((RECORD_ASK, tuple(self._ask_row(r) for r in records)))

    async def record_vote(self, vote: Vote) -> None:
        await self._write((RECORD_VOTE, self._vote_row(vote)))

    async def purge(self, before: dt.datetime) -> int:
        at = self._time(before)
        return await self._write(*((query, (at,) * query.count("?")) for query in PURGE))

    async def report(self, since: dt.datetime, top: int = 10) -> FeedbackReport:
        at = self._time(since)
        [totals] = await self._read(REPORT_TOTALS, (at,), bulk=True)
        [votes] = await self._read(REPORT_VOTES, (at,), bulk=True)
        unanswered = await self._read(REPORT_UNANSWERED, (at, top), bulk=True)
        voted_down = await self._read(REPORT_VOTED_DOWN, (at, top), bulk=True)
        return FeedbackReport(
            since=since,
            asked=int(totals[0]),
            unanswered=int(totals[1]),
            up=int(votes[0]),
            down=int(votes[1]),
            top_unanswered=tuple(QuestionCount(q, int(n)) for q, n in unanswered),
            voted_down=tuple(
                VotedAnswer(q, _passages(p), int(d), int(u), self._parse_time(t))
                for q, p, d, u, t in voted_down
            ),
        )

    async def dump(self) -> StoreDump:
        rows = {name: await self._read(query, bulk=True) for name, query in DUMP.items()}
        return StoreDump(
            spoilers_on=tuple(int(u) for (u,) in rows["spoilers_on"]),
            spoiler_channels=tuple((int(g), int(c)) for g, c in rows["spoiler_channels"]),
            asks=tuple(
                AskRecord(int(i), self._parse_time(t), q, bool(a), _passages(p))
                for i, t, q, a, p in rows["asks"]
            ),
            votes=tuple(
                Vote(int(i), k, int(v), self._parse_time(t)) for i, k, v, t in rows["votes"]
            ),
        )

    async def load(self, dump: StoreDump) -> None:
        now = self._now()
        statements: list[Statement] = [
            (SPOILERS_ON, tuple((u, now) for u in dump.spoilers_on)),
            (SPOILER_CHANNEL_ON, tuple((g, c, now) for g, c in dump.spoiler_channels)),
            (RECORD_ASK, tuple(self._ask_row(r) for r in dump.asks)),
            (RECORD_VOTE, tuple(self._vote_row(v) for v in dump.votes)),
        ]
        await self._write(*(s for s in statements if s[1]))

    def _now(self) -> object:
        return self._time(dt.datetime.now(dt.UTC))

    def _ask_row(self, r: AskRecord) -> tuple:
        return (r.ask_id, self._time(r.asked_at), r.question, r.abstained, "\n".join(r.passages))

    def _vote_row(self, v: Vote) -> tuple:
        return (v.ask_id, v.member_key, v.vote, self._time(v.voted_at))
