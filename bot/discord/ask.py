"""/ask: a member's question, answered from the corpus with their spoiler setting."""

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.core.answer import MAX_QUESTION_CHARS, PAGE_SIZE, QuestionError, answer_question
from bot.core.render import render_answer
from bot.discord.cooldowns import MemberCooldowns
from bot.discord.pages import MoreResults
from bot.discord.replies import discord_kwargs, reply

if TYPE_CHECKING:
    from bot.discord.app import LookBackBot

ASK_RATE, ASK_PER_S = 3, 30.0  # per member: enough for a conversation, not for a flood
ASK_COOLDOWN = MemberCooldowns(ASK_RATE, ASK_PER_S)


@app_commands.command()
@app_commands.describe(
    question="What you want to know, e.g. who composed the music?",
    private="Only you see the answer (default: everyone in the channel)",
)
@app_commands.check(ASK_COOLDOWN.check)
async def ask(
    interaction: "discord.Interaction[LookBackBot]",
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
