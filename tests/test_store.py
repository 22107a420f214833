"""The store as the bot uses it, against real databases: SQLite files here (and the same
suite against PostgreSQL in test_store_postgres.py)."""

import asyncio
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.store import AskRecord, StoreError, StoreUnavailable, Vote
from bot.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.sqlite_lock import hold_lock
from tests.store_suite import *  # noqa: F403 - the backend-independent tests


@pytest.fixture
async def store(tmp_path):
    store = SqliteStore(tmp_path / "store.sqlite3")
    yield store
    await store.close()


@pytest.fixture
def reopen(tmp_path):
    """Opens the same database again, as a restarted bot would."""

    async def reopen_() -> SqliteStore:
        return SqliteStore(tmp_path / "store.sqlite3")

    return reopen_


async def test_the_file_is_created_in_wal_mode_with_the_schema_version(tmp_path):
    path = tmp_path / "new" / "prefs.sqlite3"
    store = SqliteStore(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    await store.close()


async def test_an_older_schema_is_migrated_keeping_its_choices(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE spoiler_prefs (user_id INTEGER PRIMARY KEY, spoilers INTEGER "
               "NOT NULL, updated_at TEXT NOT NULL DEFAULT 'x')")  # fmt: skip
    db.executemany("INSERT INTO spoiler_prefs (user_id, spoilers) VALUES (?, ?)", [(1, 1), (2, 0)])
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = SqliteStore(path)
    assert (await store.spoiler_setting(1, None, (0, 0))).member
    assert not (await store.spoiler_setting(2, None, (0, 0))).member
    await store.set_spoiler_channel(7, 8, True)  # a table version 2 added
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    await store.close()


async def test_a_newer_schema_is_refused_rather_than_misread(tmp_path):
    path = tmp_path / "new.sqlite3"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this bot knows"):
        SqliteStore(path)


async def test_corrupted_bytes_get_a_message_with_the_fix(tmp_path):
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="move it aside"):
        SqliteStore(path)


async def test_an_unwritable_location_gets_a_clear_error():
    # /proc refuses new files even to root, unlike a chmod'ed folder.
    with pytest.raises(StoreError, match="cannot"):
        SqliteStore(Path("/proc/lookback/prefs.sqlite3"))


async def test_a_write_waits_for_another_process_lock_then_succeeds(tmp_path):
    path = tmp_path / "p.sqlite3"
    store = SqliteStore(path)
    holder = hold_lock(path, 0.5)
    start = time.monotonic()
    await store.set_spoilers(9, True)
    assert time.monotonic() - start >= 0.2
    assert holder.wait(10) == 0
    assert (await store.spoiler_setting(9, None, (0, 0))).member


async def test_a_lock_held_too_long_fails_the_write_without_saving(tmp_path):
    path = tmp_path / "p.sqlite3"
    store = SqliteStore(path, busy_timeout_s=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreUnavailable, match="locked"):
        await store.set_spoilers(9, True)
    holder.execute("ROLLBACK")
    assert not (await store.spoiler_setting(9, None, (0, 0))).member


@pytest.mark.parametrize("with_wal", [False, True])
async def test_a_database_deleted_while_running_is_noticed_and_started_anew(
    tmp_path, with_wal, caplog
):
    path = tmp_path / "p.sqlite3"
    store = SqliteStore(path)
    await store.set_spoilers(1, True)
    for victim in [path] + ([Path(f"{path}-wal"), Path(f"{path}-shm")] if with_wal else []):
        os.unlink(victim)
    assert not (await store.spoiler_setting(1, None, (0, 0))).member  # reads go on, fresh file
    assert "was deleted or replaced while the bot ran" in caplog.text
    await store.set_spoilers(2, True)  # confirmed: so it must be in the file at the path
    await store.close()
    again = SqliteStore(path)
    assert (await again.spoiler_setting(2, None, (0, 0))).member
    await again.close()


async def test_a_write_that_lands_in_a_file_deleted_meanwhile_is_made_again(tmp_path, monkeypatch):
    path = tmp_path / "p.sqlite3"
    store = SqliteStore(path)
    transaction = store._transaction
    deleted = []

    def delete_then_commit(statements):  # the file goes while the first write is under way
        if not deleted:
            deleted.append(os.unlink(path))
        return transaction(statements)

    monkeypatch.setattr(store, "_transaction", delete_then_commit)
    await store.set_spoilers(3, True)
    await store.close()
    assert sqlite3.connect(path).execute("SELECT user_id FROM spoiler_prefs").fetchall() == [(3,)]


WRITER = """
import asyncio, sys
from pathlib import Path
from bot.store.sqlite import SqliteStore
async def main():
    store = SqliteStore(Path(sys.argv[1]))
    first, count = int(sys.argv[2]), int(sys.argv[3])
    for n in range(count):
        user = first + n
        await store.set_spoilers(user, user % 2 == 0)
        print(user, flush=True)  # confirmed only after the commit
asyncio.run(main())
"""


async def test_two_processes_writing_one_file_lose_nothing(tmp_path):
    path = tmp_path / "p.sqlite3"
    await SqliteStore(path).close()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(first), "150"],
                         stdout=subprocess.PIPE, text=True)
        for first in (0, 10_000)
    ]  # fmt: skip
    for writer in writers:
        assert writer.wait(60) == 0
    db = sqlite3.connect(path)
    on = {u for (u,) in db.execute("SELECT user_id FROM spoiler_prefs WHERE spoilers")}
    everyone = [u for first in (0, 10_000) for u in range(first, first + 150)]
    assert on == {u for u in everyone if u % 2 == 0}
    assert db.execute("SELECT COUNT(*) FROM spoiler_prefs WHERE NOT spoilers").fetchone() == (0,)


async def test_every_confirmed_choice_survives_sigkill_mid_write(tmp_path):
    path = tmp_path / "p.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), "0", "100000"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stdout is not None
    confirmed = [int(writer.stdout.readline()) for _ in range(300)]
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    confirmed += [int(line) for line in writer.stdout.read().split()]
    store = SqliteStore(path)
    settings = [await store.spoiler_setting(u, None, (0, 0)) for u in confirmed]
    assert all(s.member == (u % 2 == 0) for s, u in zip(settings, confirmed, strict=True))
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    await store.close()


async def test_asks_recorded_in_one_batch_are_all_kept(store):
    now = dt.datetime.now(dt.UTC)
    records = [AskRecord(n, now, f"question {n}", n % 2 == 0, ("doc#1",)) for n in range(500)]
    await asyncio.gather(store.record_asks(records[:250]), store.record_asks(records[250:]))
    await store.record_vote(Vote(3, "k", -1, now))
    report = await store.report(now - dt.timedelta(days=1))
    assert (report.asked, report.unanswered, report.down) == (500, 250, 1)


@pytest.mark.parametrize("deleted", [("-wal",), ("-wal", "-shm")])
async def test_a_wal_deleted_under_a_running_bot_is_noticed_too(tmp_path, deleted, caplog):
    path = tmp_path / "p.sqlite3"
    store = SqliteStore(path)
    await store.set_spoilers(1, True)
    for suffix in deleted:
        os.unlink(f"{path}{suffix}")
    await store.spoiler_setting(1, None, (0, 0))  # a read, not "disk I/O error"
    assert "was deleted or replaced while the bot ran" in caplog.text
    await store.set_spoilers(2, True)
    await store.close()
    again = SqliteStore(path)
    assert (await again.spoiler_setting(2, None, (0, 0))).member
    await again.close()
