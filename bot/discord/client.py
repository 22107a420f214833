"""The bot's client: what it serves (the corpus, reloaded whole), its store, start-up
(setup_hook), identify turns among processes, and errors. Its commands and buttons are
the modules beside it, added by the launcher (app.py): they import this module for its
type, and it imports none of them.
"""

import asyncio
import gc
import logging
import math
import signal
from typing import TYPE_CHECKING, NamedTuple

import discord
from discord import app_commands

from bot.config import Settings
from bot.core.corpus import CorpusError
from bot.core.index_cache import EMBED_AT_START, open_retriever
from bot.core.paging import AnswerPages
from bot.core.progress import Progress
from bot.core.reloading import Reloader
from bot.core.retrieval import Retriever
from bot.core.suggestions import Suggester
from bot.discord.replies import reply
from bot.store import Store, open_store
from bot.store.ask_log import AskLog, feedback_secret

if TYPE_CHECKING:
    from bot.store.cluster import Cluster

log = logging.getLogger("lookback")

PAGES_KEPT = 2_000  # answers the "More results" button can page through; ~1 KB each
GC_YOUNG_THRESHOLD = 10_000  # allocations between young GC passes (CPython: 700); see _tune_gc

NOT_ALLOWED = "Only members who can manage this server can change the bot's settings."
GUILD_ONLY = "That command works only in a server."
SOMETHING_WRONG = "Sorry, something went wrong with that. It has been logged; please try again."


class Served(NamedTuple):
    """What a corpus (re)load produces; swapped in whole."""

    retriever: Retriever
    suggester: Suggester


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
    """The client and what it serves. Its commands and buttons are added by make_bot."""

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
        self.tree.on_error = self.on_app_command_error
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
            await self._report(self.cluster, None)
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
            self._spawn(self._report(self.cluster, error))

    async def _report(self, cluster: "Cluster", error: Exception | None) -> None:
        """Tell the other processes which reload this one handled and what it serves."""
        retriever = self.retriever
        await cluster.report(
            self._generation,
            retriever.key,
            len(retriever.corpus.chunks),
            str(error) if error else None,
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


class ShardedLookBackBot(LookBackBot, discord.AutoShardedClient):
    """The bot for SHARD_COUNT/SHARD_IDS: some of the bot's shards, in this process."""
