"""The "More results" button (what it shows next: bot.core.paging)."""

import re
from typing import TYPE_CHECKING

import discord

from bot.core.render import withheld_notice
from bot.discord.replies import RENDERER, discord_kwargs, reply
from bot.discord.spoilers import READ_FAILED, allowed_spoilers

if TYPE_CHECKING:
    from bot.discord.client import LookBackBot

PAGES_FORGOTTEN = (
    "I no longer have the rest of those results (I keep the latest ones, and forget them "
    "when I restart). Please ask again with `/ask`."
)
NOT_YOURS = "These results belong to another member; try `/ask` yourself."
NOTHING_MORE = "That's everything I found for this question."


class MoreResults(discord.ui.DynamicItem[discord.ui.Button], template=r"more:(?P<ask>[0-9]+)"):
    """The "More results" button: the next page of the same answer, to the member who asked.

    The /ask it belongs to is in its custom_id, so a click reaches this handler even
    after a restart, and no per-message view or timeout task is kept. The page is
    filtered with the spoiler setting the member has when they click, not when they asked.
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

    async def callback(self, interaction: "discord.Interaction[LookBackBot]") -> None:
        paged = interaction.client.pages.get(self.ask_id)
        if paged is None:
            await reply(interaction, PAGES_FORGOTTEN)
            return
        if interaction.user.id != paged.asker_id:
            await reply(interaction, NOT_YOURS)
            return
        allowed = await allowed_spoilers(interaction)
        answer = paged.lookup.answer(allowed.spoilers)
        page = paged.next_page(answer)
        if not page:
            more = f" {withheld_notice(answer)}" if answer.withheld else ""
            await reply(interaction, NOTHING_MORE + more)
            return
        note = READ_FAILED if allowed.unreadable else allowed.note
        message = RENDERER.render_answer(answer, shown=page, public=False, note=note)
        await interaction.response.send_message(**discord_kwargs(message), ephemeral=True)
