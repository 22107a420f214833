"""/ask, its autocomplete, and the message command "Ask about this"."""

import asyncio
import datetime as dt
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.core.answer import (
    MAX_QUESTION_CHARS,
    PAGE_SIZE,
    QuestionError,
    look_up,
    question_from_message,
)
from bot.core.render import withheld_notice
from bot.discord.cooldowns import MemberCooldowns
from bot.discord.feedback import VoteButton
from bot.discord.pages import MoreResults
from bot.discord.replies import RENDERER, discord_kwargs, reply
from bot.discord.spoilers import READ_FAILED, allowed_spoilers
from bot.store import AskRecord

if TYPE_CHECKING:
    from bot.discord.client import LookBackBot

ASK_RATE, ASK_PER_S = 3, 30.0  # per member: enough for a conversation, not for a flood
ASK_COOLDOWN = MemberCooldowns(ASK_RATE, ASK_PER_S)
NO_WORDS = (
    "That message has no words I can ask about (its spoiler-tagged text, mentions and "
    "links are left out)."
)
CUT_NOTE = f"Your message was cut to its first {MAX_QUESTION_CHARS} characters."
UNSURE = "I'm not sure my sources answer this; these passages come closest, so only you see them."


async def send_answer(
    interaction: "discord.Interaction[LookBackBot]",
    question: str,
    *,
    private: bool,
    note: str = "",
) -> None:
    """Look the question up and reply; what was withheld goes to the asker alone.

    The reply is public unless asked privately, or there is nothing to show (an "I
    don't know", or only withheld spoilers), or it is only a guess: the channel then sees
    nothing at all, so it cannot tell a question the sources cannot answer from one only
    spoilers answer.
    """
    bot = interaction.client
    allowed = await allowed_spoilers(interaction)
    try:
        # In a worker thread: the model's forward pass (2-3 ms) releases the GIL, so a
        # burst of asks is embedded on both cores while the loop keeps acknowledging.
        lookup = await asyncio.to_thread(look_up, bot.retriever, question)
    except QuestionError as exc:
        await reply(interaction, str(exc))
        return
    answer = lookup.answer(allowed.spoilers)
    # A guess (see Answer.confident) is the asker's alone: the channel sees only answers.
    public = not private and bool(answer.passages) and answer.confident
    unsure = "" if answer.confident or not answer.passages else UNSURE
    notes = " ".join(filter(None, [note, allowed.note, unsure]))
    kwargs = discord_kwargs(RENDERER.render_answer(answer, public=public, note=notes))
    first_page = list(answer.passages[:PAGE_SIZE])
    view = discord.ui.View(timeout=None)
    if first_page and bot.settings.store.feedback_days:
        view.add_item(VoteButton(interaction.id, 1)).add_item(VoteButton(interaction.id, -1))
    if len(answer.passages) > PAGE_SIZE:
        bot.pages.add(interaction.id, lookup, interaction.user.id, first_page)
        view.add_item(MoreResults(interaction.id))
    if view.children:
        kwargs["view"] = view
    await interaction.response.send_message(**kwargs, ephemeral=not public)
    bot.ask_log.add(
        AskRecord(
            interaction.id,
            dt.datetime.now(dt.UTC),
            answer.question,
            answer.abstained,
            tuple(p.chunk.id for p in first_page),
        )
    )
    private_notes = [READ_FAILED] if allowed.unreadable else []
    if public and answer.withheld:
        private_notes.append(withheld_notice(answer))
    if private_notes:
        await interaction.followup.send("\n".join(private_notes), ephemeral=True)


@app_commands.command()
@app_commands.describe(
    question="What you want to know, e.g. who composed the music?",
    private="Only you see the answer (default: everyone in the channel)",
)
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
@app_commands.check(ASK_COOLDOWN.check)
async def ask(
    interaction: "discord.Interaction[LookBackBot]",
    question: app_commands.Range[str, 1, MAX_QUESTION_CHARS],
    private: bool = False,
) -> None:
    """Ask about the film; answers quote cited sources, spoilers only if you opted in."""
    await send_answer(interaction, question, private=private)


@ask.autocomplete("question")
async def suggest_questions(
    interaction: "discord.Interaction[LookBackBot]", current: str
) -> list[app_commands.Choice[str]]:
    """Whole questions for what is typed so far; spoiler ones only to those who may see them."""
    allowed = await allowed_spoilers(interaction)
    suggestions = interaction.client.suggester.suggest(current, allowed.spoilers)
    return [app_commands.Choice(name=q, value=q) for q in suggestions]


@app_commands.context_menu(name="Ask about this")
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
@app_commands.check(ASK_COOLDOWN.check)
async def ask_about_this(
    interaction: "discord.Interaction[LookBackBot]", message: discord.Message
) -> None:
    """The message's words as a question, answered for the member alone."""
    question, cut = question_from_message(message.content)
    if not question:
        await reply(interaction, NO_WORDS)
        return
    await send_answer(interaction, question, private=True, note=CUT_NOTE if cut else "")
