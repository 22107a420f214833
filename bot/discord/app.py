"""The bot: its client, start-up (setup_hook), corpus reloads, errors and logging.

Everything a member sees is decided by the core (answer, render, suggestions); the
command modules beside this one only read the member's setting, call the core, and
send what it returns.
"""

import asyncio
import gc
import logging
import math
import signal
import socket
from typing import TYPE_CHECKING, NamedTuple

import aiohttp
import discord
from discord import app_commands

from bot.config import ConfigError, Settings, load_settings, url_password
from bot.core.corpus import CorpusError
from bot.core.index_cache import EMBED_AT_START, open_retriever
from bot.core.progress import Progress
from bot.core.reloading import Reloader
from bot.core.retrieval import Retriever
from bot.core.suggestions import Suggester
from bot.discord.admin import NOT_ALLOWED, config
from bot.discord.ask import ask, ask_about_this
from bot.discord.feedback import AskLog, VoteButton, feedback_secret
from bot.discord.info import help_, sources
from bot.discord.pages import AnswerPages, MoreResults
from bot.discord.replies import reply
from bot.discord.spoilers import spoilers
from bot.store import Store, open_store

if TYPE_CHECKING:
    from bot.store.cluster import Cluster

log = logging.getLogger("lookback")

PAGES_KEPT = 2_000  # answers the "More results" button can page through; ~1 KB each
# Send Messages, Embed Links, Read Message History (for "Ask about this" on older messages).
INVITE_PERMISSIONS = (1 << 11) | (1 << 14) | (1 << 16)
GC_YOUNG_THRESHOLD = 10_000  # allocations between young GC passes (CPython: 700); see _tune_gc

TOKEN_REJECTED = """\
Discord rejected the bot token in DISCORD_TOKEN. Tokens change when they are reset:
open https://discord.com/developers/applications, pick your application, press
"Reset Token" under "Bot", and put the new token after DISCORD_TOKEN= in .env."""
GUILD_ONLY = "That command works only in a server."
SOMETHING_WRONG = "Sorry, something went wrong with that. It has been logged; please try again."


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


class Served(NamedTuple):
    """What a corpus (re)load produces; swapped in whole."""

    retriever: Retriever
    suggester: Suggester


def add_commands(tree: app_commands.CommandTree) -> None:
    for command in (ask, ask_about_this, spoilers, sources, help_, config):
        tree.add_command(command)


async def sync_commands(tree: app_commands.CommandTree, guild_id: int | None) -> list[str]:
    """Register the commands with Discord: in one server (at once), or globally."""
    if guild_id is not None:
        guild = discord.Object(id=guild_id)
        tree.copy_global_to(guild=guild)
        synced = await tree.sync(guild=guild)
    else:
        synced = await tree.sync()
    return [c.name for c in synced]


class LookBackBot(discord.Client):
    def __init__(self, settings: Settings, **client_options) -> None:
        # The bot speaks no voice: discord.py's warning that voice libraries are missing
        # at every start would only worry an admin.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        # Only guild events: slash commands and buttons arrive without any intent, and
        # the default set would bring every message, reaction and typing event too.
        super().__init__(
            intents=discord.Intents(guilds=True),
            allowed_mentions=discord.AllowedMentions.none(),
            proxy=settings.proxy,
            **client_options,
        )
        self.settings = settings
        self.feedback_secret = feedback_secret(settings.token)
        self.tree = app_commands.CommandTree(self)
        self.pages = AnswerPages(PAGES_KEPT)
        self.add_dynamic_items(MoreResults, VoteButton)
        self.tree.on_error = self.on_app_command_error
        add_commands(self.tree)
        self._tasks: set[asyncio.Task] = set()
        self.cluster: Cluster | None = None
        # Opened by setup_hook; close() may run before it got that far.
        self.store: Store | None = None
        self.ask_log: AskLog | None = None

    async def setup_hook(self) -> None:
        self.store = await open_store(self.settings.store)
        if self.settings.store.database_url:  # processes share PostgreSQL: join them
            from bot.store.cluster import Cluster  # psycopg is an optional dependency

            shards = self.settings.shards
            self.cluster = Cluster(self.store, ",".join(map(str, shards.ids)) if shards else "all")
            # Read before the corpus: a reload asked for meanwhile is not taken as done.
            self._generation = await self.cluster.wanted()
        # A corpus too large to embed in a few seconds starts on BM25 alone; its vectors
        # are then computed by a background reload, which serves them when done.
        served = _open(self.settings, embed_limit=EMBED_AT_START)
        self._serve(served)
        self.ask_log = AskLog(self.store, self.settings.store.feedback_days)
        self._spawn(self.ask_log.run())
        self.reloader = Reloader(
            lambda: _open(self.settings),
            self._serve,
            expected_errors=(CorpusError,),
            settled=self._settled,
        )
        # A maintainer who edits the corpus sends SIGHUP (one process) or runs
        # `python -m bot reload` (every process on one PostgreSQL).
        self.loop.add_signal_handler(signal.SIGHUP, self.reloader.request)
        if self.cluster is not None:
            retriever = served.retriever
            await self.cluster.report(
                self._generation, retriever.key, len(retriever.corpus.chunks), None
            )
            self.cluster.start(self.reloader.request, self._generation)
        if self.settings.semantic and served.retriever.semantic is None:
            self.reloader.request()
        # systemd and `kill` stop with SIGTERM: close cleanly, writing what is held.
        self.loop.add_signal_handler(signal.SIGTERM, lambda: self._spawn(self.close()))
        shards = self.settings.shards
        if shards is None or 0 in shards.ids:  # several processes: one syncs, not each
            names = await sync_commands(self.tree, self.settings.guild_id)
            log.info("synced commands: %s", ", ".join(names))

    def _settled(self, generation: int, error: Exception | None) -> None:
        """A reload is done (or failed, leaving the previous corpus serving): say so."""
        if self.cluster is not None:
            self._generation = max(self._generation, generation)
            retriever = self.retriever
            self._spawn(
                self.cluster.report(
                    self._generation,
                    retriever.key,
                    len(retriever.corpus.chunks),
                    str(error) if error else None,
                )
            )

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Processes sharing a database take turns to identify (Discord allows one
        every 5 s); alone, discord.py's own spacing of its shards is enough."""
        if self.cluster is not None and shard_id is not None:
            await self.cluster.identify_turn()
        else:
            await super().before_identify_hook(shard_id, initial=initial)

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _serve(self, served: Served) -> None:
        """Swap a (re)loaded corpus in whole: a question is answered from one or the other."""
        self.retriever, self.suggester = served
        log.info(
            "serving %d passages (%s)", len(served.retriever.corpus.chunks), served.retriever.mode
        )
        _tune_gc()

    async def close(self) -> None:
        for task in self._tasks - {asyncio.current_task()}:
            task.cancel()
        if self.cluster is not None:
            await self.cluster.close()
        if self.ask_log is not None:
            await self.ask_log.flush()
        if self.store is not None:
            await self.store.close()
        await super().close()

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.CommandOnCooldown):
            text = f"You're asking quickly. Try again in {math.ceil(error.retry_after)} s."
        elif isinstance(error, app_commands.MissingPermissions):
            text = NOT_ALLOWED
        elif isinstance(error, app_commands.NoPrivateMessage):
            text = GUILD_ONLY
        else:
            name = interaction.command.qualified_name if interaction.command else "?"
            log.error("/%s failed", name, exc_info=error)
            text = SOMETHING_WRONG
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


def _open(settings: Settings, embed_limit: int | None = None) -> Served:
    retriever = open_retriever(
        settings.corpus_dir,
        settings.cache_dir,
        Progress(log.info),
        semantic=settings.semantic,
        embed_limit=embed_limit,
    )
    for warning in retriever.corpus.warnings:
        log.warning("%s", warning)
    return Served(retriever, Suggester(retriever.corpus, retriever.mentions_spoilers))


def invite_url(application_id: int | None) -> str:
    """The link that adds the bot with the scopes and permissions it needs."""
    client = application_id or "YOUR_APPLICATION_ID"
    return (
        f"https://discord.com/oauth2/authorize?client_id={client}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    )


class ShardedLookBackBot(LookBackBot, discord.AutoShardedClient):
    """The bot for SHARD_COUNT/SHARD_IDS: some of the bot's shards, in this process."""


def make_bot(settings: Settings) -> LookBackBot:
    if settings.shards is None:
        return LookBackBot(settings)
    shards = settings.shards
    return ShardedLookBackBot(settings, shard_count=shards.count, shard_ids=list(shards.ids))


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
