"""Members' spoiler opt-ins, kept in a SQLite file so they survive restarts.

Every change is committed before `set_spoilers` returns, so a member is only ever
told "saved" about a choice that is on disk. WAL mode lets a second process read
while one writes; a busy timeout makes concurrent writers wait instead of fail.
The bot writes from worker threads (a locked file must not stall the event loop)
on one connection under a lock; reads use a connection of their own, so a write
waiting for the file never holds up a read.
"""

import sqlite3
import threading
from pathlib import Path

# Each entry upgrades the schema by one version (PRAGMA user_version).
MIGRATIONS = (
    """
    CREATE TABLE spoiler_prefs (
        user_id    INTEGER PRIMARY KEY,
        spoilers   INTEGER NOT NULL CHECK (spoilers IN (0, 1)),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_S = 2.0  # a one-row upsert never needs longer; past it, say so


class PrefsError(Exception):
    """The preferences database cannot be used; the message says why and what to do."""


class SpoilerPrefs:
    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
            self._reader = sqlite3.connect(self.path, timeout=busy_timeout_s)
        except sqlite3.DatabaseError as exc:
            raise PrefsError(
                f"cannot use the preferences database {self.path}: {exc}. "
                "Check the file and its folder are writable; if it is corrupt, move it "
                "aside and the bot will start a new one."
            ) from None
        except OSError as exc:
            raise PrefsError(f"cannot create {self.path}: {exc.strerror}") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this bot knows ({SCHEMA_VERSION})"
            )
        for number in range(version, SCHEMA_VERSION):
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                # Re-read under the write lock: another process may have migrated meanwhile.
                if self._db.execute("PRAGMA user_version").fetchone()[0] != number:
                    continue
                self._db.execute(MIGRATIONS[number])
                self._db.execute(f"PRAGMA user_version = {number + 1}")

    def spoilers_on(self, user_id: int) -> bool:
        row = self._reader.execute(
            "SELECT spoilers FROM spoiler_prefs WHERE user_id = ?", (user_id,)
        ).fetchone()
        return bool(row and row[0])

    def set_spoilers(self, user_id: int, on: bool) -> None:
        """Store the choice; returns only once it is committed."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO spoiler_prefs (user_id, spoilers) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET spoilers = excluded.spoilers, "
                "updated_at = excluded.updated_at",
                (user_id, int(on)),
            )

    def close(self) -> None:
        self._reader.close()
        with self._lock:
            self._db.close()
