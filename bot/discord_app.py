"""The Discord layer: slash commands that translate the core's answers into replies.

Everything a member sees is decided by the core (answer, render); this module only
reads the member's setting, calls the core, and sends what it returns.
"""

import asyncio
import gc
import logging
import math
import re
import signal
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands

from bot.answer import MAX_QUESTION_CHARS, PAGE_SIZE, Answer, QuestionError, answer_question
from bot.config import ConfigError, Settings, load_settings
from bot.corpus import CorpusError
from bot.index_cache import open_retriever
from bot.prefs import SpoilerPrefs
from bot.progress import Progress
from bot.render import Message, render_answer, render_sources
from bot.retrieval import Retriever

log = logging.getLogger("lookback")

ASK_RATE, ASK_PER_S = 3, 30.0  # per member: enough for a conversation, not for a flood
PAGES_KEPT = 2_000  # answers the "More results" button can page through; ~1 KB each
GC_YOUNG_THRESHOLD = 10_000  # allocations between young GC passes (CPython: 700); see _tune_gc

TOKEN_REJECTED = """\
Discord rejected the bot token in DISCORD_TOKEN. Tokens change when they are reset:
open https://discord.com/developers/applications, pick your application, press
"Reset Token" under "Bot", and put the new token after DISCORD_TOKEN= in .env."""

SPOILERS_ON = (
    "Spoilers are **on** for you: /ask now includes passages about the twist and the ending. "
    "In replies others can see they stay hidden behind spoiler tags."
)
SPOILERS_OFF = (
    "Spoilers are **off** for you: /ask withholds passages about the twist and tells you "
    "how many it kept back. Turn them on with `/spoilers on`."
)
PAGES_FORGOTTEN = (
    "I no longer have the rest of those results (I keep the latest ones, and forget them "
    "when I restart). Please ask again with `/ask`."
)
SAVE_FAILED = "I couldn't save that just now, so nothing changed. Please try again in a moment."


class RedactingFormatter(logging.Formatter):
    """Formats log lines with the token (if it ever appears) replaced, tracebacks included."""

    def __init__(self, secret: str) -> None:
        super().__init__("[{asctime}] [{levelname:<8}] {name}: {message}", style="{")
        self.secret = secret

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace(self.secret, "[redacted token]")


def discord_kwargs(message: Message) -> dict[str, Any]:
    """The rendered message as keyword arguments for discord.py's send methods."""
    return {
        "content": message.content or None,
        "embeds": [discord.Embed.from_dict(e.to_dict()) for e in message.embeds],
    }


class LookBackBot(discord.Client):
    def __init__(self, settings: Settings) -> None:
        # Only guild events: slash commands and buttons arrive without any intent, and
        # the default set would bring every message, reaction and typing event too.
        super().__init__(
            intents=discord.Intents(guilds=True), allowed_mentions=discord.AllowedMentions.none()
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
        self.prefs = SpoilerPrefs(self.settings.db_path)
        # A maintainer who edits the corpus sends SIGHUP instead of restarting.
        self.loop.add_signal_handler(signal.SIGHUP, self._schedule_reload)
        self._reloads: set[asyncio.Task] = set()
        _tune_gc()
        if self.settings.guild_id is not None:
            guild = discord.Object(id=self.settings.guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("synced commands: %s", ", ".join(f"/{c.name}" for c in synced))

    def _schedule_reload(self) -> None:
        task = asyncio.create_task(self.reload_corpus())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload_corpus(self) -> None:
        """Re-read the corpus off the event loop, then swap it in whole.

        Questions asked meanwhile are answered from the old index; a corpus that
        fails to load leaves the old one serving.
        """
        try:
            retriever = await asyncio.to_thread(_open_retriever, self.settings)
        except CorpusError as exc:
            log.error("corpus reload failed, still serving the previous corpus: %s", exc)
            return
        self.retriever = retriever
        _tune_gc()

    async def close(self) -> None:
        if hasattr(self, "prefs"):
            self.prefs.close()
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


class MemberCooldowns:
    """At most `rate` uses per `per` seconds per member, with discord.py's Cooldown buckets.

    `app_commands.checks.cooldown` scans every member's bucket on every use to drop
    the idle ones; with 2,000 members asking within 30 s that was a tenth of each
    /ask's CPU. Here buckets are kept in order of last use, so idle ones are dropped
    from the front. (Dropping a bucket idle for `per` changes nothing: its window
    has passed, so it would have reset anyway.)
    """

    def __init__(self, rate: int, per: float) -> None:
        self.rate, self.per = rate, per
        self._buckets: OrderedDict[int, tuple[float, app_commands.Cooldown]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def use(self, member_id: int, now: float) -> float | None:
        """Count one use at `now` (epoch seconds); the seconds to wait if over the rate."""
        while self._buckets:
            last_used, _ = next(iter(self._buckets.values()))
            if now <= last_used + self.per:
                break
            self._buckets.popitem(last=False)
        entry = self._buckets.pop(member_id, None)
        bucket = entry[1] if entry else app_commands.Cooldown(self.rate, self.per)
        self._buckets[member_id] = (now, bucket)
        return bucket.update_rate_limit(now)

    def check(self, interaction: discord.Interaction) -> bool:
        """An app command check: CommandOnCooldown, as discord.py's own cooldown raises."""
        retry_after = self.use(interaction.user.id, interaction.created_at.timestamp())
        if retry_after is not None:
            raise app_commands.CommandOnCooldown(
                app_commands.Cooldown(self.rate, self.per), retry_after
            )
        return True


ASK_COOLDOWN = MemberCooldowns(ASK_RATE, ASK_PER_S)


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


async def reply(interaction: discord.Interaction, text: str) -> None:
    """A short ephemeral reply, whether or not the interaction was answered already."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


@dataclass
class _Paged:
    answer: Answer
    asker_id: int
    page: int = 0


class AnswerPages:
    """The answers a "More results" button pages through, the latest PAGES_KEPT of them.

    Kept in memory only: after a restart or once forgotten, a click is told to ask again.
    """

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self._pages: OrderedDict[int, _Paged] = OrderedDict()

    def add(self, ask_id: int, answer: Answer, asker_id: int) -> None:
        self._pages[ask_id] = _Paged(answer, asker_id)
        if len(self._pages) > self.kept:
            self._pages.popitem(last=False)

    def get(self, ask_id: int) -> _Paged | None:
        return self._pages.get(ask_id)


class MoreResults(discord.ui.DynamicItem[discord.ui.Button], template=r"more:(?P<ask>[0-9]+)"):
    """The "More results" button: the next page of the same answer, to the member who asked.

    The /ask it belongs to is in its custom_id, so a click reaches this handler even
    after a restart, and no per-message view or timeout task is kept.
    """

    def __init__(self, ask_id: int) -> None:
        button = discord.ui.Button(
            label="More results", style=discord.ButtonStyle.secondary, custom_id=f"more:{ask_id}"
        )
        super().__init__(button)
        self.ask_id = ask_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> "MoreResults":
        return cls(int(match["ask"]))

    @staticmethod
    def view(ask_id: int) -> discord.ui.View:
        return discord.ui.View(timeout=None).add_item(MoreResults(ask_id))

    async def callback(self, interaction: discord.Interaction[LookBackBot]) -> None:
        paged = interaction.client.pages.get(self.ask_id)
        if paged is None:
            await reply(interaction, PAGES_FORGOTTEN)
            return
        if interaction.user.id != paged.asker_id:
            await reply(interaction, "These results belong to another member; try `/ask` yourself.")
            return
        if (paged.page + 1) * PAGE_SIZE >= len(paged.answer.passages):
            await reply(interaction, "That's everything I found for this question.")
            return
        paged.page += 1
        message = render_answer(paged.answer, page=paged.page)
        await interaction.response.send_message(**discord_kwargs(message), ephemeral=True)


@app_commands.command()
@app_commands.describe(
    question="What you want to know, e.g. who composed the music?",
    private="Only you see the answer (default: everyone in the channel)",
)
@app_commands.check(ASK_COOLDOWN.check)
async def ask(
    interaction: discord.Interaction[LookBackBot],
    question: app_commands.Range[str, 1, MAX_QUESTION_CHARS],
    private: bool = False,
) -> None:
    """Ask about the film; answers quote cited sources, spoilers only if you opted in."""
    bot = interaction.client
    spoilers_allowed = bot.prefs.spoilers_on(interaction.user.id)
    try:
        answer = answer_question(bot.retriever, question, spoilers=spoilers_allowed)
    except QuestionError as exc:
        await reply(interaction, str(exc))
        return
    kwargs = discord_kwargs(render_answer(answer))
    if len(answer.passages) > PAGE_SIZE:
        bot.pages.add(interaction.id, answer, interaction.user.id)
        kwargs["view"] = MoreResults.view(interaction.id)
    await interaction.response.send_message(**kwargs, ephemeral=private or answer.abstained)


spoilers = app_commands.Group(
    name="spoilers", description="Choose whether /ask shows you passages about the twist"
)


async def _set_spoilers(interaction: discord.Interaction[LookBackBot], on: bool) -> None:
    # A locked database file may make the write wait; acknowledge first, then write
    # off the event loop, and confirm only after the commit.
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        await asyncio.to_thread(interaction.client.prefs.set_spoilers, interaction.user.id, on)
    except sqlite3.Error as exc:
        log.warning("could not save a spoiler setting: %s", exc)
        await reply(interaction, SAVE_FAILED)
        return
    await reply(interaction, SPOILERS_ON if on else SPOILERS_OFF)


@spoilers.command(name="on")
async def spoilers_on(interaction: discord.Interaction[LookBackBot]) -> None:
    """Include spoiler passages in my answers (hidden behind spoiler tags in public)."""
    await _set_spoilers(interaction, True)


@spoilers.command(name="off")
async def spoilers_off(interaction: discord.Interaction[LookBackBot]) -> None:
    """Withhold spoiler passages from my answers (the default)."""
    await _set_spoilers(interaction, False)


@spoilers.command(name="status")
async def spoilers_status(interaction: discord.Interaction[LookBackBot]) -> None:
    """Show whether my answers include spoiler passages."""
    on = interaction.client.prefs.spoilers_on(interaction.user.id)
    await reply(interaction, SPOILERS_ON if on else SPOILERS_OFF)


@app_commands.command()
async def sources(interaction: discord.Interaction[LookBackBot]) -> None:
    """List the documents the answers are quoted from."""
    message = render_sources(interaction.client.retriever.corpus)
    await interaction.response.send_message(**discord_kwargs(message))


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
    return 0
