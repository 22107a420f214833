"""/spoilers on|off|status, and what decides whether an interaction may show spoilers."""

import logging
from typing import TYPE_CHECKING, NamedTuple

import discord
from discord import app_commands

from bot.discord.replies import SAVE_FAILED, reply
from bot.store import StoreUnavailable

if TYPE_CHECKING:
    from bot.discord.client import LookBackBot

log = logging.getLogger("lookback")

SPOILERS_ON = (
    "Spoilers are **on** for you: /ask now includes passages about the twist and the ending. "
    "In replies others can see they stay hidden behind spoiler tags."
)
SPOILERS_OFF = (
    "Spoilers are **off** for you: /ask withholds passages about the twist and tells you "
    "how many it kept back. Turn them on with `/spoilers on`. (Off is the default, so "
    "nothing about you is stored.)"
)
READ_FAILED = (
    "I couldn't read your spoiler setting just now, so I left spoilers out. "
    "Please try again in a moment."
)
STATUS_FAILED = "I couldn't read your spoiler setting just now. Please try again in a moment."
SPOILER_CHANNEL_NOTE = "Spoilers shown: this is a spoiler channel."


class Allowed(NamedTuple):
    """Whether an interaction may show spoiler passages, and why."""

    spoilers: bool
    by_channel: bool  # a spoiler channel, whatever the member chose
    unreadable: bool  # the setting could not be read, so spoilers are off

    @property
    def note(self) -> str:
        return SPOILER_CHANNEL_NOTE if self.by_channel else ""


async def allowed_spoilers(interaction: "discord.Interaction[LookBackBot]") -> Allowed:
    """The member's own choice, or the channel's when an admin made it a spoiler channel.

    Fails closed: a setting that cannot be read counts as off, and says so.
    """
    channel = interaction.channel_id or 0
    parent = getattr(interaction.channel, "parent_id", None) or channel  # threads inherit
    try:
        setting = await interaction.client.store.spoiler_setting(
            interaction.user.id, interaction.guild_id, (channel, parent)
        )
    except StoreUnavailable as exc:
        log.warning("could not read a spoiler setting: %s", exc)
        return Allowed(False, False, True)
    by_channel = setting.channel and interaction.guild_id is not None
    return Allowed(setting.member or by_channel, by_channel, False)


spoilers = app_commands.Group(
    name="spoilers",
    description="Choose whether /ask shows you passages about the twist",
    allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True),
)


async def _set_spoilers(interaction: "discord.Interaction[LookBackBot]", on: bool) -> None:
    # A locked or distant database may make the write wait; acknowledge first, then
    # write, and confirm only after the commit.
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        await interaction.client.store.set_spoilers(interaction.user.id, on)
    except StoreUnavailable as exc:
        log.warning("could not save a spoiler setting: %s", exc)
        await reply(interaction, SAVE_FAILED)
        return
    await reply(interaction, SPOILERS_ON if on else SPOILERS_OFF)


@spoilers.command(name="on")
async def spoilers_on(interaction: "discord.Interaction[LookBackBot]") -> None:
    """Include spoiler passages in my answers (hidden behind spoiler tags in public)."""
    await _set_spoilers(interaction, True)


@spoilers.command(name="off")
async def spoilers_off(interaction: "discord.Interaction[LookBackBot]") -> None:
    """Withhold spoiler passages from my answers (the default; forgets my choice)."""
    await _set_spoilers(interaction, False)


@spoilers.command(name="status")
async def spoilers_status(interaction: "discord.Interaction[LookBackBot]") -> None:
    """Show whether my answers include spoiler passages."""
    try:
        setting = await interaction.client.store.spoiler_setting(interaction.user.id, None, (0, 0))
    except StoreUnavailable as exc:
        log.warning("could not read a spoiler setting: %s", exc)
        await reply(interaction, STATUS_FAILED)
        return
    await reply(interaction, SPOILERS_ON if setting.member else SPOILERS_OFF)
