"""The launcher: the client made with its commands and buttons, logging that never shows
a secret, `python -m bot` and `python -m bot sync`, and start-up failures explained.

Everything a member sees is decided by the core (answer, render, suggestions); the
command modules beside this one only read the member's setting, call the core, and
send what it returns. The client they run in is client.py.
"""

import asyncio
import logging
import socket

import aiohttp
import discord
from discord import app_commands

from bot.config import ConfigError, Settings, load_settings, url_password
from bot.discord.admin import config
from bot.discord.ask import ask, ask_about_this
from bot.discord.client import LookBackBot, ShardedLookBackBot, sync_commands
from bot.discord.feedback import VoteButton
from bot.discord.info import help_, sources
from bot.discord.pages import MoreResults
from bot.discord.spoilers import spoilers

# Send Messages, Embed Links, Read Message History (for "Ask about this" on older messages).
INVITE_PERMISSIONS = (1 << 11) | (1 << 14) | (1 << 16)

TOKEN_REJECTED = """\
Discord rejected the bot token in DISCORD_TOKEN. Tokens change when they are reset:
open https://discord.com/developers/applications, pick your application, press
"Reset Token" under "Bot", and put the new token after DISCORD_TOKEN= in .env."""


class RedactingFormatter(logging.Formatter):
    """Formats log lines with secrets (if they ever appear) replaced, tracebacks included."""

    def __init__(self, *secrets: str) -> None:
        super().__init__("[{asctime}] [{levelname:<8}] {name}: {message}", style="{")
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


def add_commands(tree: app_commands.CommandTree) -> None:
    for command in (ask, ask_about_this, spoilers, sources, help_, config):
        tree.add_command(command)


def invite_url(application_id: int | None) -> str:
    """The link that adds the bot with the scopes and permissions it needs."""
    client = application_id or "YOUR_APPLICATION_ID"
    return (
        f"https://discord.com/oauth2/authorize?client_id={client}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    )


def make_bot(settings: Settings) -> LookBackBot:
    """The client for these settings, with its commands and buttons."""
    if settings.shards is None:
        bot = LookBackBot(settings)
    else:
        shards = settings.shards
        bot = ShardedLookBackBot(settings, shard_count=shards.count, shard_ids=list(shards.ids))
    add_commands(bot.tree)
    # Buttons whose custom_id says what they belong to, so a click works after a restart.
    bot.add_dynamic_items(MoreResults, VoteButton)
    return bot


def _setup_logging(settings: Settings) -> None:
    password = settings.store.database_url and url_password(settings.store.database_url)
    discord.utils.setup_logging(formatter=RedactingFormatter(settings.token, password or ""))


def sync_commands_once() -> list[str]:
    """`python -m bot sync`: log in over HTTP only, register the commands, log out."""
    settings = load_settings()
    _setup_logging(settings)

    async def sync() -> list[str]:
        client = discord.Client(intents=discord.Intents.none(), proxy=settings.proxy)
        tree = app_commands.CommandTree(client)
        add_commands(tree)
        async with client:
            await client.login(settings.token)
            return await sync_commands(tree, settings.guild_id)

    return _explained(settings, None, lambda: asyncio.run(sync()))


def run_bot() -> int:
    """Start the bot with settings from the environment and .env; returns the exit code."""
    settings = load_settings()
    _setup_logging(settings)
    bot = make_bot(settings)
    _explained(settings, bot, lambda: bot.run(settings.token, log_handler=None))
    return 0


def _explained(settings: Settings, bot: LookBackBot | None, run):
    """Run, turning what an admin can fix into one paragraph (a ConfigError)."""
    try:
        return run()
    except discord.LoginFailure:
        raise ConfigError(TOKEN_REJECTED) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(
            "Discord refused the bot's intents; it needs no privileged ones."
        ) from None
    except discord.Forbidden as exc:
        where = f"server {settings.guild_id}" if settings.guild_id else "Discord"
        raise ConfigError(
            f"{where} refused the bot's commands ({exc.status} {exc.text or 'Missing Access'}). "
            "Check that DISCORD_GUILD_ID is your server's id (Developer Mode, right-click "
            "the server, Copy Server ID) and that the bot was invited with the "
            f"applications.commands scope; this link adds it that way: "
            f"{invite_url(bot.application_id if bot else None)}"
        ) from None
    except (aiohttp.ClientError, ConnectionError, socket.gaierror, TimeoutError) as exc:
        raise ConfigError(
            f"Cannot reach Discord ({type(exc).__name__}: {exc}). Check this machine's "
            "network and DNS, and that HTTPS to discord.com and gateway.discord.gg is "
            "allowed; behind a proxy, set DISCORD_PROXY=http://host:port in .env."
        ) from None
