"""Spoiler opt-ins in a real SQLite file: faults, concurrency, and crashes."""

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.store.sqlite import SCHEMA_VERSION, PrefsError, SpoilerPrefs
from tests.sqlite_lock import hold_lock


def test_the_file_is_created_in_wal_mode_with_the_schema_version(tmp_path):
    path = tmp_path / "new" / "prefs.sqlite3"
    prefs = SpoilerPrefs(path)
    assert path.exists()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    prefs.close()


def test_choices_survive_reopening(tmp_path):
    prefs = SpoilerPrefs(tmp_path / "p.sqlite3")
    assert not prefs.spoilers_on(1)
    prefs.set_spoilers(1, True)
    prefs.set_spoilers(2, True)
    prefs.set_spoilers(2, False)
    prefs.close()
    again = SpoilerPrefs(tmp_path / "p.sqlite3")
    assert again.spoilers_on(1) and not again.spoilers_on(2)


def test_an_older_schema_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE unrelated (x)").connection.close()
    prefs = SpoilerPrefs(path)
    prefs.set_spoilers(5, True)
    assert prefs.spoilers_on(5)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_newer_schema_is_refused_rather_than_misread(tmp_path):
    path = tmp_path / "new.sqlite3"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(PrefsError, match="newer than this bot knows"):
        SpoilerPrefs(path)


def test_corrupted_bytes_get_a_message_with_the_fix(tmp_path):
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(PrefsError, match="move it aside"):
        SpoilerPrefs(path)


def test_an_unwritable_location_gets_a_clear_error():
    # /proc refuses new files even to root, unlike a chmod'ed folder.
    with pytest.raises(PrefsError, match="cannot"):
        SpoilerPrefs(Path("/proc/lookback/prefs.sqlite3"))


def test_a_write_waits_for_another_process_lock_then_succeeds(tmp_path):
    path = tmp_path / "p.sqlite3"
    prefs = SpoilerPrefs(path)
    holder = hold_lock(path, 0.5)
    start = time.monotonic()
    prefs.set_spoilers(9, True)
    assert time.monotonic() - start >= 0.2
    assert holder.wait(10) == 0
    assert prefs.spoilers_on(9)


def test_a_lock_held_too_long_fails_the_write_without_saving(tmp_path):
    path = tmp_path / "p.sqlite3"
    prefs = SpoilerPrefs(path, busy_timeout_s=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        prefs.set_spoilers(9, True)
    holder.execute("ROLLBACK")
    assert not prefs.spoilers_on(9)


WRITER = """
import sys
from pathlib import Path
from bot.store.sqlite import SpoilerPrefs
prefs = SpoilerPrefs(Path(sys.argv[1]))
first, count = int(sys.argv[2]), int(sys.argv[3])
for n in range(count):
    user = first + n
    prefs.set_spoilers(user, user % 2 == 0)
    print(user, flush=True)  # confirmed only after the commit
"""


def test_two_processes_writing_one_file_lose_nothing(tmp_path):
    path = tmp_path / "p.sqlite3"
    SpoilerPrefs(path).close()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(first), "150"],
                         stdout=subprocess.PIPE, text=True)
        for first in (0, 10_000)
    ]  # fmt: skip
    for writer in writers:
        assert writer.wait(60) == 0
    db = sqlite3.connect(path)
    rows = dict(db.execute("SELECT user_id, spoilers FROM spoiler_prefs"))
    expected = {u: int(u % 2 == 0) for first in (0, 10_000) for u in range(first, first + 150)}
    assert rows == expected


def test_every_confirmed_choice_survives_sigkill_mid_write(tmp_path):
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
    prefs = SpoilerPrefs(path)
    assert all(prefs.spoilers_on(u) == (u % 2 == 0) for u in confirmed)
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
