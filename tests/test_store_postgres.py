"""The store against a real PostgreSQL server: the suite every backend passes, and what
only a shared server brings (migrations under a lock, outages, copying from SQLite)."""

import asyncio
import datetime as dt
import sqlite3
import subprocess
import sys
import time

import psycopg
import pytest

from bot.store import AskRecord, StoreError, StoreUnavailable, Vote
from bot.store.postgres import READ_TIMEOUT_S, SCHEMA_VERSION, PostgresStore
from bot.store.sqlite import SqliteStore
from tests.store_suite import *  # noqa: F403 - the backend-independent tests


@pytest.fixture
async def store(database_url):
    store = await PostgresStore.open(database_url)
    yield store
    await store.close()


@pytest.fixture
def reopen(database_url):
    return lambda: PostgresStore.open(database_url)


MIGRATE = """
import asyncio, sys
from bot.store.postgres import PostgresStore
async def main():
    store = await PostgresStore.open(sys.argv[1])
    await store.close()
asyncio.run(main())
"""


async def test_processes_starting_together_migrate_once(database_url):
    starters = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, database_url], stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    assert all(p.wait(60) == 0 for p in starters), [p.stderr.read() for p in starters]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("SELECT count(*) FROM bot_reload").fetchone() == (1,)


async def test_a_newer_schema_is_refused_rather_than_misread(database_url):
    await (await PostgresStore.open(database_url)).close()  # migrated
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this bot knows"):
        await PostgresStore.open(database_url)


async def test_an_unreachable_server_is_a_configuration_error_without_the_password(tmp_path):
    url = f"postgresql://bot:hunter2@/lookback?host={tmp_path}"  # no server on this socket
    with pytest.raises(StoreError) as raised:
        await PostgresStore.open(url)
    assert "hunter2" not in str(raised.value) and "***" in str(raised.value)


async def test_reads_and_writes_fail_closed_while_the_server_is_down_then_recover(
    store,
    server_switch,
):
    server_switch.stop()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.spoiler_setting(1, None, (0, 0))
    assert time.monotonic() - started < READ_TIMEOUT_S + 1.0
    with pytest.raises(StoreUnavailable):
        await store.set_spoilers(1, True)
    server_switch.start()  # the server is back: the pool reconnects by itself
    async with asyncio.timeout(20):
        while True:
            try:
                await store.set_spoilers(1, True)
                break
            except StoreUnavailable:
                await asyncio.sleep(0.2)
    assert (await store.spoiler_setting(1, None, (0, 0))).member


async def test_db_copy_moves_everything_from_a_sqlite_file(tmp_path, database_url):
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    sqlite = SqliteStore(tmp_path / "old.sqlite3")
    for user in (1, 2, 3):
        await sqlite.set_spoilers(user, True)
    await sqlite.set_spoiler_channel(10, 20, True)
    await sqlite.record_asks([AskRecord(5, now, "who directed it", False, ("a#1",))])
    await sqlite.record_vote(Vote(5, "k", -1, now))
    await sqlite.close()
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "bot", "db", "copy", "--from", str(tmp_path / "old.sqlite3")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 spoiler opt-ins" in result.stdout
    store = await PostgresStore.open(database_url)
    dump = await store.dump()
    assert dump.spoilers_on == (1, 2, 3) and dump.spoiler_channels == ((10, 20),)
    assert [a.question for a in dump.asks] == ["who directed it"] and len(dump.votes) == 1
    await store.close()


async def test_a_password_given_as_a_url_parameter_is_not_shown_either(tmp_path):
    url = f"postgresql://bot@/lookback?host={tmp_path}&password=hunter2"
    with pytest.raises(StoreError) as raised:
        await PostgresStore.open(url)
    assert "hunter2" not in str(raised.value) and "password=***" in str(raised.value)


async def test_db_copy_reads_an_old_file_without_migrating_it(tmp_path, database_url):
    old = tmp_path / "v1.sqlite3"
    with sqlite3.connect(old) as db:
        db.execute("CREATE TABLE spoiler_prefs (user_id INTEGER PRIMARY KEY, spoilers INTEGER "
                   "NOT NULL, updated_at TEXT NOT NULL DEFAULT 'x')")  # fmt: skip
        db.execute("INSERT INTO spoiler_prefs (user_id, spoilers) VALUES (7, 1), (8, 0)")
        db.execute("PRAGMA user_version = 1")
    before = old.read_bytes()
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "bot", "db", "copy", "--from", str(old)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert old.read_bytes() == before  # read, not migrated
    store = await PostgresStore.open(database_url)
    assert (await store.dump()).spoilers_on == (7,)
    await store.close()
