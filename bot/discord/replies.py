"""The bot's renderer (the core's, with discord.py's markdown escaper), its messages as
discord.py sends, and short private replies."""

from typing import Any

import discord

from bot.core.render import Message, Renderer

# The core renders with discord.py's own markdown escaper.
RENDERER = Renderer(discord.utils.escape_markdown)

SAVE_FAILED = "I couldn't save that just now, so nothing changed. Please try again in a moment."


def discord_kwargs(message: Message) -> dict[str, Any]:
    """The rendered message as keyword arguments for discord.py's send methods."""
    return {
        "content": message.content or None,
        "embeds": [discord.Embed.from_dict(e.to_dict()) for e in message.embeds],
    }


async def reply(interaction: discord.Interaction, text: str) -> None:
    """A short ephemeral reply, whether or not the interaction was answered already."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)
