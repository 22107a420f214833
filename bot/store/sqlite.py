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

from bot.store import StoreError, StoreUnavailable, sql
from bot.store.sql import SqlStore, Statement

log = logging.getLogger("lookback")

MIGRATIONS = sql.SQLITE_MIGRATIONS
SCHEMA_VERSION = sql.SCHEMA_VERSION
BUSY_TIMEOUT_S = 2.0  # a one-row upsert never needs longer; past it, say so

Identity = tuple[tuple[int, int] | None, tuple[int, int] | None]


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


class SqliteStore(SqlStore):
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

    def _reopen(self) -> None:
        """Both connections anew, when the file (or its WAL) is not the one they have open:
        a connection left on a deleted WAL fails every statement ("disk I/O error").
        Called with the write lock held."""
        if self._identity() == self._db_identity == self._reader_identity:
            return  # another caller did it meanwhile
        log.warning(
            "the database %s (or its -wal file) was deleted or replaced while the bot ran; "
            "opening it anew (what the deleted file held is gone)",
            self.path,
        )
        self._reader.close()
        self._db.close()
        self._db, self._db_identity = self._connect(migrate=True)
        self._reader, self._reader_identity = self._connect()

    def _reopen_locked(self) -> None:
        with self._lock:
            self._reopen()

    # --- reads: on the caller's thread, never waiting for a writer ---------------------

    async def _read(self, query: str, params: Sequence[Any] = (), bulk: bool = False) -> list:
        try:
            if self._identity() != self._reader_identity:
                # Off the event loop: reopening takes the write lock and may migrate.
                await asyncio.to_thread(self._reopen_locked)
            return self._reader.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read {self.path}: {exc}") from None

    # --- writes: in a worker thread, one at a time, confirmed once on disk -------------

    def _write_now(self, statements: Sequence[Statement]) -> int:
        """Run the statements in one transaction; the rows they changed."""
        with self._lock:
            for _ in range(2):  # once more if the file was deleted meanwhile
                if self._identity() != self._db_identity:
                    self._reopen()
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

    def _time(self, when: dt.datetime) -> str:
        return when.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

    def _parse_time(self, stored: str) -> dt.datetime:
        return dt.datetime.fromisoformat(stored)

    async def close(self) -> None:
        self._reader.close()
        with self._lock:
            self._db.close()
