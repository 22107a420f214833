"""/sources and /help: where the answers come from, and how to use the bot."""

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.discord.replies import RENDERER, discord_kwargs

if TYPE_CHECKING:
    from bot.discord.client import LookBackBot


@app_commands.command()
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
async def sources(interaction: "discord.Interaction[LookBackBot]") -> None:
    """List the documents the answers are quoted from."""
    message = RENDERER.render_sources(interaction.client.retriever.corpus)
    await interaction.response.send_message(**discord_kwargs(message))


@app_commands.command(name="help")
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
async def help_(interaction: "discord.Interaction[LookBackBot]") -> None:
    """What I answer, how spoilers work, my commands, and what I keep about you."""
    bot = interaction.client
    message = RENDERER.render_help(
        bot.retriever.corpus, feedback_days=bot.settings.store.feedback_days
    )
    await interaction.response.send_message(**discord_kwargs(message), ephemeral=True)
