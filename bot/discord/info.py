"""/sources: where the answers come from."""

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.core.render import render_sources
from bot.discord.replies import discord_kwargs

if TYPE_CHECKING:
    from bot.discord.app import LookBackBot


@app_commands.command()
async def sources(interaction: "discord.Interaction[LookBackBot]") -> None:
    """List the documents the answers are quoted from."""
    message = render_sources(interaction.client.retriever.corpus)
    await interaction.response.send_message(**discord_kwargs(message))
