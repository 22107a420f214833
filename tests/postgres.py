"""A PostgreSQL server for tests: TEST_DATABASE_URL, or a throwaway cluster started with
the machine's own PostgreSQL binaries; a fresh database for each test.

`initdb` refuses to run as root, so as root the cluster belongs to the `postgres` user,
in a directory made directly under /tmp that it can reach. With no server to be had the
PostgreSQL tests skip, saying why, unless REQUIRE_POSTGRES=1 (CI), which fails them.
"""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

# Newest first, by version number: as text, "9.6" would sort above "16".
BINARIES = sorted(
    glob.glob("/usr/lib/postgresql/*/bin"),
    key=lambda path: [int(n) for n in re.findall(r"\d+", Path(path).parent.name)],
    reverse=True,
)


@dataclass
class Cluster:
    """A throwaway cluster on a Unix socket in `directory`; `admin_url` reaches it."""

    directory: Path
    bin: Path
    owner: str | None  # the user it runs as, when we are root

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.directory}"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.owner, "--"] if self.owner else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-k {self.directory} -c listen_addresses='' -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-o", options,
                  "-w", "-l", str(self.directory / "server.log"), "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast",
                  "-w", "stop")  # fmt: skip

    @classmethod
    def create(cls) -> "Cluster":
        bin_dir = Path(BINARIES[0])
        directory = Path(tempfile.mkdtemp(prefix="lookback-pg-"))
        owner = "postgres" if os.geteuid() == 0 else None
        if owner:
            shutil.chown(directory, owner)
        cluster = cls(directory, bin_dir, owner)
        cluster._run(str(bin_dir / "initdb"), "-D", str(directory / "data"), "--auth=trust",
                     "-U", "postgres", "--no-sync")  # fmt: skip
        cluster.start()
        return cluster

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"REQUIRE_POSTGRES=1 but no PostgreSQL: {reason}")
    pytest.skip(f"no PostgreSQL for these tests: {reason} (set TEST_DATABASE_URL)")


@pytest.fixture(scope="session")
def postgres_server():
    """(admin URL, the throwaway cluster or None) for the whole session."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url, None
        return
    if not BINARIES:
        _unavailable("no /usr/lib/postgresql/*/bin on this machine")
    try:
        cluster = Cluster.create()
    except (subprocess.CalledProcessError, OSError, KeyError, LookupError) as exc:
        _unavailable(f"could not start a throwaway cluster: {exc}")
    try:
        yield cluster.admin_url, cluster
    finally:
        cluster.remove()


@pytest.fixture
def database_url(postgres_server):
    """A new, empty database on the test server, dropped afterwards."""
    admin_url, _ = postgres_server
    name = f"lookback_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = admin_url.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def server_switch(postgres_server):
    """The throwaway server's stop() and start(); it is running again after the test."""
    _, cluster = postgres_server
    if cluster is None:
        _unavailable("stopping the server needs the throwaway cluster, not TEST_DATABASE_URL")
    running = [True]

    class Switch:
        @staticmethod
        def stop() -> None:
            cluster.stop()
            running[0] = False

        @staticmethod
        def start() -> None:
            cluster.start()
            running[0] = True

    yield Switch
    if not running[0]:
        cluster.start()
