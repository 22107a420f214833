"""/spoilers on|off|status: a member's own choice, stored before it is confirmed."""

import asyncio
import logging
import sqlite3
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.discord.replies import reply

if TYPE_CHECKING:
    from bot.discord.app import LookBackBot

log = logging.getLogger("lookback")

SPOILERS_ON = (
    "Spoilers are **on** for you: /ask now includes passages about the twist and the ending. "
    "In replies others can see they stay hidden behind spoiler tags."
)
SPOILERS_OFF = (
    "Spoilers are **off** for you: /ask withholds passages about the twist and tells you "
    "how many it kept back. Turn them on with `/spoilers on`."
)
SAVE_FAILED = "I couldn't save that just now, so nothing changed. Please try again in a moment."


spoilers = app_commands.Group(
    name="spoilers", description="Choose whether /ask shows you passages about the twist"
)


async def _set_spoilers(interaction: "discord.Interaction[LookBackBot]", on: bool) -> None:
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
async def spoilers_on(interaction: "discord.Interaction[LookBackBot]") -> None:
    """Include spoiler passages in my answers (hidden behind spoiler tags in public)."""
    await _set_spoilers(interaction, True)


@spoilers.command(name="off")
async def spoilers_off(interaction: "discord.Interaction[LookBackBot]") -> None:
    """Withhold spoiler passages from my answers (the default)."""
    await _set_spoilers(interaction, False)


@spoilers.command(name="status")
async def spoilers_status(interaction: "discord.Interaction[LookBackBot]") -> None:
    """Show whether my answers include spoiler passages."""
    on = interaction.client.prefs.spoilers_on(interaction.user.id)
    await reply(interaction, SPOILERS_ON if on else SPOILERS_OFF)
