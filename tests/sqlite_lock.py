"""Another process holding an exclusive lock on a SQLite file, for fault tests."""

import subprocess
import sys
from pathlib import Path

_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Start a process that holds the lock for `seconds`; returns once it holds it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder
