"""The "More results" button and the answers it pages through."""

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from bot.core.answer import PAGE_SIZE, Answer
from bot.core.render import render_answer
from bot.discord.replies import discord_kwargs, reply

if TYPE_CHECKING:
    from bot.discord.app import LookBackBot

PAGES_FORGOTTEN = (
    "I no longer have the rest of those results (I keep the latest ones, and forget them "
    "when I restart). Please ask again with `/ask`."
)


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

    async def callback(self, interaction: "discord.Interaction[LookBackBot]") -> None:
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
