"""The bot as a real subprocess, pointed at the fake Discord."""

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from tests.fake_discord import GUILD_ID, TOKEN, FakeDiscord

REPO = Path(__file__).resolve().parent.parent


@dataclass
class BotProcess:
    fake: FakeDiscord
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    wrapper: list[str] = field(default_factory=list)  # e.g. valgrind and its options
    seed_cache: ClassVar[Path | None] = None  # an index cache to start from (conftest)

    @property
    def log_path(self) -> Path:
        return self.workdir / "bot.log"

    def environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DISCORD_", "CORPUS_", "INDEX_"))
        }
        env.update(
            FAKE_DISCORD_URL=self.fake.url,
            DISCORD_TOKEN=TOKEN,
            DISCORD_GUILD_ID=str(GUILD_ID),
            DATABASE_PATH=str(self.workdir / "prefs.sqlite3"),
            INDEX_CACHE_DIR=str(self.workdir / "cache"),
            PYTHONPATH=str(REPO),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env)
        return {k: v for k, v in env.items() if v is not None}

    async def start(self, wait: bool = True, timeout: float = 30.0) -> None:
        self.fake.new_session()
        cache = self.workdir / "cache"
        if self.seed_cache is not None and not cache.exists():
            shutil.copytree(self.seed_cache, cache)
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        # cwd is the test's folder, so a developer's own .env is never read.
        self.process = await asyncio.create_subprocess_exec(
            *self.wrapper, sys.executable, "-m", "tests.fake_launcher",
            cwd=self.workdir, env=self.environment(), stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        if wait:
            ready = asyncio.ensure_future(self.fake.wait_ready(timeout))
            exited = asyncio.ensure_future(self.process.wait())
            done, _ = await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
            exited.cancel()
            if ready not in done or ready.exception():
                ready.cancel()
                raise AssertionError(f"bot did not start:\n{self.log()}")

    async def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(sig)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def run_bot(process: BotProcess) -> AsyncIterator[BotProcess]:
    """Start the bot, hand it over, stop it; its log must hold no traceback and no token."""
    await process.start()
    yield process
    await process.stop()
    assert "Traceback" not in process.log(), process.log()
    assert TOKEN not in process.log()
