"""The bot: its client, start-up (setup_hook), corpus reloads, errors and logging.

Everything a member sees is decided by the core (answer, render); the command
modules beside this one only read the member's setting, call the core, and send
what it returns.
"""

import gc
import logging
import math
import signal

import aiohttp
import discord
from discord import app_commands

from bot.config import ConfigError, Settings, load_settings
from bot.core.corpus import CorpusError
from bot.core.index_cache import open_retriever
from bot.core.progress import Progress
from bot.core.reloading import Reloader
from bot.core.retrieval import Retriever
from bot.discord.ask import ask
from bot.discord.info import sources
from bot.discord.pages import AnswerPages, MoreResults
from bot.discord.replies import reply
from bot.discord.spoilers import spoilers
from bot.store.sqlite import SqliteStore

log = logging.getLogger("lookback")

PAGES_KEPT = 2_000  # answers the "More results" button can page through; ~1 KB each
# Send Messages, Embed Links, Read Message History (for "Ask about this" on older messages).
INVITE_PERMISSIONS = (1 << 11) | (1 << 14) | (1 << 16)
GC_YOUNG_THRESHOLD = 10_000  # allocations between young GC passes (CPython: 700); see _tune_gc

TOKEN_REJECTED = """\
Discord rejected the bot token in DISCORD_TOKEN. Tokens change when they are reset:
open https://discord.com/developers/applications, pick your application, press
"Reset Token" under "Bot", and put the new token after DISCORD_TOKEN= in .env."""


class RedactingFormatter(logging.Formatter):
    """Formats log lines with the token (if it ever appears) replaced, tracebacks included."""

    def __init__(self, secret: str) -> None:
        super().__init__("[{asctime}] [{levelname:<8}] {name}: {message}", style="{")
        self.secret = secret

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace(self.secret, "[redacted token]")


class LookBackBot(discord.Client):
    def __init__(self, settings: Settings) -> None:
        # The bot speaks no voice: discord.py's warning that voice libraries are missing
        # at every start would only worry an admin.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        # Only guild events: slash commands and buttons arrive without any intent, and
        # the default set would bring every message, reaction and typing event too.
        super().__init__(
            intents=discord.Intents(guilds=True),
            allowed_mentions=discord.AllowedMentions.none(),
            proxy=settings.proxy,
        )
        self.settings = settings
        self.tree = app_commands.CommandTree(self)
        self.pages = AnswerPages(PAGES_KEPT)
        self.add_dynamic_items(MoreResults)
        self.tree.on_error = self.on_app_command_error
        for command in (ask, spoilers, sources):
            self.tree.add_command(command)

    async def setup_hook(self) -> None:
        self.retriever = _open_retriever(self.settings)
        self.store = SqliteStore(self.settings.db_path)
        # A maintainer who edits the corpus sends SIGHUP instead of restarting.
        self.reloader = Reloader(
            lambda: _open_retriever(self.settings), self._serve, expected_errors=(CorpusError,)
        )
        self.loop.add_signal_handler(signal.SIGHUP, self.reloader.request)
        _tune_gc()
        if self.settings.guild_id is not None:
            guild = discord.Object(id=self.settings.guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("synced commands: %s", ", ".join(f"/{c.name}" for c in synced))

    def _serve(self, retriever: Retriever) -> None:
        """Swap a reloaded corpus in whole: a question is answered from one or the other."""
        self.retriever = retriever
        log.info("serving %d passages", len(retriever.corpus.chunks))
        _tune_gc()

    async def close(self) -> None:
        if hasattr(self, "store"):
            await self.store.close()
        await super().close()

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.CommandOnCooldown):
            text = f"You're asking quickly. Try again in {math.ceil(error.retry_after)} s."
        else:
            name = interaction.command.qualified_name if interaction.command else "?"
            log.error("/%s failed", name, exc_info=error)
            text = "Sorry, something went wrong with that. It has been logged; please try again."
        await reply(interaction, text)


def _tune_gc() -> None:
    """Keep cyclic GC passes off what lives until exit, and make them rarer.

    Freezing exempts the corpus, index and modules from every pass: it cut CPU per
    /ask by about 8% in bursts of 50 (bench.discord_e2e). A replaced index is acyclic,
    so reference counting frees it. A burst's own objects (tasks, interactions,
    requests) live until their reply is sent, so at CPython's default threshold of
    700 a burst of 50 ran 7 young passes, each re-scanning objects still in use, and
    GC took 6-7% of the bot's CPU. At GC_YOUNG_THRESHOLD: one pass in five bursts, 2%.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _open_retriever(settings: Settings) -> Retriever:
    retriever = open_retriever(settings.corpus_dir, settings.cache_dir, Progress(log.info))
    for warning in retriever.corpus.warnings:
        log.warning("%s", warning)
    return retriever


def invite_url(application_id: int | None) -> str:
    """The link that adds the bot with the scopes and permissions it needs."""
    client = application_id or "YOUR_APPLICATION_ID"
    return (
        f"https://discord.com/oauth2/authorize?client_id={client}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    )


def run_bot() -> int:
    """Start the bot with settings from the environment and .env; returns the exit code."""
    settings = load_settings()
    discord.utils.setup_logging(formatter=RedactingFormatter(settings.token))
    bot = LookBackBot(settings)
    try:
        bot.run(settings.token, log_handler=None)
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
            f"{invite_url(bot.application_id)}"
        ) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise ConfigError(
            f"Cannot reach Discord ({type(exc).__name__}: {exc}). Check this machine's "
            "network and DNS, and that HTTPS to discord.com and gateway.discord.gg is "
            "allowed; behind a proxy, set DISCORD_PROXY=http://host:port in .env."
        ) from None
    return 0
