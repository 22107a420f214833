"""/config: the server's settings, for members who may manage the server.

Discord hides the group from others (`default_permissions`), but a server's admins can
loosen that under Integrations, so every subcommand also checks the permission itself.
"""

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.discord.replies import SAVE_FAILED, reply
from bot.store import StoreUnavailable

if TYPE_CHECKING:
    from bot.discord.client import LookBackBot

log = logging.getLogger("lookback")

SETTINGS_UNREADABLE = "I couldn't read the settings just now. Please try again in a moment."

config = app_commands.Group(
    name="config",
    description="This server's settings for the bot (needs Manage Server)",
    guild_only=True,
    allowed_contexts=app_commands.AppCommandContext(guild=True),
    default_permissions=discord.Permissions(manage_guild=True),
)


@config.command(name="spoiler-channel")
@app_commands.describe(
    channel="The channel (its threads follow it)",
    enabled="True: /ask there shows spoilers to everyone, tagged. False: members' own choice",
)
@app_commands.checks.has_permissions(manage_guild=True)
async def spoiler_channel(
    interaction: "discord.Interaction[LookBackBot]",
    channel: discord.TextChannel | discord.ForumChannel | discord.VoiceChannel,
    enabled: bool,
) -> None:
    """Make a channel a spoiler channel, where /ask shows spoilers to everyone."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    assert interaction.guild_id is not None  # guild_only
    try:
        await interaction.client.store.set_spoiler_channel(
            interaction.guild_id, channel.id, enabled
        )
    except StoreUnavailable as exc:
        log.warning("could not save a spoiler channel: %s", exc)
        await reply(interaction, SAVE_FAILED)
        return
    if enabled:
        text = (
            f"{channel.mention} is now a spoiler channel: `/ask` there includes spoiler "
            "passages for everyone (members chose to be there), still inside spoiler tags, "
            "and says why."
        )
    else:
        text = f"{channel.mention} is an ordinary channel again: each member's `/spoilers` choice applies."
    await reply(interaction, text)


@config.command(name="show")
@app_commands.checks.has_permissions(manage_guild=True)
async def show(interaction: "discord.Interaction[LookBackBot]") -> None:
    """Show this server's settings for the bot."""
    assert interaction.guild_id is not None  # guild_only
    bot = interaction.client
    try:
        channels = await bot.store.spoiler_channels(interaction.guild_id)
    except StoreUnavailable as exc:
        log.warning("could not read the server's settings: %s", exc)
        await reply(interaction, SETTINGS_UNREADABLE)
        return
    listed = ", ".join(f"<#{c}>" for c in channels) or "none"
    days = bot.settings.store.feedback_days
    kept = f"kept {days} days, with no user ids" if days else "not recorded"
    await reply(
        interaction,
        f"**Spoiler channels:** {listed}\n"
        f"**Questions and 👍/👎 votes** (for the maintainer's report): {kept}\n"
        f"Set a channel with `/config spoiler-channel`.",
    )
