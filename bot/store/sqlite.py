"""The store in a SQLite file: the default, nothing to set up.

Every write is committed before its method returns, so a member is only ever told
"saved" about a choice that is on disk. WAL mode lets a second process read while
one writes; a busy timeout makes concurrent writers wait instead of fail. Writes run
in worker threads (a locked file must not stall the event loop) on one connection
under a lock; reads use a connection of their own on the caller's thread, so a write
waiting for the file never holds up a read.

A file deleted or replaced while the bot runs is noticed before each read and around
each write (its inode changes): the store opens the file at the path anew, and a
write that landed in the deleted file is made again in the new one before it is
confirmed.
"""

import asyncio
import datetime as dt
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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

MIGRATIONS = sql.SQLITE_MIGRATIONS
SCHEMA_VERSION = sql.SCHEMA_VERSION
BUSY_TIMEOUT_S = 2.0  # a one-row upsert never needs longer; past it, say so

Identity = tuple[tuple[int, int] | None, tuple[int, int] | None]
Statement = tuple[str, Sequence[Any]]


def _time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


class SqliteStore:
    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self._timeout = busy_timeout_s
        self._lock = threading.Lock()
        self._wal = self.path.with_name(self.path.name + "-wal")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db, self._db_identity = self._connect(migrate=True)
            self._reader, self._reader_identity = self._connect()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot use the database {self.path}: {exc}. "
                "Check the file and its folder are writable; if it is corrupt, move it "
                "aside and the bot will start a new one."
            ) from None
        except OSError as exc:
            raise StoreError(f"cannot create {self.path}: {exc.strerror}") from None

    def _connect(self, migrate: bool = False) -> tuple[sqlite3.Connection, Identity]:
        db = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if migrate:
            self._migrate(db)
        else:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the WAL
        return db, self._identity()

    def _identity(self) -> Identity:
        return _file_id(self.path), _file_id(self._wal)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this bot knows ({SCHEMA_VERSION})"
            )
        for number in range(version, SCHEMA_VERSION):
            db.execute("BEGIN IMMEDIATE")
            try:
                # Re-read under the write lock: another process may have migrated meanwhile.
                if db.execute("PRAGMA user_version").fetchone()[0] == number:
                    for statement in MIGRATIONS[number].split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {number + 1}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # --- reads: on the caller's thread, never waiting for a writer ---------------------

    def _read(self, query: str, params: Sequence[Any] = ()) -> list[tuple]:
        try:
            if self._identity() != self._reader_identity:
                self._reader.close()
                # A new file has no writers to wait for: making its schema here is quick.
                self._reader, self._reader_identity = self._connect(migrate=True)
            return self._reader.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read {self.path}: {exc}") from None

    async def spoiler_setting(
        self, user_id: int, guild_id: int | None, channels: tuple[int, int]
    ) -> SpoilerSetting:
        [(member, channel)] = self._read(sql.SPOILER_SETTING, (user_id, guild_id, *channels))
        return SpoilerSetting(bool(member), bool(channel))

    async def spoiler_channels(self, guild_id: int) -> tuple[int, ...]:
        return tuple(c for (c,) in self._read(sql.SPOILER_CHANNELS, (guild_id,)))

    async def report(self, since: dt.datetime, top: int = 10) -> FeedbackReport:
        at = _time(since)
        return sql.build_report(
            since,
            self._read(sql.REPORT_TOTALS, (at,))[0],
            self._read(sql.REPORT_VOTES, (at,))[0],
            self._read(sql.REPORT_UNANSWERED, (at, top)),
            self._read(sql.REPORT_VOTED_DOWN, (at, top)),
            _parse_time,
        )

    async def dump(self) -> StoreDump:
        return sql.build_dump({k: self._read(q) for k, q in sql.DUMP.items()}, _parse_time)

    # --- writes: in a worker thread, one at a time, confirmed once on disk -------------

    def _write_now(self, statements: Sequence[Statement]) -> int:
        """Run the statements in one transaction; the rows they changed."""
        with self._lock:
            for _ in range(2):  # once more if the file was deleted meanwhile
                if self._identity() != self._db_identity:
                    log.warning(
                        "the database %s was deleted or replaced while the bot ran; "
                        "opening it anew (what the old file held is gone)",
                        self.path,
                    )
                    self._db.close()
                    self._db, self._db_identity = self._connect(migrate=True)
                changed = self._transaction(statements)
                if self._identity() == self._db_identity:
                    return changed
            raise sqlite3.OperationalError("the file keeps being replaced")

    def _transaction(self, statements: Sequence[Statement]) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            changed = 0
            for query, params in statements:
                if params and isinstance(params[0], tuple):
                    changed += db.executemany(query, params).rowcount
                else:
                    changed += db.execute(query, params).rowcount
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return changed

    async def _write(self, *statements: Statement) -> int:
        try:
            return await asyncio.to_thread(self._write_now, statements)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot write {self.path}: {exc}") from None

    async def set_spoilers(self, user_id: int, on: bool) -> None:
        if on:
            await self._write((sql.SPOILERS_ON, (user_id, _time(dt.datetime.now(dt.UTC)))))
        else:
            await self._write((sql.SPOILERS_OFF, (user_id,)))

    async def set_spoiler_channel(self, guild_id: int, channel_id: int, on: bool) -> None:
        if on:
            now = _time(dt.datetime.now(dt.UTC))
            await self._write((sql.SPOILER_CHANNEL_ON, (guild_id, channel_id, now)))
        else:
            await self._write((sql.SPOILER_CHANNEL_OFF, (guild_id, channel_id)))

    async def record_asks(self, records: Sequence[AskRecord]) -> None:
        if records:
            rows = tuple(sql.ask_row(r, _time(r.asked_at)) for r in records)
            await self._write((sql.RECORD_ASK, rows))

    async def record_vote(self, vote: Vote) -> None:
        await self._write((sql.RECORD_VOTE, sql.vote_row(vote, _time(vote.voted_at))))

    async def purge(self, before: dt.datetime) -> int:
        at = _time(before)
        return await self._write(*((query, (at,)) for query in sql.PURGE))

    async def load(self, dump: StoreDump) -> None:
        now = _time(dt.datetime.now(dt.UTC))
        statements: list[Statement] = [
            (sql.SPOILERS_ON, tuple((u, now) for u in dump.spoilers_on)),
            (sql.SPOILER_CHANNEL_ON, tuple((g, c, now) for g, c in dump.spoiler_channels)),
            (sql.RECORD_ASK, tuple(sql.ask_row(r, _time(r.asked_at)) for r in dump.asks)),
            (sql.RECORD_VOTE, tuple(sql.vote_row(v, _time(v.voted_at)) for v in dump.votes)),
        ]
        await self._write(*(s for s in statements if s[1]))

    async def close(self) -> None:
        self._reader.close()
        with self._lock:
            self._db.close()
