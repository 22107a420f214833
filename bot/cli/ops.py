"""Commands for the operator: move the store to PostgreSQL, reload every process, sync
the commands with Discord from one place."""

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from bot.config import ConfigError, StoreSettings, load_env, store_settings
from bot.store import opened

RELOAD_POLL_S = 0.2


def _postgres(what: str) -> StoreSettings:
    load_env()
    settings = store_settings()
    if not settings.database_url:
        raise ConfigError(
            f"{what} needs DATABASE_URL=postgresql://… (several processes share PostgreSQL); "
            "a single process on SQLite reloads with `kill -HUP <pid>`"
        )
    return settings


def run_db_copy(args: argparse.Namespace) -> int:
    """Copy everything a SQLite file holds into the PostgreSQL store."""
    source = Path(args.source)
    if not source.is_file():
        raise ConfigError(f"{source} does not exist: name the bot's SQLite file with --from")
    settings = _postgres("db copy")

    async def copy() -> str:
        from bot.store.sqlite import SqliteStore

        # Read from a copy: opening the file itself would migrate it and switch it to WAL.
        with tempfile.TemporaryDirectory() as tmp:
            copied = Path(tmp) / source.name
            with (
                sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src,
                sqlite3.connect(copied) as dst,
            ):
                src.backup(dst)
            sqlite = SqliteStore(copied)
            try:
                dump = await sqlite.dump()
            finally:
                await sqlite.close()
        async with opened(settings) as target:
            await target.load(dump)
        return (
            f"copied {len(dump.spoilers_on)} spoiler opt-ins, {len(dump.spoiler_channels)} "
            f"spoiler channels, {len(dump.asks)} questions and {len(dump.votes)} votes "
            f"from {source} to {settings.where}"
        )

    print(asyncio.run(copy()))
    return 0


def run_reload(args: argparse.Namespace) -> int:
    """Ask every running process to reload the corpus, and wait until each serves it."""
    settings = _postgres("reload")

    async def reload() -> int:
        from bot.store.cluster import ALIVE_S, Cluster

        async with opened(settings) as store:
            cluster = Cluster(store)
            generation = await cluster.request_reload()
            started = time.monotonic()
            while True:
                alive = [s for s in await cluster.serving() if s.seen_s < ALIVE_S]
                behind = [s for s in alive if s.generation < generation or s.error]
                settled = all(s.generation >= generation for s in alive)
                if settled or time.monotonic() - started > args.timeout:
                    break
                await asyncio.sleep(RELOAD_POLL_S)
            seconds = time.monotonic() - started
        if not alive:
            print(f"reload {generation} requested; no bot process is running")
            return 0
        for s in alive:
            state = "✗ " + (s.error or "did not reload in time") if s in behind else "✓"
            print(
                f"{s.process} (shards {s.shards}): {s.passages} passages, "
                f"corpus {s.corpus[:12]} {state}"
            )
        if behind:
            names = ", ".join(s.process for s in behind)
            print(f"reload {generation}: {len(behind)} of {len(alive)} did not converge: {names}")
            return 1
        print(f"reload {generation}: all {len(alive)} processes serve it ({seconds:.1f} s)")
        return 0

    return asyncio.run(reload())


def run_sync(args: argparse.Namespace) -> int:
    """Register the commands with Discord (the server in DISCORD_GUILD_ID, else globally)."""
    from bot.discord.app import sync_commands_once

    names = sync_commands_once()
    print(f"synced commands: {', '.join(names)}")
    return 0
